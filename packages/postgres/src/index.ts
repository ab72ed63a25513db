export { createPostgresStore, PostgresStore, type PostgresStoreOptions } from './postgres-store.js';
export {
  migrate,
  SCHEMA_VERSION,
  type MigrateOptions,
  type MigrationResult,
} from './migrations.js';
export {
  DEFAULT_LOCK_TABLE,
  DEFAULT_QUEUE_TABLE,
  DEFAULT_TABLE,
  MIGRATIONS_TABLE,
} from './table-names.js';
export { createPostgresLock, PostgresLock, type PostgresLockOptions } from './postgres-lock.js';
export {
  createPostgresQueue,
  PostgresQueue,
  QUEUE_SCHEMA_VERSION,
  type PostgresQueueOptions,
  type PostgresQueueStats,
} from './postgres-queue.js';

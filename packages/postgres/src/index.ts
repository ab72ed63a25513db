export { createPostgresStore, PostgresStore, type PostgresStoreOptions } from './postgres-store.js';
export {
  migrate,
  SCHEMA_VERSION,
  type MigrateOptions,
  type MigrationResult,
} from './migrations.js';
export { DEFAULT_TABLE, MIGRATIONS_TABLE } from './table-names.js';

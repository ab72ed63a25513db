import { AdapterError, InvalidInputError, silentLogger, type Logger } from '@websubsub/core';
import pg from 'pg';

import { briefly, messageOf } from './driver-errors.js';
import { tableNames, type TableNames } from './table-names.js';

/** One schema version: the statements that take a table from the version before to this one. */
type Migration<Names> = (names: Names) => string[];

/** The names every migrated table has: its key in the migrations table and both tables. */
interface MigratedNames {
  base: string;
  table: string;
  migrations: string;
}

/** The migrations of one kind of table, oldest first, and what logs call that table. */
export interface MigrationPlan<Names extends MigratedNames> {
  subject: string;
  steps: readonly Migration<Names>[];
}

// Never edit a released migration: tables out there are already at its version. Add a new one.
const MIGRATIONS: readonly Migration<TableNames>[] = [
  // 1: the subscriptions table, its unique key and the indexes of the upkeep queries.
  ({ table, indexes }) => [
    `CREATE TABLE IF NOT EXISTS ${table} (
      id text COLLATE "C" PRIMARY KEY,
      topic text NOT NULL,
      hub text NOT NULL,
      handler text NOT NULL,
      callback_url text NOT NULL,
      secret text,
      lease_seconds integer,
      lease_expires_at timestamptz,
      subscribe_status text NOT NULL CHECK (subscribe_status IN
        ('requesting', 'connerror', 'huberror', 'verifying', 'verifyerror', 'verified', 'denied')),
      unsubscribe_status text CHECK (unsubscribe_status IN
        ('requesting', 'connerror', 'huberror', 'verifying', 'verifyerror', 'verified')),
      connection_errors integer NOT NULL DEFAULT 0,
      hub_errors integer NOT NULL DEFAULT 0,
      verify_timeouts integer NOT NULL DEFAULT 0,
      verify_errors integer NOT NULL DEFAULT 0,
      last_subscribe_at timestamptz,
      last_unsubscribe_at timestamptz,
      created_at timestamptz NOT NULL,
      last_delivery_at timestamptz,
      denied_reason text,
      last_error text,
      retry_at timestamptz,
      static boolean NOT NULL DEFAULT false,
      discovered_from text
    )`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${indexes.key} ON ${table} (hub, topic, handler)`,
    `CREATE INDEX IF NOT EXISTS ${indexes.lease} ON ${table} (lease_expires_at)
      WHERE subscribe_status = 'verified' AND unsubscribe_status IS NULL
        AND lease_expires_at IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS ${indexes.retry} ON ${table} (retry_at) WHERE retry_at IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS ${indexes.handler} ON ${table} (handler, id)`,
  ],
  // 2: whether the hub came from discovery, so that renewals discover the topic again.
  ({ table }) => [
    `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS hub_discovered boolean NOT NULL DEFAULT false`,
  ],
  // 3: the secret a hub may still sign with until it verifies a request that changed it, and
  // the callback URL it still knows after the callback URL changed.
  ({ table }) => [
    `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS previous_secret text,
      ADD COLUMN IF NOT EXISTS retired_callback_url text`,
  ],
];

/** The schema version this package creates and expects. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Advisory lock key ("websubsu" as eight bytes) held by every migration. One key for all tables,
 * so that instances starting together queue up instead of racing on `CREATE ... IF NOT EXISTS`,
 * which PostgreSQL does not make safe against concurrent creators.
 */
const MIGRATION_LOCK = '8603390911191348085';

/** What a migration did to one table. */
export interface MigrationResult {
  /** The table, quoted and qualified as given. */
  table: string;
  /** Schema version found before the migration; 0 for a new table. */
  from: number;
  /** Schema version now in place. */
  to: number;
}

/** Options of `migrate`. */
export interface MigrateOptions {
  /** A pool of the application's; it is left open. Give this or `connectionString`. */
  pool?: pg.Pool;
  /** Where to connect when no pool is given; the pool opened for it is ended before returning. */
  connectionString?: string;
  /** The subscriptions table, optionally schema-qualified. @default 'websubsub_subscriptions' */
  table?: string;
  /** Where to report what was migrated. @default silentLogger */
  logger?: Logger;
}

/**
 * Bring a subscriptions table to the current schema version, creating it when absent. Safe to
 * run any number of times and from several processes at once; a CLI or deploy step calls it
 * when stores are created with `migrate: false`.
 */
export async function migrate(options: MigrateOptions): Promise<MigrationResult> {
  const names = tableNames(options.table);
  const logger = options.logger ?? silentLogger;
  if (options.pool) return runMigrations(options.pool, names, logger);

  if (!options.connectionString) {
    throw new InvalidInputError('migrate needs a pool or a connectionString');
  }
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 1 });
  pool.on('error', (error) => logger.warn(briefly(error), 'idle PostgreSQL connection failed'));
  try {
    return await runMigrations(pool, names, logger);
  } finally {
    await pool.end();
  }
}

/** Apply the missing migrations of one subscriptions table. */
export async function runMigrations(
  pool: pg.Pool,
  names: TableNames,
  logger: Logger,
): Promise<MigrationResult> {
  return applyMigrations(pool, names, logger, {
    subject: 'subscriptions table',
    steps: MIGRATIONS,
  });
}

/**
 * When an adapter's migrations run: when asked (`apply`), or once before its first query when
 * the adapter migrates by itself (`ready`). A failed run is tried again by the next query.
 */
export class Migrations {
  private done = false;
  private running: Promise<MigrationResult> | null = null;

  constructor(
    private readonly run: () => Promise<MigrationResult>,
    private readonly automatic: boolean,
  ) {}

  async apply(): Promise<MigrationResult> {
    const result = await this.run();
    this.done = true;
    return result;
  }

  async ready(): Promise<void> {
    if (this.done || !this.automatic) return;

    this.running ??= this.apply().finally(() => {
      this.running = null;
    });
    await this.running;
  }
}

/** Apply the missing migrations of one table in one transaction, under the migration lock. */
export async function applyMigrations<Names extends MigratedNames>(
  pool: pg.Pool,
  names: Names,
  logger: Logger,
  plan: MigrationPlan<Names>,
): Promise<MigrationResult> {
  const version = plan.steps.length;
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw new AdapterError(
      'postgres',
      `cannot connect to migrate ${names.table}: ${messageOf(error)}`,
      error,
    );
  }

  let from: number;
  let broken = false;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS ${names.migrations} (
      table_name text PRIMARY KEY,
      version integer NOT NULL,
      migrated_at timestamptz NOT NULL DEFAULT now()
    )`);

    const found = await client.query<{ version: number }>(
      `SELECT version FROM ${names.migrations} WHERE table_name = $1`,
      [names.base],
    );
    from = found.rows[0]?.version ?? 0;
    // A table dropped by hand leaves its version row behind: start again from nothing.
    const exists = await client.query<{ present: boolean }>(
      'SELECT to_regclass($1) IS NOT NULL AS present',
      [names.table],
    );
    if (from > 0 && !exists.rows[0]?.present) {
      logger.warn({ table: names.table, from }, 'Table missing though migrated: creating it again');
      from = 0;
    }
    if (from > version) {
      throw new AdapterError(
        'postgres',
        `${names.table} is at schema version ${from}, newer than this package's ${version}`,
        undefined,
      );
    }

    for (const migration of plan.steps.slice(from)) {
      for (const statement of migration(names)) await client.query(statement);
    }
    if (from < version) {
      await client.query(
        `INSERT INTO ${names.migrations} (table_name, version) VALUES ($1, $2)
          ON CONFLICT (table_name) DO UPDATE SET version = $2, migrated_at = now()`,
        [names.base, version],
      );
    }
    await client.query('COMMIT');
  } catch (error) {
    // A connection whose rollback failed is in an unknown state: destroy it, never reuse it.
    broken = await client.query('ROLLBACK').then(
      () => false,
      () => true,
    );
    if (error instanceof AdapterError) throw error;
    throw new AdapterError(
      'postgres',
      `migrating ${names.table} failed: ${messageOf(error)}`,
      error,
    );
  } finally {
    client.release(broken);
  }

  if (from < version) {
    logger.info({ table: names.table, from, to: version }, `migrated ${plan.subject}`);
  }
  return { table: names.table, from, to: version };
}

import { randomUUID } from 'node:crypto';

import {
  AdapterError,
  InvalidInputError,
  LockLostError,
  silentLogger,
  type HeldLock,
  type LockProvider,
  type Logger,
} from '@websubsub/core';
import pg from 'pg';

import { messageOf } from './driver-errors.js';
import { adapterPool } from './pool.js';
import {
  applyMigrations,
  Migrations,
  type MigrationPlan,
  type MigrationResult,
} from './migrations.js';
import { lockTableNames, type LockTableNames } from './table-names.js';

const ADAPTER = 'postgres-lock';

/** Options of `createPostgresLock`. */
export interface PostgresLockOptions {
  /** A pool of your own; the lock never ends it. Give this or `connectionString`. */
  pool?: pg.Pool;
  /** Open a pool of the lock's own, ended by `close()`. */
  connectionString?: string;
  /** The locks table, `name` or `schema.name`. @default 'websubsub_locks' */
  table?: string;
  /** Create the table before the first lock if it is missing. @default true */
  migrate?: boolean;
  /** Where migrations and failed idle connections are reported. @default silentLogger */
  logger?: Logger;
}

// Never edit a released migration: tables out there are already at its version. Add a new one.
const LOCK_MIGRATIONS: MigrationPlan<LockTableNames> = {
  subject: 'locks table',
  steps: [
    // 1: one row per lock held (or held once and expired since).
    ({ table }) => [
      `CREATE TABLE IF NOT EXISTS ${table} (
        key text COLLATE "C" PRIMARY KEY,
        token uuid NOT NULL,
        expires_at timestamptz NOT NULL
      )`,
    ],
  ],
};

/**
 * Locks in a PostgreSQL table, so that instances sharing one PostgreSQL need no Redis: a lock
 * is a row with a token and an expiry, taken with one `INSERT … ON CONFLICT` that succeeds only
 * on a free or expired key. Expiry is reckoned by the server's clock, so the instances' clocks
 * need not agree. Create it with `createPostgresLock`.
 */
export class PostgresLock implements LockProvider {
  private readonly names: LockTableNames;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly logger: Logger;
  private readonly migrations: Migrations;

  constructor(options: PostgresLockOptions) {
    this.names = lockTableNames(options.table);
    this.logger = options.logger ?? silentLogger;
    this.migrations = new Migrations(
      () => applyMigrations(this.pool, this.names, this.logger, LOCK_MIGRATIONS),
      options.migrate ?? true,
    );
    ({ pool: this.pool, ownsPool: this.ownsPool } = adapterPool(
      ADAPTER,
      options,
      this.logger,
      this.names.table,
    ));
  }

  /** The locks table, quoted and qualified as given. */
  get table(): string {
    return this.names.table;
  }

  /** Create or upgrade the locks table now rather than before the first lock. */
  migrate(): Promise<MigrationResult> {
    return this.migrations.apply();
  }

  async acquire(key: string, ttlMs: number): Promise<HeldLock | null> {
    const token = randomUUID();
    const { rows } = await this.query(
      'acquire',
      `INSERT INTO ${this.table} AS held (key, token, expires_at)
         VALUES ($1, $2, now() + $3 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
           WHERE held.expires_at <= now()
       RETURNING key`,
      [key, token, ttl(ttlMs)],
    );
    if (rows.length === 0) return null;

    return {
      key,
      extend: async (ms: number) => {
        const extended = await this.query(
          'extend',
          `UPDATE ${this.table} SET expires_at = now() + $3 * interval '1 millisecond'
            WHERE key = $1 AND token = $2 AND expires_at > now()
           RETURNING key`,
          [key, token, ttl(ms)],
        );
        if (extended.rows.length === 0) throw new LockLostError(key);
      },
      release: async () => {
        await this.query('release', `DELETE FROM ${this.table} WHERE key = $1 AND token = $2`, [
          key,
          token,
        ]);
      },
    };
  }

  /** End the pool if the lock opened it. */
  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  private async query(operation: string, text: string, values: unknown[]) {
    await this.migrations.ready();
    try {
      return await this.pool.query(text, values);
    } catch (error) {
      throw new AdapterError(ADAPTER, `${operation} failed: ${messageOf(error)}`, error);
    }
  }
}

function ttl(ms: number): number {
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new InvalidInputError(`${ADAPTER}: a lock's time to live must be a positive number`);
  }
  return ms;
}

/** Create locks kept in a PostgreSQL table. */
export function createPostgresLock(options: PostgresLockOptions): PostgresLock {
  return new PostgresLock(options);
}

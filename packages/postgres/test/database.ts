import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';

import { skipUnlessCi } from '@websubsub/core/testing';
import pg from 'pg';

/**
 * The server the tests use. pg takes a user missing from the URL from PGUSER or USER, and a
 * service may run with neither set; name the account the tests run as, as psql would.
 */
export const DATABASE_URL = ((): string => {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://127.0.0.1:5432/test');
  if (!url.username && !process.env.PGUSER && !process.env.USER) url.username = userInfo().username;
  return url.href;
})();

/** A name no other test run uses, e.g. for a schema or a table. */
export const randomName = (prefix: string): string => `${prefix}_${randomBytes(6).toString('hex')}`;

/** The URL without its password, fit for a test title. */
const shown = (url: string): string => url.replace(/\/\/[^@/]*@/, '//***@');

async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    const reason = error instanceof Error ? error.message || error.name : String(error);
    return `PostgreSQL at ${shown(DATABASE_URL)} cannot be used: ${reason}`;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Why PostgreSQL cannot be used, or `null`; probed once when the tests load. */
export const unavailable: string | null = await probe();

/**
 * A `describe` for tests that need PostgreSQL. Without a server its title says why and its tests
 * are skipped, except under CI=true, where a missing server fails the run.
 */
export function describePostgres(title: string, define: () => void): void {
  const heading = unavailable ? `${title} (skipped: ${unavailable})` : title;

  describe(heading, function () {
    before(function () {
      if (!unavailable) return;
      skipUnlessCi(this, unavailable);
    });

    define();
  });
}

/** A pool whose connections work in a schema of their own, and that schema's name. */
export interface TestSchema {
  readonly pool: pg.Pool;
  readonly schema: string;
}

/** Give the surrounding suite a fresh schema (first on the search path), dropped after it. */
export function useTestSchema(): TestSchema {
  let pool: pg.Pool | undefined;
  const schema = randomName('websubsub_test');

  before(async function () {
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.end();
    pool = new pg.Pool({
      connectionString: DATABASE_URL,
      options: `-c search_path=${schema}`,
      max: 25,
    });
  });

  after(async function () {
    if (!pool) return;
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
    await pool.end();
  });

  return {
    get pool() {
      if (!pool) throw new Error('the test schema is not set up');
      return pool;
    },
    schema,
  };
}

/** A record's fields as snake_case columns, written independently of the store's own mapping. */
export function toColumns(record: object): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(record).map(([key, value]) => [
      key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`),
      value,
    ]),
  );
}

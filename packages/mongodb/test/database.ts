import { randomBytes } from 'node:crypto';

import { skipUnlessCi } from '@websubsub/core/testing';
import { MongoClient, type Db } from 'mongodb';

/** The server the tests use; there is no default, as no MongoDB server runs where we develop. */
export const MONGODB_URL = process.env.MONGODB_URL;

/** A name no other test run uses, e.g. for a database or a collection. */
export const randomName = (prefix: string): string => `${prefix}_${randomBytes(6).toString('hex')}`;

/** The URL without its password, fit for a test title. */
const shown = (url: string): string => url.replace(/\/\/[^@/]*@/, '//***@');

async function probe(): Promise<string | null> {
  if (!MONGODB_URL) return 'MONGODB_URL not set: MongoDB store tests skipped';

  const client = new MongoClient(MONGODB_URL, { serverSelectionTimeoutMS: 3000 });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
    return null;
  } catch (error) {
    const reason = error instanceof Error ? error.message || error.name : String(error);
    return `MongoDB at ${shown(MONGODB_URL)} cannot be used: ${reason}`;
  } finally {
    await client.close();
  }
}

/** Why MongoDB cannot be used, or `null`; probed once when the tests load. */
export const unavailable: string | null = await probe();

/**
 * A `describe` for tests that need MongoDB. Without MONGODB_URL its title says so and its tests
 * are skipped, in CI too: no MongoDB server can run on the machines CI uses. A MONGODB_URL that
 * cannot be reached skips them as well, except under CI=true, where it fails them.
 */
export function describeMongo(title: string, define: () => void): void {
  describe(unavailable ? `${title} (skipped: ${unavailable})` : title, function () {
    before(function () {
      if (!unavailable) return;
      if (MONGODB_URL) skipUnlessCi(this, unavailable);
      this.skip();
    });

    define();
  });
}

/** A connected client and a database of the suite's own, dropped after it. */
export interface TestDatabase {
  readonly client: MongoClient;
  readonly db: Db;
}

/** Give the surrounding suite a connected client and a fresh database. */
export function useTestDatabase(): TestDatabase {
  let client: MongoClient | undefined;
  const name = randomName('websubsub_test');

  before(async function () {
    client = new MongoClient(MONGODB_URL ?? '', { serverSelectionTimeoutMS: 3000 });
    await client.connect();
  });

  after(async function () {
    if (!client) return;
    await client.db(name).dropDatabase();
    await client.close();
  });

  return {
    get client() {
      if (!client) throw new Error('the test database is not set up');
      return client;
    },
    get db() {
      return this.client.db(name);
    },
  };
}

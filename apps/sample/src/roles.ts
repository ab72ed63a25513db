import { userInfo } from 'node:os';

import {
  createMemoryLock,
  createMemoryQueue,
  createMemoryStore,
  type JobQueue,
  type LockProvider,
  type Logger,
  type SubscriptionStore,
} from '@websubsub/core';
import { createMongoStore } from '@websubsub/mongodb';
import { createPostgresStore } from '@websubsub/postgres';
import { MongoClient } from 'mongodb';

import type { SampleConfig } from './config.js';

/** The store, queue and lock the sample runs on, and how to close what was opened for them. */
export interface Roles {
  store: SubscriptionStore;
  queue: JobQueue;
  lock: LockProvider;
  /** One line each, for the log: which implementation plays each role. */
  description: { store: string; queue: string; lock: string };
  close(): Promise<void>;
}

/** A connection URL with its password hidden, for logs. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** pg takes a user missing from the URL from PGUSER or USER; fall back to the OS user. */
export function withUser(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  if (!url.username && !process.env['PGUSER'] && !process.env['USER']) {
    url.username = userInfo().username;
  }
  return url.toString();
}

async function createStore(
  config: SampleConfig,
  logger: Logger,
  closers: Array<() => Promise<void>>,
): Promise<{ store: SubscriptionStore; description: string }> {
  if (config.mongodbUrl) {
    const client = new MongoClient(config.mongodbUrl, { serverSelectionTimeoutMS: 10_000 });
    await client.connect();
    closers.push(() => client.close());
    const store = createMongoStore({ client, collection: config.mongodbCollection, logger });
    await store.ensureIndexes();
    return { store, description: `MongoDB store at ${redact(config.mongodbUrl)}` };
  }

  if (config.databaseUrl) {
    const store = createPostgresStore({
      connectionString: withUser(config.databaseUrl),
      table: config.postgresTable,
      logger,
    });
    await store.migrate();
    closers.push(() => store.close());
    return { store, description: `PostgreSQL store at ${redact(config.databaseUrl)}` };
  }

  return {
    store: createMemoryStore(),
    description: 'embedded in-memory store (no DATABASE_URL or MONGODB_URL)',
  };
}

/** Pick each role's implementation from the configured connection URLs. */
export async function createRoles(config: SampleConfig, logger: Logger): Promise<Roles> {
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closeOne of closers.splice(0).reverse()) await closeOne();
  };

  try {
    const { store, description: storeDescription } = await createStore(config, logger, closers);
    return {
      store,
      queue: createMemoryQueue(),
      lock: createMemoryLock(),
      description: {
        store: storeDescription,
        queue: 'embedded in-process queue (no REDIS_URL)',
        lock: 'embedded in-process lock (no REDIS_URL)',
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

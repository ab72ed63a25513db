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
import { hostname } from 'node:os';

import { MongoBackend } from '@agendajs/mongo-backend';
import { PostgresBackend } from '@agendajs/postgres-backend';
import { RedisBackend } from '@agendajs/redis-backend';
import { createAgendaQueue } from '@websubsub/agenda';
import { createMongoStore } from '@websubsub/mongodb';
import { createPostgresLock, createPostgresQueue, createPostgresStore } from '@websubsub/postgres';
import { createRedlockLock } from '@websubsub/redlock';
import { Agenda } from 'agenda';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import pg from 'pg';

import type { SampleConfig } from './config.js';
import {
  MemoryNotificationLog,
  PostgresNotificationLog,
  type NotificationLog,
} from './notifications.js';

/** The store, queue and lock the sample runs on, and how to close what was opened for them. */
export interface Roles {
  store: SubscriptionStore;
  queue: JobQueue;
  lock: LockProvider;
  /** Where the sample's handler keeps notifications. */
  notifications: NotificationLog;
  /** One line each, for the log: which implementation plays each role. */
  description: { store: string; queue: string; lock: string; notifications: string };
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

/**
 * A pool whose idle connections may fail (PostgreSQL restarted, a connection terminated)
 * without ending the process: pg emits 'error' on the pool, fatal when nobody listens.
 */
function watched(pool: pg.Pool, logger: Logger): pg.Pool {
  pool.on('error', (error: Error) =>
    logger.warn({ error: error.message }, 'Idle PostgreSQL connection failed'),
  );
  return pool;
}

/** Connections opened for the roles, shared where two roles use one server. */
interface Connections {
  mongo: MongoClient | null;
  redis: Redis | null;
  closers: Array<() => Promise<void>>;
}

async function mongoClient(config: SampleConfig, connections: Connections): Promise<MongoClient> {
  if (connections.mongo) return connections.mongo;
  const client = new MongoClient(config.mongodbUrl as string, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  connections.closers.push(() => client.close());
  connections.mongo = client;
  return client;
}

/** Connect to Redis first and fail clearly: Agenda turns an unreachable server into a crash. */
async function redisClient(config: SampleConfig, logger: Logger, connections: Connections) {
  if (connections.redis) return connections.redis;
  const redis = new Redis(config.redisUrl as string, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
  });
  redis.on('error', (error: Error) =>
    logger.warn({ error: error.message }, 'Redis connection error'),
  );
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new Error(
      `Redis at ${redact(config.redisUrl as string)} cannot be reached: ` +
        `${(error as Error).message}`,
    );
  }
  connections.closers.push(async () => void (await redis.quit().catch(() => redis.disconnect())));
  connections.redis = redis;
  return redis;
}

async function createQueue(
  config: SampleConfig,
  logger: Logger,
  connections: Connections,
): Promise<{ queue: JobQueue; description: string }> {
  if (config.queue === 'memory') {
    return { queue: createMemoryQueue(), description: 'embedded in-process queue (no REDIS_URL)' };
  }

  if (config.queue === 'postgres') {
    const queue = createPostgresQueue({
      connectionString: withUser(config.databaseUrl as string),
      table: `${config.postgresTable}_queue`,
      lockTtlMs: config.jobLockLifetime * 1000,
      logger,
    });
    // The subscriber stops it first; this closes its pool when start-up fails after it.
    connections.closers.push(() => queue.stop());
    await queue.migrate();
    return {
      queue,
      description: `PostgreSQL queue at ${redact(config.databaseUrl as string)}`,
    };
  }

  const name = `websubsub-sample-${hostname()}-${process.pid}`;
  const timing = { name, processEvery: '1 second' as const };
  if (config.redisUrl) {
    const redis = await redisClient(config, logger, connections);
    const backend = new RedisBackend({
      redis,
      keyPrefix: `${config.redisPrefix}agenda:`,
      channelName: `${config.redisPrefix}agenda:jobs`,
    });
    const agenda = new Agenda({ backend, ...timing });
    return {
      queue: createAgendaQueue({ agenda, logger, lockLifetimeMs: config.jobLockLifetime * 1000 }),
      description: `Agenda queue on Redis at ${redact(config.redisUrl)}`,
    };
  }
  if (config.mongodbUrl) {
    const client = await mongoClient(config, connections);
    const agenda = new Agenda({ backend: new MongoBackend({ mongo: client.db() }), ...timing });
    return {
      queue: createAgendaQueue({ agenda, logger, lockLifetimeMs: config.jobLockLifetime * 1000 }),
      description: `Agenda queue on MongoDB at ${redact(config.mongodbUrl)}`,
    };
  }

  const pool = watched(
    new pg.Pool({ connectionString: withUser(config.databaseUrl as string) }),
    logger,
  );
  await pool.query('SELECT 1');
  connections.closers.push(() => pool.end());
  // Agenda's backend quotes the name whole and takes no schema: its table goes in the
  // connection's own schema, named after the store table without its schema.
  const jobs = `${config.postgresTable.split('.').pop() as string}_jobs`;
  const backend = new PostgresBackend({ pool, tableName: jobs, channelName: jobs });
  const agenda = new Agenda({ backend, ...timing });
  return {
    queue: createAgendaQueue({ agenda, logger, lockLifetimeMs: config.jobLockLifetime * 1000 }),
    description: `Agenda queue on PostgreSQL at ${redact(config.databaseUrl as string)}`,
  };
}

async function createLock(
  config: SampleConfig,
  logger: Logger,
  connections: Connections,
): Promise<{ lock: LockProvider; description: string }> {
  if (config.lock === 'postgres') {
    const lock = createPostgresLock({
      connectionString: withUser(config.databaseUrl as string),
      table: `${config.postgresTable}_locks`,
      logger,
    });
    connections.closers.push(() => lock.close());
    await lock.migrate();
    return { lock, description: `PostgreSQL locks at ${redact(config.databaseUrl as string)}` };
  }
  if (config.lock === 'memory' || !config.redisUrl) {
    const why = config.redisUrl ? 'WEBSUBSUB_LOCK=memory' : 'no REDIS_URL';
    return { lock: createMemoryLock(), description: `embedded in-process lock (${why})` };
  }
  const redis = await redisClient(config, logger, connections);
  return {
    lock: createRedlockLock({ clients: [redis], prefix: `${config.redisPrefix}lock:`, logger }),
    description: `Redlock on Redis at ${redact(config.redisUrl)}`,
  };
}

async function createStore(
  config: SampleConfig,
  logger: Logger,
  connections: Connections,
): Promise<{ store: SubscriptionStore; description: string }> {
  const closers = connections.closers;
  if (config.mongodbUrl) {
    const client = await mongoClient(config, connections);
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

async function createNotificationLog(
  config: SampleConfig,
  logger: Logger,
  connections: Connections,
): Promise<NotificationLog> {
  if (!config.databaseUrl || config.mongodbUrl) {
    return new MemoryNotificationLog(config.notificationsKept);
  }
  const pool = watched(
    new pg.Pool({ connectionString: withUser(config.databaseUrl), max: 4 }),
    logger,
  );
  connections.closers.push(() => pool.end());
  return PostgresNotificationLog.open(
    pool,
    `${config.postgresTable}_notifications`,
    config.notificationsKept,
  );
}

/** Pick each role's implementation from the configured connection URLs. */
export async function createRoles(config: SampleConfig, logger: Logger): Promise<Roles> {
  const connections: Connections = { mongo: null, redis: null, closers: [] };
  const close = async () => {
    for (const closeOne of connections.closers.splice(0).reverse()) await closeOne();
  };

  try {
    const store = await createStore(config, logger, connections);
    const queue = await createQueue(config, logger, connections);
    const lock = await createLock(config, logger, connections);
    const notifications = await createNotificationLog(config, logger, connections);
    return {
      store: store.store,
      queue: queue.queue,
      lock: lock.lock,
      notifications,
      description: {
        store: store.description,
        queue: queue.description,
        lock: lock.description,
        notifications: notifications.description,
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

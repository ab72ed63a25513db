import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';

import { skipUnlessCi } from '@websubsub/core/testing';
import { PostgresBackend } from '@agendajs/postgres-backend';
import { RedisBackend } from '@agendajs/redis-backend';
import type { QueueContractContext } from '@websubsub/core/testing';
import { createAgendaQueue, type AgendaQueueOptions } from '@websubsub/agenda';
import { Agenda } from 'agenda';
import { Redis } from 'ioredis';
import pg from 'pg';

/** The servers the tests use. */
export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** pg takes a user missing from the URL from PGUSER or USER; a service may have neither set. */
export const databaseUrl = ((): string => {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://127.0.0.1:5432/test');
  if (!url.username && !process.env.PGUSER && !process.env.USER) url.username = userInfo().username;
  return url.href;
})();

/** Connect to Redis first: Agenda would turn an unreachable one into an unhandled rejection. */
export async function requireRedis(context: Mocha.Context): Promise<void> {
  const probe = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});

  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    skipUnlessCi(context, `Redis is unreachable at ${redisUrl} (set REDIS_URL): ${String(error)}`);
  } finally {
    probe.disconnect();
  }
}

/** Connect to PostgreSQL first, for the same reason. */
export async function requirePostgres(context: Mocha.Context): Promise<void> {
  const probe = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2000 });
  probe.on('error', () => {});

  try {
    await probe.connect();
    await probe.query('SELECT 1');
  } catch (error) {
    const message = `PostgreSQL is unreachable at ${databaseUrl} (set DATABASE_URL)`;
    skipUnlessCi(context, `${message}: ${String(error)}`);
  } finally {
    await probe.end().catch(() => {});
  }
}

/** Test settings: fast polling and short locks, so that the suites take seconds. */
const fast = { processEvery: 100 } as const;
const lockLifetimeMs = 1000;

/** Agenda instances over one backend, as separate processes would hold them. */
export interface AgendaFixture extends QueueContractContext {
  /** Another Agenda instance with its own connection on the same backend, and its queue. */
  open(
    name: string,
    queue?: Partial<AgendaQueueOptions>,
  ): Promise<{ agenda: Agenda; queue: ReturnType<typeof createAgendaQueue> }>;
}

/** Agenda on Redis, under a key prefix of its own that teardown deletes. */
export async function redisFixture(
  queueOptions: Partial<AgendaQueueOptions> = {},
): Promise<AgendaFixture> {
  const prefix = `websubsub-test:${randomUUID()}:`;
  const clients: Redis[] = [];

  async function open(name: string, overrides: Partial<AgendaQueueOptions> = {}) {
    const redis = new Redis(redisUrl);
    clients.push(redis);
    const backend = new RedisBackend({ redis, keyPrefix: prefix, channelName: `${prefix}jobs` });
    const agenda = new Agenda({ backend, name, ...fast });
    await agenda.ready;
    return {
      agenda,
      queue: createAgendaQueue({ agenda, lockLifetimeMs, ...queueOptions, ...overrides }),
    };
  }

  const { queue } = await open('first');
  return {
    queue,
    open,
    second: async () => (await open('second')).queue,
    teardown: async () => {
      const keys = await (clients[0] as Redis).keys(`${prefix}*`);
      if (keys.length > 0) await (clients[0] as Redis).del(...keys);
      await Promise.all(clients.map((redis) => redis.quit()));
    },
  };
}

/** Agenda on PostgreSQL, in a table of its own that teardown drops. */
export async function postgresFixture(
  queueOptions: Partial<AgendaQueueOptions> = {},
): Promise<AgendaFixture> {
  const table = `websubsub_test_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const pools: pg.Pool[] = [];

  async function open(name: string, overrides: Partial<AgendaQueueOptions> = {}) {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 5 });
    pools.push(pool);
    const backend = new PostgresBackend({ pool, tableName: table, channelName: table });
    const agenda = new Agenda({ backend, name, ...fast });
    await agenda.ready;
    return {
      agenda,
      queue: createAgendaQueue({ agenda, lockLifetimeMs, ...queueOptions, ...overrides }),
    };
  }

  const { queue } = await open('first');
  return {
    queue,
    open,
    second: async () => (await open('second')).queue,
    teardown: async () => {
      await (pools[0] as pg.Pool).query(`DROP TABLE IF EXISTS "${table}"`);
      await Promise.all(pools.map((pool) => pool.end()));
    },
  };
}

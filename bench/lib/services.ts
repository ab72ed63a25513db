import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';

import { Redis } from 'ioredis';
import pg from 'pg';

/** PostgreSQL the durable cases and the upkeep sweeps use. */
export const databaseUrl = ((): string => {
  const url = new URL(process.env['DATABASE_URL'] ?? 'postgres://127.0.0.1:5432/test');
  // pg takes a user missing from the URL from PGUSER or USER; a service may have neither.
  if (!url.username && !process.env['PGUSER'] && !process.env['USER']) {
    url.username = userInfo().username;
  }
  return url.href;
})();

/** Redis the durable cases queue and lock on. */
export const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** A name of our own for one run's table or key prefix, so that cleanup removes only ours. */
export const scratchName = (kind: string): string =>
  `websubsub_bench_${kind}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

/** Is PostgreSQL reachable? Resolves with the reason when it is not. */
export async function checkPostgres(): Promise<string | null> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    return `PostgreSQL unreachable at ${databaseUrl}: ${String(error)}`;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Is Redis reachable? Resolves with the reason when it is not. */
export async function checkRedis(): Promise<string | null> {
  const client = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return null;
  } catch (error) {
    return `Redis unreachable at ${redisUrl}: ${String(error)}`;
  } finally {
    client.disconnect();
  }
}

/** Drop the tables and Redis keys a case created, whatever state its process ended in. */
export async function cleanUp(scratch: { table?: string; redisPrefix?: string }): Promise<void> {
  if (scratch.table) {
    // The queue's tables, when the queue runs on PostgreSQL, are named after the store's.
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>(
        `SELECT tablename AS name FROM pg_tables
          WHERE schemaname = current_schema() AND starts_with(tablename, $1)`,
        [scratch.table],
      );
      for (const { name } of rows) await client.query(`DROP TABLE IF EXISTS "${name}"`);
    } finally {
      await client.end();
    }
  }

  if (scratch.redisPrefix) {
    const redis = new Redis(redisUrl);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(
          cursor,
          'MATCH',
          `${scratch.redisPrefix}*`,
          'COUNT',
          1000,
        );
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  }
}

/** Versions of the servers, for the report. */
export async function serverVersions(): Promise<{ postgres: string | null; redis: string | null }> {
  let postgres: string | null = null;
  let redis: string | null = null;

  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    postgres = rows[0]?.server_version ?? null;
  } catch {
    // Reported as missing.
  } finally {
    await client.end().catch(() => {});
  }

  const probe = new Redis(redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    const info = await probe.info('server');
    const persistence = await probe.config('GET', 'appendonly');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    redis = `${version} (appendonly ${String((persistence as string[])[1])})`;
  } catch {
    // Reported as missing.
  } finally {
    probe.disconnect();
  }

  return { postgres, redis };
}

/** CPU seconds Redis has used so far (user and system), to tell how busy it was during a run. */
export async function redisCpuSeconds(): Promise<number | null> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    const info = await redis.info('cpu');
    const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]);
    const system = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
    return Number.isFinite(user + system) ? user + system : null;
  } catch {
    return null;
  } finally {
    redis.disconnect();
  }
}

/** Transactions committed in the database so far, to count those a delivery costs. */
export async function postgresCommits(): Promise<number | null> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    // Statistics reach the shared counters up to a second late: flush ours, read everyone's.
    await client.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await client.query<{ commits: string }>(
      'SELECT xact_commit AS commits FROM pg_stat_database WHERE datname = current_database()',
    );
    return rows[0] ? Number(rows[0].commits) : null;
  } catch {
    return null;
  } finally {
    await client.end().catch(() => {});
  }
}

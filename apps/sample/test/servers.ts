import { skipUnlessCi } from '@websubsub/core/testing';
import { silentLogger } from '@websubsub/core';
import { Redis } from 'ioredis';
import pg from 'pg';

import { createSampleApp, readConfig, type SampleApp } from '../src/index.js';
import { withUser } from '../src/roles.js';
import { freePort } from './helpers-cluster.js';

const DATABASE_URL = withUser(process.env['DATABASE_URL'] ?? 'postgres://127.0.0.1:5432/test');
const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Skip (or, in CI, fail) a suite when PostgreSQL or Redis cannot be reached. */
export async function requireServers(context: Mocha.Context): Promise<void> {
  const problems: string[] = [];
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.end();
  } catch (error) {
    problems.push(`PostgreSQL at DATABASE_URL: ${(error as Error).message}`);
  }
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 3000,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    problems.push(`Redis at REDIS_URL: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
  if (problems.length === 0) return;

  skipUnlessCi(context, `servers cannot be used: ${problems.join('; ')}`);
}

/** Drop the tables and Redis keys a test created under its own names. */
export async function cleanUp(names: {
  WEBSUBSUB_POSTGRES_TABLE?: string;
  WEBSUBSUB_REDIS_PREFIX?: string;
}): Promise<void> {
  if (names.WEBSUBSUB_POSTGRES_TABLE) {
    const [schema, base] = names.WEBSUBSUB_POSTGRES_TABLE.includes('.')
      ? names.WEBSUBSUB_POSTGRES_TABLE.split('.')
      : [null, names.WEBSUBSUB_POSTGRES_TABLE];
    const named = (suffix: string) => (schema ? `"${schema}".` : '') + `"${base}${suffix}"`;
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect().catch(() => undefined);
    await client
      .query(
        // Agenda's jobs table is in the connection's schema whatever the store's.
        `DROP TABLE IF EXISTS ${named('')}, ${named('_notifications')}, "${base}_jobs", ` +
          `${named('_queue')}, ${named('_queue_schedules')}, ${named('_locks')}`,
      )
      .catch(() => undefined);
    await client.end().catch(() => undefined);
  }
  if (names.WEBSUBSUB_REDIS_PREFIX) {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(
          cursor,
          'MATCH',
          `${names.WEBSUBSUB_REDIS_PREFIX}*`,
          'COUNT',
          500,
        );
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  }
}

/** The sample app in this process, listening on a free port that its SITE_URL names. */
export async function startSample(
  env: Record<string, string> = {},
): Promise<{ sample: SampleApp; api: string }> {
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const sample = await createSampleApp(
    readConfig({ PORT: String(port), SITE_URL: api, ...env }),
    silentLogger,
  );
  await sample.listen();
  return { sample, api };
}

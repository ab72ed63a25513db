/**
 * One upkeep measurement in its own process: seed N subscriptions into one store, then time one
 * refresh sweep, one retry sweep, and both again with nothing left due. Renewals and retries go
 * to a queue that only counts them, and locks are the embedded ones, so the store is measured.
 */
import { randomUUID } from 'node:crypto';

import {
  createMemoryStore,
  createSubscriber,
  type JobQueue,
  type Subscription,
  type SubscriptionStore,
} from '@websubsub/core';
import { createPostgresStore } from '@websubsub/postgres';
import pg from 'pg';

import { serveParent } from '../lib/child.js';
import { HANDLER, HUB, SECRET } from '../lib/delivery.js';
import { baseUrl, verifiedRecord } from '../lib/records.js';
import { databaseUrl } from '../lib/services.js';

const [storeName = 'memory', totalText = '10000'] = process.argv.slice(2);
const total = Number(totalText);
const now = new Date('2026-06-01T12:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Record `index` of the data set: one in ten has a lease ending within the renewal window, one
 * in ten failed to reach its hub and is due for a retry, one in ten waits for a verification
 * retried later, the rest hold leases ending five to thirty days from now.
 */
function record(index: number): Subscription {
  const id = randomUUID();
  const topic = `https://blog.example.com/feed/${index}`;
  switch (index % 10) {
    case 0:
      return verifiedRecord(id, now, {
        topic,
        leaseExpiresAt: new Date(now.getTime() + 12 * HOUR),
      });
    case 1:
      return verifiedRecord(id, now, {
        topic,
        subscribeStatus: 'connerror',
        leaseExpiresAt: null,
        connectionErrors: 1,
        retryAt: new Date(now.getTime() - 60_000),
      });
    case 2:
      return verifiedRecord(id, now, {
        topic,
        subscribeStatus: 'verifying',
        leaseExpiresAt: null,
        retryAt: new Date(now.getTime() + HOUR / 2),
      });
    default:
      return verifiedRecord(id, now, {
        topic,
        leaseExpiresAt: new Date(now.getTime() + (5 + (index % 26)) * DAY),
      });
  }
}

/** The same data set, written by PostgreSQL itself: far faster than a million INSERTs. */
async function seedPostgres(table: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO "${table}" (id, topic, hub, handler, callback_url, secret, lease_seconds,
         lease_expires_at, subscribe_status, unsubscribe_status, connection_errors,
         last_subscribe_at, created_at, retry_at, static)
       SELECT u.id, 'https://blog.example.com/feed/' || u.g, $1, $2,
         $3 || '/websub/' || $2 || '/' || u.id, $4, 864000,
         CASE u.g % 10 WHEN 0 THEN $5::timestamptz + interval '12 hours'
           WHEN 1 THEN NULL WHEN 2 THEN NULL
           ELSE $5::timestamptz + (5 + u.g % 26) * interval '1 day' END,
         CASE u.g % 10 WHEN 1 THEN 'connerror' WHEN 2 THEN 'verifying' ELSE 'verified' END,
         NULL, CASE u.g % 10 WHEN 1 THEN 1 ELSE 0 END, $5, $5,
         CASE u.g % 10 WHEN 1 THEN $5::timestamptz - interval '1 minute'
           WHEN 2 THEN $5::timestamptz + interval '30 minutes' ELSE NULL END,
         false
       FROM (SELECT g, gen_random_uuid()::text AS id FROM generate_series(0, $6 - 1) AS g) AS u`,
      [HUB, HANDLER, baseUrl, SECRET, now, total],
    );
    await client.query(`ANALYZE "${table}"`);
  } finally {
    await client.end();
  }
}

function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Time one sweep and the highest heap and resident memory seen during it, above the start. */
async function measure<T>(work: () => Promise<T>): Promise<{
  result: T;
  ms: number;
  peakHeapBytes: number;
  peakRssBytes: number;
}> {
  collect();
  const start = process.memoryUsage();
  let peakHeap = start.heapUsed;
  let peakRss = start.rss;
  const sample = () => {
    const usage = process.memoryUsage();
    peakHeap = Math.max(peakHeap, usage.heapUsed);
    peakRss = Math.max(peakRss, usage.rss);
  };
  const sampler = setInterval(sample, 5);

  const began = performance.now();
  const result = await work();
  const ms = performance.now() - began;
  clearInterval(sampler);
  sample();

  return {
    result,
    ms,
    peakHeapBytes: peakHeap - start.heapUsed,
    peakRssBytes: peakRss - start.rss,
  };
}

async function main(): Promise<void> {
  let store: SubscriptionStore;
  let table: string | null = null;

  const seeded = await measure(async () => {
    if (storeName === 'postgres') {
      table = process.env['BENCH_TABLE'] ?? null;
      if (!table) throw new Error('BENCH_TABLE is required');
      const postgres = createPostgresStore({ connectionString: databaseUrl, table });
      await postgres.migrate();
      await seedPostgres(table);
      store = postgres;
    } else {
      const initial: Subscription[] = [];
      for (let index = 0; index < total; index++) initial.push(record(index));
      store = createMemoryStore({ initial });
    }
  });

  let renewals = 0;
  let retries = 0;
  const countingQueue: JobQueue = {
    define: () => {},
    enqueue: async (name) => {
      if (name.endsWith('subscribe')) {
        if (name.includes('unsubscribe')) return;
        if (phase === 'refresh') renewals++;
        else retries++;
      }
    },
    every: async () => {},
    start: async () => {},
    stop: async () => {},
    onFailure: () => {},
  };
  let phase: 'refresh' | 'retry' = 'refresh';

  const subscriber = createSubscriber({
    baseUrl,
    handlers: { [HANDLER]: () => {} },
    store: store!,
    queue: countingQueue,
    upkeep: false,
    now: () => now,
  });

  const refresh = await measure(() => subscriber.refreshSubscriptions());
  phase = 'retry';
  const retry = await measure(() => subscriber.retryFailed());
  const idle = await measure(async () => {
    const first = await subscriber.refreshSubscriptions();
    const second = await subscriber.retryFailed();
    return { examined: first.examined + second.examined };
  });

  collect();
  const rssAfter = process.memoryUsage().rss;
  await store!.close?.();

  process.send?.({
    type: 'result',
    store: storeName,
    total,
    seedMs: seeded.ms,
    rssBytes: rssAfter,
    refresh: { ...refresh, queued: renewals },
    retry: { ...retry, queued: retries },
    idle,
  });
}

serveParent({});
main().catch((error: unknown) => {
  process.send?.({ type: 'failed', error: error instanceof Error ? error.stack : String(error) });
  process.exit(1);
});

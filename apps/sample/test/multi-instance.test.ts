import type { Notification } from '@websubsub/core';
import { makeSubscription } from '@websubsub/core/testing';
import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';
import pg from 'pg';

import { PostgresNotificationLog } from '../src/notifications.js';

import {
  call,
  FAST_UPKEEP,
  handlerRuns,
  isolation,
  killAll,
  numberedBody,
  SERVERS,
  SHORT_LEASE_SECONDS,
  sleep,
  startForwarder,
  startInstances,
  until,
  type Forwarder,
  type Instance,
  type NotificationJson,
  type SubscriptionJson,
} from './helpers-cluster.js';
import { cleanUp, requireServers } from './servers.js';

const POSTGRES_ALONE = {
  DATABASE_URL: SERVERS.DATABASE_URL,
  WEBSUBSUB_QUEUE: 'postgres',
  WEBSUBSUB_LOCK: 'postgres',
};

for (const { instanceCount, subscriptionCount, deliveryCount, servers, sharing } of [
  {
    instanceCount: 2,
    subscriptionCount: 10,
    deliveryCount: 100,
    servers: SERVERS,
    sharing: 'PostgreSQL and Redis',
  },
  {
    instanceCount: 3,
    subscriptionCount: 15,
    deliveryCount: 150,
    servers: SERVERS,
    sharing: 'PostgreSQL and Redis',
  },
  {
    instanceCount: 2,
    subscriptionCount: 10,
    deliveryCount: 100,
    servers: POSTGRES_ALONE,
    sharing: 'PostgreSQL alone (its queue and locks, no Redis)',
  },
]) {
  describe(`${instanceCount} sample processes sharing ${sharing}, hub sends to any`, function () {
    this.timeout(60_000);
    const names = isolation('multi');
    let hub: TestHub;
    let forwarder: Forwarder;
    let instances: Instance[] = [];

    const anyInstance = () => instances[Math.floor(Math.random() * instances.length)] as Instance;

    before(async function () {
      await requireServers(this);
      hub = await startTestHub({ maxLeaseSeconds: SHORT_LEASE_SECONDS });
      forwarder = await startForwarder();
      instances = await startInstances(
        instanceCount,
        { ...servers, ...FAST_UPKEEP, ...names, SITE_URL: forwarder.url },
        forwarder,
      );
    });

    after(async () => {
      await killAll(instances);
      await forwarder?.close();
      await hub?.close();
      await cleanUp(names);
    });

    it('verifies all, renews each lease in one request, handles each delivery once', async () => {
      // Subscriptions, each to its own topic, asked of whichever instance.
      const topics = Array.from({ length: subscriptionCount }, (_, i) =>
        hub.serveFeed(`/multi/${i}`),
      );
      const created = await Promise.all(
        topics.map(async (topic, i) => {
          const { status, json } = await call(anyInstance().api, 'POST', '/subscriptions', {
            topic,
            hub: hub.url,
            secret: `multi-secret-${i}`,
          });
          expect(status, JSON.stringify(json)).to.equal(202);
          return json as SubscriptionJson;
        }),
      );
      const callbacks = new Set(created.map((record) => record.callbackUrl));
      expect(callbacks.size).to.equal(subscriptionCount);
      for (const callback of callbacks)
        expect(callback.startsWith(`${forwarder.url}/`)).to.equal(true);

      const activeAtHub = () =>
        hub
          .subscriptions()
          .filter((entry) => callbacks.has(entry.callback) && entry.state === 'active');
      await hub.waitFor(() => activeAtHub().length === subscriptionCount, 10_000);
      const firstVerified = Date.now();

      // Deliveries in waves while leases are being renewed, each wave published concurrently.
      const waves = 5;
      const perWave = deliveryCount / waves;
      const expected = new Map<string, { subscriptionId: string; body: string }>();
      const statuses: Array<number | null> = [];
      for (let wave = 0; wave < waves; wave++) {
        const published = Array.from({ length: perWave }, async (_, j) => {
          const k = wave * perWave + j;
          const i = k % subscriptionCount;
          const body = numberedBody(`multi/${i}`, Math.floor(k / subscriptionCount));
          expected.set(`${created[i]!.id}|${body}`, { subscriptionId: created[i]!.id, body });
          const results = await hub.publish(topics[i]!, {
            body,
            contentType: 'application/atom+xml',
          });
          const callback = created[i]!.callbackUrl;
          const atHub = () =>
            JSON.stringify({
              hub: hub.subscriptions().find((entry) => entry.callback === callback),
              requests: hub.requests.filter((request) => request.callback === callback),
            });
          expect(results.length, `publish ${k} reached no subscription: ${atHub()}`).to.equal(1);
          statuses.push(results[0]!.status);
        });
        await Promise.all(published);
        await sleep(400);
      }
      expect(statuses.filter((status) => status === 202)).to.have.length(deliveryCount);

      // Every delivery is listed once, on every instance (the log is shared)...
      const listed = await until(
        async () => {
          const { json } = await call(anyInstance().api, 'GET', '/notifications');
          const mine = (json as NotificationJson[]).filter((entry) =>
            expected.has(`${entry.subscriptionId}|${entry.body}`),
          );
          return mine.length >= deliveryCount ? mine : undefined;
        },
        `${deliveryCount} deliveries in /notifications`,
        20_000,
      );
      const listedKeys = listed.map((entry) => `${entry.subscriptionId}|${entry.body}`);
      expect(new Set(listedKeys).size).to.equal(deliveryCount);
      expect(listedKeys).to.have.length(deliveryCount);
      for (const instance of instances) {
        const { json } = await call(instance.api, 'GET', '/notifications');
        expect((json as NotificationJson[]).length).to.equal(listed.length);
      }

      // ...and leases keep being renewed for a few more cycles.
      const renewalCycles = 3;
      await sleep(Math.max(0, firstVerified + renewalCycles * 2500 - Date.now()));

      // Every record ends verified, as any instance shows it.
      const records = await until(
        async () => {
          const { json } = await call(anyInstance().api, 'GET', '/subscriptions');
          const mine = (json as SubscriptionJson[]).filter((record) =>
            callbacks.has(record.callbackUrl),
          );
          return mine.length === subscriptionCount &&
            mine.every((record) => record.subscribeStatus === 'verified')
            ? mine
            : undefined;
        },
        'every subscription verified',
        10_000,
      );
      for (const record of records) {
        expect(
          record.hubErrors + record.connectionErrors + record.verifyErrors,
          record.id,
        ).to.equal(0);
      }
      expect(activeAtHub()).to.have.length(subscriptionCount);

      // One subscribe request per cycle: never two for one callback within 1.5 s, and as
      // many as the cycles that passed (first request plus 2–3 s per renewal).
      const elapsed = Date.now() - firstVerified;
      for (const callback of callbacks) {
        const times = hub.requests
          .filter((request) => request.callback === callback && request.mode === 'subscribe')
          .map((request) => request.receivedAt.getTime());
        const gaps = times.slice(1).map((time, i) => time - times[i]!);
        const detail = `gaps between requests for ${callback}: ${gaps}`;
        expect(Math.min(...gaps), detail).to.be.at.least(1500);
        expect(times.length, callback).to.be.at.least(renewalCycles);
        expect(times.length, callback).to.be.at.most(2 + Math.ceil(elapsed / 1900));
      }
      const mineVerifications = hub.verifications.filter((entry) => callbacks.has(entry.callback));
      expect(mineVerifications.every((entry) => entry.confirmed)).to.equal(true);

      // The handler ran exactly once per delivery, counted from every instance's log lines:
      // with lengths numbering the deliveries, (subscription, bytes) names one delivery.
      await sleep(1500);
      const runs = handlerRuns(instances);
      const perDelivery = new Map<string, number>();
      for (const run of runs) {
        const key = `${run.subscriptionId}|${run.bytes}`;
        perDelivery.set(key, (perDelivery.get(key) ?? 0) + 1);
      }
      const expectedRuns = [...expected.values()].map(
        ({ subscriptionId, body }) => `${subscriptionId}|${Buffer.byteLength(body)}`,
      );
      expect(new Set(expectedRuns).size).to.equal(deliveryCount);
      expect(runs).to.have.length(deliveryCount);
      for (const key of expectedRuns) expect(perDelivery.get(key), key).to.equal(1);

      // The hub really reached every instance, and no process fell over.
      for (let target = 0; target < instanceCount; target++) {
        const reached = forwarder.log.filter((entry) => entry.target === target);
        const verified = reached.filter((entry) => entry.method === 'GET' && entry.status === 200);
        const delivered = reached.filter(
          (entry) => entry.method === 'POST' && entry.status === 202,
        );
        expect(verified.length, `verifications answered by instance ${target}`).to.be.above(0);
        expect(delivered.length, `deliveries accepted by instance ${target}`).to.be.above(0);
      }
      expect(forwarder.log.every((entry) => entry.status < 300)).to.equal(true);
      expect(new Set(runs.map((run) => run.instance)).size).to.be.at.least(2);
      for (const instance of instances) expect(instance.alive()).to.equal(true);
    });
  });
}

describe('replicas starting at once on an empty database (in-process, a pool each)', function () {
  this.timeout(20_000);
  const names = isolation('startup');
  const table = `${names.WEBSUBSUB_POSTGRES_TABLE}_notifications`;
  let pools: pg.Pool[] = [];

  before(async function () {
    await requireServers(this);
  });

  after(async () => {
    await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
    await cleanUp(names);
  });

  it('all open the shared notifications table', async () => {
    // What each sample process does on startup, from four at once. Unserialised, their CREATE
    // TABLE IF NOT EXISTS statements race, and PostgreSQL lets only one create the table's type
    // (the others fail on pg_type_typname_nsp_index). The process tests above start replicas
    // together too, but hit this race only now and then.
    pools = Array.from(
      { length: 4 },
      () => new pg.Pool({ connectionString: SERVERS.DATABASE_URL, max: 1 }),
    );
    await Promise.all(pools.map((pool) => pool.query('SELECT 1')));

    const opened = await Promise.allSettled(
      pools.map((pool) => PostgresNotificationLog.open(pool, table, 10)),
    );
    const failures = opened.flatMap((result) =>
      result.status === 'rejected' ? [(result.reason as Error).message] : [],
    );
    expect(failures, 'replicas that could not start').to.deep.equal([]);
  });

  it('keep the notifications table to about the newest WEBSUBSUB_NOTIFICATIONS_KEPT', async () => {
    const pool = new pg.Pool({ connectionString: SERVERS.DATABASE_URL, max: 1 });
    pools.push(pool);
    const log = await PostgresNotificationLog.open(pool, table, 10);
    const subscription = makeSubscription();
    const start = Date.parse('2026-12-01T00:00:00Z');
    for (let index = 0; index < 250; index++) {
      await log.add({
        subscription,
        topic: subscription.topic,
        contentType: 'text/plain',
        headers: {},
        body: Buffer.from(`entry ${index}`),
        receivedAt: new Date(start + index * 1000),
      } as unknown as Notification);
    }

    const { rows } = await pool.query<{ count: string }>(`SELECT count(*) FROM "${table}"`);
    // Cut at the 100th and 200th add: the newest 10 then, and the 50 added since.
    expect(Number(rows[0]!.count)).to.equal(60);
    const newest = await log.newestFirst();
    expect(newest.map((entry) => entry.body)).to.deep.equal(
      Array.from({ length: 10 }, (_, index) => `entry ${249 - index}`),
    );
  });
});

import { skipUnlessCi } from '@websubsub/core/testing';
import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';

import {
  call,
  FAST_UPKEEP,
  freePort,
  handlerRuns,
  isolation,
  killAll,
  numberedBody,
  SERVERS,
  SHORT_LEASE_SECONDS,
  sleep,
  startForwarder,
  startInstances,
  startRedisServer,
  until,
  type Forwarder,
  type Instance,
  type NotificationJson,
  type RedisServer,
  type SubscriptionJson,
} from './helpers-cluster.js';
import { cleanUp, requireServers } from './servers.js';

/** A failed request waiting for its retry, or (for a moment) the retry being sent. */
const RETRYING = ['connerror', 'requesting'];

/** States from which nothing is retried any more: the end of the road, or given up. */
function stranded(record: SubscriptionJson): boolean {
  if (record.subscribeStatus === 'verified' || record.subscribeStatus === 'denied') return false;
  return record.retryAt === null || (record.lastError ?? '').startsWith('Gave up');
}

/** Subscribe to `count` topics of their own at `hub`, each through some instance, with a secret. */
async function subscribeAll(
  hub: TestHub,
  instances: Instance[],
  label: string,
  count: number,
): Promise<{ topics: string[]; records: SubscriptionJson[] }> {
  const topics = Array.from({ length: count }, (_, i) => hub.serveFeed(`/${label}/${i}`));
  const records = await Promise.all(
    topics.map(async (topic, i) => {
      const instance = instances[i % instances.length] as Instance;
      const { status, json } = await call(instance.api, 'POST', '/subscriptions', {
        topic,
        hub: hub.url,
        secret: `${label}-secret-${i}`,
      });
      expect(status, JSON.stringify(json)).to.equal(202);
      return json as SubscriptionJson;
    }),
  );
  return { topics, records };
}

const keyOf = (subscriptionId: string, body: string) => `${subscriptionId}|${body}`;

/** The notifications of these deliveries listed by an instance, by key. */
async function listed(instance: Instance, keys: Set<string>): Promise<string[]> {
  const { json } = await call(instance.api, 'GET', '/notifications');
  return (json as NotificationJson[])
    .map((entry) => keyOf(entry.subscriptionId, entry.body))
    .filter((key) => keys.has(key));
}

describe('an instance killed by SIGKILL with deliveries in flight (three processes)', function () {
  this.timeout(80_000);
  const names = isolation('sigkill');
  let hub: TestHub;
  let forwarder: Forwarder;
  let instances: Instance[] = [];

  before(async function () {
    await requireServers(this);
    hub = await startTestHub({ maxLeaseSeconds: SHORT_LEASE_SECONDS });
    forwarder = await startForwarder();
    instances = await startInstances(
      3,
      // Verifications sent to the dead instance fail: a shorter wait retries them sooner.
      {
        ...SERVERS,
        ...FAST_UPKEEP,
        ...names,
        WEBSUBSUB_VERIFY_WAIT_TIME: '2',
        SITE_URL: forwarder.url,
      },
      forwarder,
    );
  });

  after(async () => {
    await killAll(instances);
    await forwarder?.close();
    await hub?.close();
    await cleanUp(names);
  });

  it('hands each delivery answered 2xx to the handler, leaves none unretried', async () => {
    const count = 10;
    const { topics, records } = await subscribeAll(hub, instances, 'sigkill', count);
    const callbacks = new Set(records.map((record) => record.callbackUrl));
    await hub.waitFor(
      () =>
        hub.subscriptions().filter((s) => callbacks.has(s.callback) && s.state === 'active')
          .length === count,
      10_000,
    );

    // Waves of concurrent deliveries; the victim dies just after the third wave is sent off.
    // It stays in the forwarder's rotation, so the hub sees 502s for its share from then on.
    const victim = instances[1] as Instance;
    const survivors = instances.filter((instance) => instance !== victim);
    const accepted = new Map<string, { subscriptionId: string; body: string }>();
    let refused = 0;
    let unreached = 0;
    const waves: Array<Promise<void>> = [];
    let killedAt = 0;
    const sentAfterKill = new Set<string>();
    for (let wave = 0; wave < 6; wave++) {
      const afterKill = killedAt > 0;
      const sent = Array.from({ length: 25 }, async (_, j) => {
        const k = wave * 25 + j;
        const i = k % count;
        const body = numberedBody(`sigkill/${i}`, Math.floor(k / count));
        const results = await hub.publish(topics[i]!, { body });
        // A lease that lapsed at the hub while its renewal was lost with the victim: no delivery.
        if (results.length === 0) return void unreached++;
        const { status } = results[0]!;
        if (status !== null && status >= 200 && status < 300) {
          accepted.set(keyOf(records[i]!.id, body), { subscriptionId: records[i]!.id, body });
          if (afterKill) sentAfterKill.add(keyOf(records[i]!.id, body));
        } else {
          refused++;
        }
      });
      waves.push(Promise.all(sent).then(() => undefined));
      if (wave === 2) {
        await sleep(20);
        victim.child.kill('SIGKILL');
        killedAt = Date.now();
      }
      await sleep(250);
    }
    await Promise.all(waves);
    await victim.exited;
    expect(victim.child.signalCode).to.equal('SIGKILL');
    const tally = `accepted ${accepted.size}, refused ${refused}, unreached ${unreached}`;
    expect(accepted.size, tally).to.be.at.least(75);
    expect(refused, `deliveries the hub saw fail once the victim was dead: ${tally}`).to.be.above(
      0,
    );
    expect(forwarder.log.some((entry) => entry.target === 1 && entry.status === 502)).to.equal(
      true,
    );

    // A job locked by the victim waits out its lock lifetime (3 s), then a survivor runs it.
    const keys = new Set(accepted.keys());
    const inLog = await until(
      async () => {
        const found = await listed(survivors[0]!, keys);
        return found.length >= keys.size ? found : undefined;
      },
      `the ${keys.size} accepted deliveries in /notifications`,
      3000 + 12_000,
    );
    expect(inLog).to.have.length(keys.size);
    expect(new Set(inLog).size).to.equal(keys.size);
    expect(await listed(survivors[1]!, keys)).to.have.length(keys.size);

    // The row is the handler's own work, so every accepted delivery was handled: by the victim
    // before it died, or by a survivor once the victim's lock on the job lapsed (a run cut short
    // after its row was written runs again: at least once, and the shared log keeps one row).
    // Content sent after the kill could only be accepted by survivors, and each of those
    // deliveries shows a survivor's handler run in its log. (The victim's own log lines are
    // no proof either way: pino writes asynchronously, and SIGKILL drops what is unwritten.)
    await sleep(500);
    const bySurvivors = new Set(
      handlerRuns(survivors).map((run) => `${run.subscriptionId}|${run.bytes}`),
    );
    const notRunBySurvivors = [...accepted.entries()]
      .filter(([key]) => sentAfterKill.has(key))
      .filter(
        ([, { subscriptionId, body }]) =>
          !bySurvivors.has(`${subscriptionId}|${Buffer.byteLength(body)}`),
      )
      .map(([, { body }]) => body.slice(0, 40));
    expect(sentAfterKill.size).to.be.above(0);
    expect(notRunBySurvivors, 'sent after the kill, not run by a survivor').to.deep.equal([]);

    // No record is stranded: each is verified, or pending with a retry on the calendar...
    const { json } = await call(survivors[0]!.api, 'GET', '/subscriptions');
    const mine = (json as SubscriptionJson[]).filter((record) => callbacks.has(record.callbackUrl));
    expect(mine).to.have.length(count);
    expect(mine.filter(stranded), JSON.stringify(mine.filter(stranded))).to.deep.equal([]);

    // ...and the retries do happen: each record is verified again after the kill (its lease
    // then ends more than a lease after the kill). Usually within seconds; a record whose lock
    // the victim held waits for the lock's time to live (hub timeout + 30 s) first.
    const renewedSinceKill = new Set<string>();
    await until(
      async () => {
        const { json: now } = await call(survivors[1]!.api, 'GET', '/subscriptions');
        for (const record of now as SubscriptionJson[]) {
          const leaseEnd = record.leaseExpiresAt ? Date.parse(record.leaseExpiresAt) : 0;
          if (leaseEnd > killedAt + SHORT_LEASE_SECONDS * 1000) renewedSinceKill.add(record.id);
        }
        return renewedSinceKill.size === count ? true : undefined;
      },
      'every subscription verified again after the kill',
      // The retry interval, the victim's lock lifetime, and room for a busy two-core machine.
      2000 + 32_000 + 15_000,
    );
    for (const survivor of survivors) expect(survivor.alive()).to.equal(true);
  });
});

describe('Redis stopped and restarted mid-run (two processes, own redis-server)', function () {
  this.timeout(60_000);
  const names = isolation('redisdown');
  let redis: RedisServer | null = null;
  let hub: TestHub;
  let forwarder: Forwarder;
  let instances: Instance[] = [];

  before(async function () {
    await requireServers(this);
    try {
      redis = await startRedisServer();
    } catch (error) {
      // Stopping the shared Redis would break every other test: this one needs its own.
      skipUnlessCi(this, `no private Redis could be started (${(error as Error).message})`);
    }
    hub = await startTestHub({ maxLeaseSeconds: SHORT_LEASE_SECONDS });
    forwarder = await startForwarder();
    instances = await startInstances(
      2,
      { ...SERVERS, ...FAST_UPKEEP, ...names, REDIS_URL: redis!.url, SITE_URL: forwarder.url },
      forwarder,
    );
  });

  after(async () => {
    await killAll(instances);
    await forwarder?.close();
    await hub?.close();
    await redis?.kill();
    await cleanUp({ WEBSUBSUB_POSTGRES_TABLE: names.WEBSUBSUB_POSTGRES_TABLE });
  });

  it('refuses deliveries with 503 while Redis is gone, keeps running, then resumes', async () => {
    const count = 4;
    const { topics, records } = await subscribeAll(hub, instances, 'redisdown', count);
    const callbacks = new Set(records.map((record) => record.callbackUrl));
    const activeAtHub = () =>
      hub.subscriptions().filter((s) => callbacks.has(s.callback) && s.state === 'active');
    await hub.waitFor(() => activeAtHub().length === count, 10_000);

    const publishAll = async (label: string) => {
      const out = new Map<string, number | null>();
      await Promise.all(
        topics.map(async (topic, i) => {
          const body = `<entry><id>${label}/${i}</id></entry>`;
          const [result] = await hub.publish(topic, { body });
          out.set(keyOf(records[i]!.id, body), result ? result.status : -1);
        }),
      );
      return out;
    };

    // Before: accepted and handled. Redis here keeps nothing on disk, so jobs still queued when
    // it dies die with it; waiting for these first keeps that loss out of this test.
    const before = await publishAll('before');
    expect([...before.values()]).to.deep.equal(Array(count).fill(202));
    await until(
      async () =>
        (await listed(instances[0]!, new Set(before.keys()))).length === count ? true : undefined,
      'deliveries from before the outage',
      10_000,
    );

    await redis!.kill();
    const outageStarted = Date.now();

    // While gone: content is refused with 503 (the hub keeps it and retries), not accepted and
    // lost.
    await sleep(300);
    const during = await publishAll('during');
    for (const instance of instances) {
      expect(
        instance.alive(),
        `instance on port ${instance.port} died:\n${instance.stderr()}`,
      ).to.equal(true);
    }
    expect([...during.values()], 'answers to deliveries while Redis is gone').to.deep.equal(
      Array(count).fill(503),
    );
    // A subscription asked for now is kept in PostgreSQL; its request waits for the retry sweep.
    const lateTopic = hub.serveFeed('/redisdown/late');
    const late = await call(instances[0]!.api, 'POST', '/subscriptions', {
      topic: lateTopic,
      hub: hub.url,
    });
    expect(late.status, JSON.stringify(late.json)).to.equal(202);
    expect(late.json.retryAt).to.be.a('string');
    const { status: listStatus } = await call(instances[1]!.api, 'GET', '/subscriptions');
    expect(listStatus).to.equal(200);

    await sleep(Math.max(0, outageStarted + 3000 - Date.now()));
    for (const instance of instances) {
      expect(instance.alive(), instance.stderr()).to.equal(true);
      const said = instance.logs.filter((entry) => Number(entry['time']) >= outageStarted);
      expect(said.some((entry) => entry['msg'] === 'Redis connection error')).to.equal(true);
    }
    const refusals = instances.flatMap((instance) =>
      instance.logs.filter((entry) => entry['msg'] === 'Could not queue content'),
    );
    expect(refusals).to.have.length(count);

    await redis!.start();
    const outageEnded = Date.now();

    // Back: content is accepted and handled again...
    const after = await publishAll('after');
    expect([...after.values()]).to.deep.equal(Array(count).fill(202));
    await until(
      async () =>
        (await listed(instances[1]!, new Set(after.keys()))).length === count ? true : undefined,
      'deliveries from after the outage',
      10_000,
    );

    // ...new subscriptions verify...
    const fresh = await call(instances[1]!.api, 'POST', '/subscriptions', {
      topic: hub.serveFeed('/redisdown/fresh'),
      hub: hub.url,
    });
    expect(fresh.status).to.equal(202);
    const verified = (id: string) =>
      until(
        async () => {
          const { json } = await call(instances[0]!.api, 'GET', `/subscriptions/${id}`);
          return json.subscribeStatus === 'verified' ? json : undefined;
        },
        `subscription ${id} verified`,
        10_000,
      );
    await verified(fresh.json.id);

    // ...and the upkeep sweeps run again: leases keep being renewed, and the request that
    // could not be queued during the outage is sent by the retry sweep. (The sweeps are
    // recurring jobs kept in Redis; this Redis came back empty.)
    await until(
      () =>
        [...callbacks].every((callback) =>
          hub.requests.some(
            (request) =>
              request.callback === callback && request.receivedAt.getTime() > outageEnded,
          ),
        )
          ? true
          : undefined,
      'a renewal of every subscription after Redis returned (the refresh sweep running again)',
      10_000,
    );
    await verified(late.json.id);
    for (const instance of instances) expect(instance.alive(), instance.stderr()).to.equal(true);
  });
});

describe('a hub that is down for a while (two processes)', function () {
  this.timeout(60_000);
  const names = isolation('hubdown');
  let hub: TestHub | null = null;
  let forwarder: Forwarder;
  let instances: Instance[] = [];

  before(async function () {
    await requireServers(this);
    forwarder = await startForwarder();
    instances = await startInstances(
      2,
      { ...SERVERS, ...FAST_UPKEEP, ...names, SITE_URL: forwarder.url },
      forwarder,
    );
  });

  after(async () => {
    await killAll(instances);
    await forwarder?.close();
    await hub?.close();
    await cleanUp(names);
  });

  it('retries with growing backoff while it is down, and succeeds once it is up', async () => {
    const port = await freePort();
    hub = await startTestHub({ port, maxLeaseSeconds: SHORT_LEASE_SECONDS });
    const hubUrl = hub.url;
    const subscribe = async (topic: string) => {
      const { status, json } = await call(instances[0]!.api, 'POST', '/subscriptions', {
        topic,
        hub: hubUrl,
      });
      expect(status, JSON.stringify(json)).to.equal(202);
      return json as SubscriptionJson;
    };
    const get = async (id: string) =>
      (await call(instances[1]!.api, 'GET', `/subscriptions/${id}`)).json as SubscriptionJson;

    // One subscription verified while the hub is up: its renewal will meet the outage.
    const renewing = await subscribe(hub.serveFeed('/hubdown/renewing'));
    await until(
      async () => ((await get(renewing.id)).subscribeStatus === 'verified' ? true : undefined),
      'the first subscription verified',
      10_000,
    );

    await hub.close();
    hub = null;
    const downSince = Date.now();
    const created = await subscribe(`http://127.0.0.1:${port}/hubdown/created`);

    // Watch every attempt: each shows as a new lastSubscribeAt, each failure as a new count of
    // connection errors with the retryAt it was given (the one seen longest: the record also
    // passes through short-lived retryAt values while an attempt is being made).
    const attempts = new Map<string, number>();
    const seenRetryAt = new Map<number, Map<string, { record: SubscriptionJson; polls: number }>>();
    while (Date.now() - downSince < 9500) {
      const record = await get(created.id);
      if (record.lastSubscribeAt)
        attempts.set(record.lastSubscribeAt, Date.parse(record.lastSubscribeAt));
      if (record.subscribeStatus === 'connerror' && record.retryAt) {
        const byValue = seenRetryAt.get(record.connectionErrors) ?? new Map();
        const seen = byValue.get(record.retryAt) ?? { record, polls: 0 };
        byValue.set(record.retryAt, { record, polls: seen.polls + 1 });
        seenRetryAt.set(record.connectionErrors, byValue);
      }
      await sleep(100);
    }
    const downFor = Date.now() - downSince;

    const times = [...attempts.values()].sort((a, b) => a - b);
    const gaps = times.slice(1).map((time, i) => time - times[i]!);
    const current = await get(created.id);
    const detail = JSON.stringify({ gaps, current });
    expect(current.subscribeStatus, detail).to.be.oneOf(RETRYING);
    expect(current.retryAt, detail).to.be.a('string');
    expect(current.lastError, detail).to.match(/ECONNREFUSED|connect|refused/i);
    // First retry at the next sweep, then about 2 s, then 4 s (the cap): attempts thin out,
    // and there are only so many in 9.5 s.
    expect(times.length, detail).to.be.within(3, 5);
    expect(current.connectionErrors, detail).to.be.within(3, 5);
    expect(gaps[0]!, detail).to.be.below(2000);
    // The retryAt each failure was given: about 2 s (±20 %) after the second, then the 4 s cap
    // (jittered down by up to 20 %). (After the first it is the next sweep, shown by gaps[0].)
    const waits = [...seenRetryAt].map(([n, byValue]) => {
      const { record } = [...byValue.values()].sort((a, b) => b.polls - a.polls)[0]!;
      return [n, Date.parse(record.retryAt!) - Date.parse(record.lastSubscribeAt!)] as const;
    });
    const waitDetail = `${detail} waits ${JSON.stringify(waits)}`;
    for (const [n, waited] of waits.filter(([n]) => n >= 2)) {
      const [low, high] = n === 2 ? [1600, 2400 + 300] : [3200, 4000 + 300];
      expect(waited, `retry after failure ${n}: ${waitDetail}`).to.be.within(low, high);
    }
    const reachedTheCap = waits.some(([n]) => n >= 3);
    expect(reachedTheCap, waitDetail).to.equal(true);

    // The renewal of the verified one met the outage too, and is being retried the same way.
    const renewal = await get(renewing.id);
    expect(renewal.connectionErrors, JSON.stringify(renewal)).to.be.at.least(2);
    expect(renewal.subscribeStatus, JSON.stringify(renewal)).to.be.oneOf(RETRYING);
    expect(renewal.retryAt).to.be.a('string');
    expect(downFor).to.be.below(11_000);

    // The hub comes back on the same port: both end verified at the next retry.
    hub = await startTestHub({ port, maxLeaseSeconds: SHORT_LEASE_SECONDS });
    const backSince = Date.now();
    await until(
      async () => {
        const [a, b] = await Promise.all([get(created.id), get(renewing.id)]);
        return a.subscribeStatus === 'verified' && b.subscribeStatus === 'verified'
          ? true
          : undefined;
      },
      'both subscriptions verified once the hub is back',
      9000,
    );
    const callbacks = [created.callbackUrl, renewing.callbackUrl];
    const up = hub;
    await up.waitFor(
      () =>
        callbacks.every((callback) =>
          up.subscriptions().some((s) => s.callback === callback && s.state === 'active'),
        ),
      3000,
    );
    expect(Date.now() - backSince).to.be.below(7000);
    const final = await get(created.id);
    expect(final.connectionErrors).to.be.at.most(current.connectionErrors + 1);
    for (const instance of instances) expect(instance.alive()).to.equal(true);
  });
});

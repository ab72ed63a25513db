import { expect } from 'chai';
import { get } from 'node:http';

import {
  createMemoryQueue,
  createMemoryStore,
  createSubscriber,
  hasGivenUp,
  type MemoryQueue,
  type MemoryStore,
  type Subscriber,
  type SubscriberOptions,
  type Subscription,
} from '../src/index.js';
import { eventually, startCallbackServer, type CallbackServer } from './helpers/callback-server.js';
import { startTestServer, type TestServer } from './helpers/discovery-server.js';
import { startRecordingHub, type RecordingHub } from './helpers/recording-hub.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START = Date.parse('2026-01-01T00:00:00Z');

describe('upkeep: renewal and retries with a controllable clock', () => {
  let hub: RecordingHub;
  let server: CallbackServer;
  let store: MemoryStore;
  let queue: MemoryQueue;
  let clock: number;
  let subscriber: Subscriber;

  async function build(options: Partial<SubscriberOptions> = {}) {
    await subscriber?.stop();
    subscriber = createSubscriber({
      baseUrl: server.origin,
      handlers: { news: () => {} },
      store,
      queue,
      upkeep: false,
      now: () => new Date(clock),
      retryIntervalMs: 10 * 60_000,
      retryBackoffMaxMs: DAY,
      ...options,
    });
    server.attach(subscriber);
    await subscriber.start();
  }

  beforeEach(async () => {
    hub = await startRecordingHub();
    server = await startCallbackServer();
    store = createMemoryStore();
    queue = createMemoryQueue({ backoffMs: 5 });
    clock = START;
    await build();
  });

  afterEach(async () => {
    await subscriber.stop();
    await server.close();
    await hub.close();
  });

  /** Store a record directly in a given state. */
  async function seed(topic: string, fields: Partial<Subscription>): Promise<Subscription> {
    const record = await subscriber.subscribe({ topic, hub: hub.url });
    await queue.idle();
    return (await store.transition(record.id, { set: fields })) as Subscription;
  }

  const requestsFor = (record: Subscription) =>
    hub.requests.filter((request) => request.params.get('hub.callback') === record.callbackUrl);

  /** Verify a pending subscribe request as its hub would, granting `leaseSeconds`. */
  async function grant(record: Subscription, leaseSeconds: number): Promise<void> {
    const url = new URL(record.callbackUrl);
    url.searchParams.set('hub.mode', 'subscribe');
    url.searchParams.set('hub.topic', record.topic);
    url.searchParams.set('hub.challenge', 'c');
    url.searchParams.set('hub.lease_seconds', String(leaseSeconds));
    const answer = await fetch(url);
    expect(answer.status).to.equal(200);
  }

  it('renews exactly the verified records whose lease ends within the window', async () => {
    const lease = (ms: number) => new Date(START + ms);
    const soon = await seed('https://a.example/soon', {
      subscribeStatus: 'verified',
      leaseExpiresAt: lease(HOUR),
    });
    const expired = await seed('https://a.example/expired', {
      subscribeStatus: 'verified',
      leaseExpiresAt: lease(-HOUR),
    });
    const later = await seed('https://a.example/later', {
      subscribeStatus: 'verified',
      leaseExpiresAt: lease(2 * DAY),
    });
    const leaving = await seed('https://a.example/leaving', {
      subscribeStatus: 'verified',
      unsubscribeStatus: 'verifying',
      leaseExpiresAt: lease(HOUR),
    });
    const denied = await seed('https://a.example/denied', {
      subscribeStatus: 'denied',
      leaseExpiresAt: lease(HOUR),
    });
    const failing = await seed('https://a.example/failing', {
      subscribeStatus: 'huberror',
      leaseExpiresAt: lease(HOUR),
    });
    const before = hub.requests.length;

    const report = await subscriber.refreshSubscriptions();
    await queue.idle();

    expect(report.queued).to.equal(2);
    expect(hub.requests.length - before).to.equal(2);
    for (const renewed of [soon, expired]) {
      expect(requestsFor(renewed)).to.have.length(2);
      expect(requestsFor(renewed)[1]!.params.get('hub.mode')).to.equal('subscribe');
      expect((await store.get(renewed.id))!.subscribeStatus).to.equal('verifying');
    }
    for (const untouched of [later, leaving, denied, failing]) {
      expect(requestsFor(untouched)).to.have.length(1);
    }
  });

  it('renews a lease too short for the refresh sweep in its middle, without a sweep', async () => {
    await build({ upkeep: true, refreshIntervalMs: HOUR });
    const record = await seed('https://a.example/short', {});

    await grant(record, 1);
    const verified = (await store.get(record.id))!;
    expect(verified.subscribeStatus).to.equal('verified');
    await queue.idle();

    expect(requestsFor(record)).to.have.length(2);
    expect(requestsFor(record)[1]!.params.get('hub.mode')).to.equal('subscribe');
    expect((await store.get(record.id))!.subscribeStatus).to.equal('verifying');
  });

  it('queues no renewal for a lease the refresh sweep will reach in time', async () => {
    await build({ upkeep: true, refreshIntervalMs: HOUR, renewBeforeMs: 3 * HOUR });
    const record = await seed('https://a.example/long-enough', {});

    await grant(record, 2 * 3600);
    await queue.idle();

    expect(requestsFor(record)).to.have.length(1);
    expect((await store.get(record.id))!.subscribeStatus).to.equal('verified');
  });

  it('drops a queued renewal whose lease has changed since', async () => {
    await build({ upkeep: true, refreshIntervalMs: HOUR });
    const record = await seed('https://a.example/renewed-meanwhile', {});

    await grant(record, 1);
    await store.transition(record.id, { set: { leaseExpiresAt: new Date(START + DAY) } });
    await queue.idle();

    expect(requestsFor(record)).to.have.length(1);
    expect((await store.get(record.id))!.subscribeStatus).to.equal('verified');
  });

  describe('renewal of a subscription whose hub came from discovery', () => {
    let other: RecordingHub;
    let publisher: TestServer;
    /** What the topic answers: the hub it names, or a status without links. */
    let advertised: { hub: string } | { status: number };

    beforeEach(async () => {
      other = await startRecordingHub();
      advertised = { hub: hub.url };
      publisher = await startTestServer((_request, response) => {
        if ('status' in advertised) response.writeHead(advertised.status);
        else response.writeHead(200, { link: `<${advertised.hub}>; rel="hub"` });
        response.end();
      });
    });

    afterEach(async () => {
      await publisher.close();
      await other.close();
    });

    /** Subscribe through discovery and make the lease end within the renewal window. */
    async function discovered(): Promise<Subscription> {
      const topic = `${publisher.origin}/feed`;
      const record = await subscriber.subscribe({ topic, secret: 'kept-secret' });
      await queue.idle();
      const set = { subscribeStatus: 'verified' as const, leaseExpiresAt: new Date(START + HOUR) };
      return (await store.transition(record.id, { set }))!;
    }

    const modesFor = (record: Subscription) =>
      requestsFor(record).map((request) => request.params.get('hub.mode'));

    /** A discovered record whose publisher moved to the other hub, asked there once. */
    async function movedToOther(): Promise<{ record: Subscription; moved?: Subscription }> {
      await build({ verifyWaitMs: 30, retryIntervalMs: 30 });
      const record = await discovered();
      advertised = { hub: other.url };
      await subscriber.refreshSubscriptions();
      await eventually(() => other.requests.length === 1, 'the request at the new hub');
      const [moved] = (await subscriber.list({ hub: other.url })).items;
      return { record, ...(moved ? { moved } : {}) };
    }

    it('looks at the topic again when its hub keeps failing, and follows a move', async () => {
      await build({ verifyWaitMs: 30, retryIntervalMs: 30 });
      const record = await discovered();
      // The hub went away: the renewal failed, and the publisher names another hub now.
      await store.transition(record.id, {
        set: { subscribeStatus: 'connerror', connectionErrors: 1, retryAt: new Date(START) },
      });
      advertised = { hub: other.url };

      await subscriber.retryFailed();
      await eventually(() => other.requests.length === 1, 'the request at the new hub');

      const [moved] = (await subscriber.list({ hub: other.url })).items;
      expect(moved).to.include({ topic: record.topic, hubDiscovered: true });
      expect(other.requests[0]!.params.get('hub.callback')).to.equal(moved!.callbackUrl);
    });

    it('follows a publisher that moved to another hub, leaving here once there holds', async () => {
      // Short waits: the look at the move comes max(verifyWaitMs, retryIntervalMs) later.
      await build({ verifyWaitMs: 30, retryIntervalMs: 30 });
      const record = await discovered();
      expect(record.hubDiscovered).to.equal(true);
      const moves: Array<{ from: Subscription; to: Subscription }> = [];
      subscriber.on('subscription:moved', (move) => void moves.push(move));

      advertised = { hub: other.url };
      await subscriber.refreshSubscriptions();
      await eventually(() => other.requests.length === 1 && modesFor(record).length === 2, 'both');

      const [moved] = (await subscriber.list({ hub: other.url })).items;
      expect(moved).to.include({ topic: record.topic, handler: 'news', hubDiscovered: true });
      expect(moved!.secret).to.equal('kept-secret');
      expect(other.requests[0]!.params.get('hub.mode')).to.equal('subscribe');
      expect(other.requests[0]!.params.get('hub.callback')).to.equal(moved!.callbackUrl);
      expect(moves.map(({ from, to }) => [from.id, to.id])).to.deep.equal([[record.id, moved!.id]]);
      // Renewed here as well: nothing is left until the new hub has verified.
      expect(modesFor(record)).to.deep.equal(['subscribe', 'subscribe']);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(modesFor(record)).to.deep.equal(['subscribe', 'subscribe']);

      await grant(moved!, 86_400);
      await eventually(() => modesFor(record).length === 3, 'the unsubscribe here');
      expect(modesFor(record)).to.deep.equal(['subscribe', 'subscribe', 'unsubscribe']);
      expect((await store.get(moved!.id))!.subscribeStatus).to.equal('verified');
    });

    it('stays at the old hub when the new one denies the subscription', async () => {
      const { record, moved } = await movedToOther();

      const denial = new URL(moved!.callbackUrl);
      denial.searchParams.set('hub.mode', 'denied');
      denial.searchParams.set('hub.topic', moved!.topic);
      expect((await fetch(denial)).status).to.equal(200);
      await queue.idle();

      expect(modesFor(record)).to.deep.equal(['subscribe', 'subscribe']);
      expect(await store.get(record.id)).to.include({ unsubscribeStatus: null });

      // The next renewal here does not ask the hub that denied again.
      const moves: unknown[] = [];
      subscriber.on('subscription:moved', (move) => void moves.push(move));
      const due = { subscribeStatus: 'verified' as const, leaseExpiresAt: new Date(START + HOUR) };
      await store.transition(record.id, { set: due });
      await subscriber.refreshSubscriptions();
      await queue.idle();
      expect(other.requests).to.have.length(1);
      expect(moves).to.deep.equal([]);
      expect(modesFor(record)).to.deep.equal(['subscribe', 'subscribe', 'subscribe']);
      expect((await store.get(moved!.id))!.subscribeStatus).to.equal('denied');
    });

    it('follows the publisher back to the hub it left', async () => {
      const { record, moved } = await movedToOther();
      await grant(moved!, 86_400);
      await eventually(() => modesFor(record).length === 3, 'the unsubscribe here');
      await store.transition(record.id, { set: { unsubscribeStatus: 'verified' } });

      advertised = { hub: hub.url };
      const due = { leaseExpiresAt: new Date(START + HOUR) };
      await store.transition(moved!.id, { set: due });
      await subscriber.refreshSubscriptions();
      await eventually(() => modesFor(record).length === 4, 'the subscribe here again');

      expect(modesFor(record)).to.deep.equal([
        'subscribe',
        'subscribe',
        'unsubscribe',
        'subscribe',
      ]);
      expect(await store.get(record.id)).to.include({
        unsubscribeStatus: null,
        subscribeStatus: 'verifying',
      });
    });

    it('ends the new subscription too when the old one is unsubscribed mid-move', async () => {
      const { record, moved } = await movedToOther();

      await subscriber.unsubscribe(record.id);
      await eventually(() => other.requests.length === 2, 'the unsubscribe at the new hub');

      expect(other.requests[1]!.params.get('hub.mode')).to.equal('unsubscribe');
      expect(other.requests[1]!.params.get('hub.callback')).to.equal(moved!.callbackUrl);
      expect((await store.get(moved!.id))!.unsubscribeStatus).to.not.equal(null);
    });

    it('does not move to a hub whose URL is too long to store, renewing here', async () => {
      const record = await discovered();
      advertised = { hub: `${other.url}?${'t'.repeat(600)}` };

      await subscriber.refreshSubscriptions();
      await queue.idle();

      expect(other.requests).to.have.length(0);
      expect(modesFor(record)).to.deep.equal(['subscribe', 'subscribe']);
      expect((await subscriber.list()).items).to.have.length(1);
    });

    it('renews at the same hub when the topic still names it', async () => {
      const record = await discovered();
      const fetches = publisher.requests.length;

      await subscriber.refreshSubscriptions();
      await queue.idle();

      expect(publisher.requests.length - fetches).to.equal(1);
      expect(requestsFor(record).map((request) => request.params.get('hub.mode'))).to.deep.equal([
        'subscribe',
        'subscribe',
      ]);
      expect(other.requests).to.have.length(0);
      expect((await subscriber.list()).items).to.have.length(1);
    });

    it('renews at the same hub when the topic cannot be discovered again', async () => {
      const record = await discovered();

      advertised = { status: 503 };
      await subscriber.refreshSubscriptions();
      await queue.idle();

      expect(requestsFor(record)).to.have.length(2);
      expect((await store.get(record.id))!.subscribeStatus).to.equal('verifying');
    });

    it('does not fetch the topic again for a subscription whose hub was given', async () => {
      const given = await seed(`${publisher.origin}/feed`, {
        subscribeStatus: 'verified',
        leaseExpiresAt: new Date(START + HOUR),
      });
      expect(given.hubDiscovered).to.equal(false);
      advertised = { hub: other.url };

      await subscriber.refreshSubscriptions();
      await queue.idle();

      expect(publisher.requests).to.have.length(0);
      expect(requestsFor(given)).to.have.length(2);
      expect(other.requests).to.have.length(0);
    });
  });

  it('retries a connection error with doubling backoff, then gives up at the maximum', async () => {
    await build({ maxRetries: { connectionErrors: 4 } });
    await hub.close();
    const record = await subscriber.subscribe({ topic: 'https://a.example/down', hub: hub.url });
    await queue.idle();

    const delays: number[] = [];
    let current = (await store.get(record.id))!;
    expect(current.subscribeStatus).to.equal('connerror');
    while (current.retryAt !== null) {
      delays.push(current.retryAt.getTime() - clock);
      clock = current.retryAt.getTime();
      await subscriber.retryFailed();
      await queue.idle();
      current = (await store.get(record.id))!;
    }

    expect(current.connectionErrors).to.equal(4);
    expect(delays).to.have.length(3);
    expect(delays[0]).to.equal(0);
    const interval = 10 * 60_000;
    expect(delays[1]).to.be.within(0.8 * 2 * interval, 1.2 * 2 * interval);
    expect(delays[2]).to.be.within(0.8 * 4 * interval, 1.2 * 4 * interval);
    expect(current.lastError).to.match(/^Gave up after 4 connection errors/);
    const sweep = await subscriber.retryFailed();
    expect(sweep.examined).to.equal(0);
  });

  it('sends an unverified request again with doubling backoff, then gives up', async () => {
    await build({ maxRetries: { verifyTimeouts: 4 } });
    const record = await subscriber.subscribe({ topic: 'https://a.example/mute', hub: hub.url });
    await queue.idle();

    const sentAt = [clock];
    let current = (await store.get(record.id))!;
    while (current.retryAt !== null) {
      clock = current.retryAt.getTime();
      const before = requestsFor(record).length;
      await subscriber.retryFailed();
      await queue.idle();
      if (requestsFor(record).length > before) sentAt.push(clock);
      current = (await store.get(record.id))!;
    }

    const wait = 60_000;
    const interval = 10 * 60_000;
    const gaps = sentAt.slice(1).map((at, index) => at - sentAt[index]!);
    expect(gaps).to.have.length(3);
    expect(gaps[0]).to.equal(wait);
    expect(gaps[1]! - wait).to.be.within(0.8 * 2 * interval, 1.2 * 2 * interval);
    expect(gaps[2]! - wait).to.be.within(0.8 * 4 * interval, 1.2 * 4 * interval);
    expect(current.verifyTimeouts).to.equal(4);
    expect(current.lastError).to.match(/^Gave up after 4 /);
    // Left waiting for a verification that never comes: reported as given up all the same.
    expect(hasGivenUp(current)).to.equal(true);
    const health = await subscriber.checkHealth();
    expect(health.gaveUp.map(({ id }) => id)).to.deep.equal([record.id]);
  });

  it('retries a request never verified at once when asked, whatever its backoff', async () => {
    const record = await seed('https://a.example/impatient', { verifyTimeouts: 3 });
    const before = requestsFor(record).length;

    const retried = await subscriber.retryNow(record.id);
    await queue.idle();

    expect(retried?.verifyTimeouts).to.equal(4);
    expect(requestsFor(record).length - before).to.equal(1);
  });

  it('counts failures per renewal: an error at each never adds up to giving up', async () => {
    await build({ maxRetries: { hubErrors: 2 } });
    const record = await subscriber.subscribe({ topic: 'https://a.example/flaky', hub: hub.url });
    await queue.idle();
    await grant(record, 2 * DAY);

    const firstRetries: number[] = [];
    for (let renewal = 0; renewal < 4; renewal++) {
      // The lease is due: the renewal's first request meets a 503, its retry goes through.
      clock = (await store.get(record.id))!.leaseExpiresAt!.getTime() - HOUR;
      hub.answer = { status: 503, body: 'busy' };
      await subscriber.refreshSubscriptions();
      await queue.idle();
      const failed = (await store.get(record.id))!;
      expect(failed, `renewal ${renewal}`).to.include({
        subscribeStatus: 'huberror',
        hubErrors: 1,
      });
      firstRetries.push(failed.retryAt!.getTime() - clock);

      hub.answer = { status: 202 };
      clock = failed.retryAt!.getTime();
      await subscriber.retryFailed();
      await queue.idle();
      await grant(record, 2 * DAY);
    }

    const after = (await store.get(record.id))!;
    expect(after).to.include({ subscribeStatus: 'verified', hubErrors: 1, lastError: null });
    expect(hasGivenUp(after)).to.equal(false);
    // Each renewal's first retry is due at once (the next sweep sends it), not backed off.
    expect(firstRetries).to.deep.equal([0, 0, 0, 0]);
  });

  it('sends a retry queued twice once, and none once the hub has verified meanwhile', async () => {
    // A queue whose workers are all taken (a hub that hangs): the sweeps' tasks wait in it.
    const held = createMemoryQueue({ backoffMs: 5 });
    const sweeping = createSubscriber({
      baseUrl: server.origin,
      handlers: { news: () => {} },
      store,
      queue: held,
      upkeep: false,
      now: () => new Date(clock),
    });
    // Waiting for their request to be sent (its task lost, or slow to come).
    const waiting = { subscribeStatus: 'requesting' as const, retryAt: new Date(START + 60_000) };
    const twice = await seed('https://a.example/twice', waiting);
    const overtaken = await seed('https://a.example/overtaken', waiting);
    const before = hub.requests.length;

    // Both were asked at the same time, so they are due together.
    for (let sweep = 0; sweep < 2; sweep++) {
      clock = (await store.get(twice.id))!.retryAt!.getTime();
      const report = await sweeping.retryFailed();
      expect(report.queued, `sweep ${sweep}`).to.equal(2);
    }
    await grant((await store.get(overtaken.id))!, 3600);
    await sweeping.start();
    await held.idle();
    await sweeping.stop();

    // The first request of each went out when it was seeded; the sweeps add one, not two.
    expect(requestsFor(twice)).to.have.length(2);
    expect(requestsFor(overtaken)).to.have.length(1);
    expect(hub.requests).to.have.length(before + 1);
    expect((await store.get(overtaken.id))!.subscribeStatus).to.equal('verified');
  });

  it('sweeps once on start: a restarted process renews and retries what came due', async () => {
    const due = await seed('https://a.example/due', {
      subscribeStatus: 'verified',
      leaseExpiresAt: new Date(START + 60_000),
    });
    const lost = await seed('https://a.example/lost-task', {
      subscribeStatus: 'requesting',
      retryAt: new Date(START - 1000),
    });
    const before = { due: requestsFor(due).length, lost: requestsFor(lost).length };

    // The sweeps' intervals are an hour: only the sweep on start can send these now.
    await build({ upkeep: true, refreshIntervalMs: HOUR, retryIntervalMs: HOUR });
    await eventually(
      () => requestsFor(due).length > before.due && requestsFor(lost).length > before.lost,
      'the renewal and the retry',
    );

    expect(requestsFor(due)).to.have.length(before.due + 1);
    expect(requestsFor(lost)).to.have.length(before.lost + 1);
  });

  it('does not count as given up a record denied while its unsubscribe was pending', async () => {
    const record = await seed('https://a.example/denied-instead', {
      subscribeStatus: 'denied',
      unsubscribeStatus: 'verifying',
      retryAt: null,
    });

    expect(hasGivenUp(record)).to.equal(false);
    expect((await subscriber.checkHealth()).gaveUp).to.deep.equal([]);
  });

  it('caps the backoff at retryBackoffMaxMs', async () => {
    await build({ maxRetries: { hubErrors: 30 }, retryBackoffMaxMs: HOUR });
    hub.answer = { status: 500, body: 'down for maintenance' };
    const record = await subscriber.subscribe({ topic: 'https://a.example/capped', hub: hub.url });
    await queue.idle();

    let current = (await store.get(record.id))!;
    for (let attempt = 0; attempt < 8; attempt++) {
      clock = current.retryAt!.getTime();
      await subscriber.retryFailed();
      await queue.idle();
      current = (await store.get(record.id))!;
    }
    expect(current.hubErrors).to.equal(9);
    expect(current.retryAt!.getTime() - clock).to.be.at.most(HOUR);
    expect(current.retryAt!.getTime() - clock).to.be.at.least(0.8 * HOUR);
    expect(current.lastError).to.contain('down for maintenance');
  });

  it('honours a Retry-After longer than the backoff', async () => {
    hub.answer = { status: 503, body: 'busy', headers: { 'retry-after': '7200' } };
    const record = await subscriber.subscribe({ topic: 'https://a.example/busy', hub: hub.url });
    await queue.idle();

    const stored = (await store.get(record.id))!;
    expect(stored.subscribeStatus).to.equal('huberror');
    expect(stored.retryAt!.getTime() - clock).to.equal(2 * HOUR);
  });

  it('waits no longer than retryBackoffMaxMs, whatever Retry-After asks', async () => {
    const retryAfter = { 'retry-after': '99999999999999999999' };
    hub.answer = { status: 503, body: 'busy', headers: retryAfter };
    const record = await subscriber.subscribe({ topic: 'https://a.example/years', hub: hub.url });
    await queue.idle();

    const stored = (await store.get(record.id))!;
    expect(stored.subscribeStatus).to.equal('huberror');
    expect(stored.retryAt!.getTime() - clock).to.equal(DAY);
  });

  it('retries a requesting record whose job was lost, and a request never verified', async () => {
    const lost = await seed('https://a.example/lost', {
      subscribeStatus: 'requesting',
      retryAt: new Date(START + 60_000),
    });
    const unverified = await seed('https://a.example/unverified', {});
    expect(unverified.subscribeStatus).to.equal('verifying');
    const before = hub.requests.length;

    clock = START + 30_000;
    expect((await subscriber.retryFailed()).queued).to.equal(0);
    clock = START + 61_000;
    const report = await subscriber.retryFailed();
    await queue.idle();

    expect(report.queued).to.equal(2);
    expect(hub.requests.length - before).to.equal(2);
    expect((await store.get(unverified.id))!.verifyTimeouts).to.equal(1);
    expect((await store.get(lost.id))!.verifyTimeouts).to.equal(0);
  });

  it('leaves denied and verified records alone', async () => {
    const denied = await seed('https://a.example/no', {
      subscribeStatus: 'denied',
      retryAt: new Date(START),
    });
    const fine = await seed('https://a.example/yes', {
      subscribeStatus: 'verified',
      retryAt: new Date(START),
    });
    const before = hub.requests.length;

    await subscriber.retryFailed();
    await queue.idle();

    expect(hub.requests.length).to.equal(before);
    expect((await store.get(denied.id))!.retryAt).to.equal(null);
    expect((await store.get(fine.id))!.retryAt).to.equal(null);
  });

  it('retries a failed unsubscription too', async () => {
    const record = await seed('https://a.example/bye', { subscribeStatus: 'verified' });
    hub.answer = { status: 500 };
    await subscriber.unsubscribe(record.id);
    await queue.idle();
    expect((await store.get(record.id))!.unsubscribeStatus).to.equal('huberror');

    hub.answer = { status: 202 };
    await subscriber.retryFailed();
    await queue.idle();

    const last = hub.requests[hub.requests.length - 1]!.params;
    expect(last.get('hub.mode')).to.equal('unsubscribe');
    expect((await store.get(record.id))!.unsubscribeStatus).to.equal('verifying');
  });

  it('rebuilds a changed callback URL when autofix is on', async () => {
    const record = await seed('https://a.example/moved', { subscribeStatus: 'verified' });
    const old = `${server.origin}/old-path/news/${record.id}`;
    await store.transition(record.id, { set: { callbackUrl: old } });

    const changed = await subscriber.handleUrlChanges();
    await queue.idle();

    expect(changed).to.deep.equal([record.id]);
    const last = hub.requests[hub.requests.length - 1]!.params;
    expect(last.get('hub.callback')).to.equal(`${server.origin}/websub/news/${record.id}`);
    expect((await store.get(record.id))!.callbackUrl).to.equal(
      `${server.origin}/websub/news/${record.id}`,
    );
  });

  describe('a callback URL that changed after the hub verified it', () => {
    /** A verified record known to the hub by a callback on another host name of this server. */
    async function movedRecord(topic: string): Promise<{ record: Subscription; old: string }> {
      const record = await seed(topic, {
        subscribeStatus: 'verified',
        leaseExpiresAt: new Date(START + 5 * DAY),
      });
      const old = record.callbackUrl.replace('127.0.0.1', 'localhost');
      await store.transition(record.id, { set: { callbackUrl: old } });
      return { record, old };
    }

    const unsubscribeAt = (url: string, topic: string, challenge: string) => {
      const target = new URL(url);
      target.searchParams.set('hub.mode', 'unsubscribe');
      target.searchParams.set('hub.topic', topic);
      target.searchParams.set('hub.challenge', challenge);
      return fetch(target);
    };
    const modes = () =>
      hub.requests.map((request) => [
        request.params.get('hub.mode'),
        request.params.get('hub.callback'),
      ]);

    it('unsubscribes the old URL once the new one is verified, and confirms it', async () => {
      const { record, old } = await movedRecord('https://a.example/moved-host');
      const before = hub.requests.length;

      expect(await subscriber.handleUrlChanges()).to.deep.equal([record.id]);
      await queue.idle();
      const current = `${server.origin}/websub/news/${record.id}`;
      expect(await store.get(record.id)).to.include({
        callbackUrl: current,
        retiredCallbackUrl: old,
      });
      // The old URL keeps working until the new one does.
      expect(modes().slice(before)).to.deep.equal([['subscribe', current]]);
      // Nor is its end confirmed before: nobody asked for it yet.
      expect((await unsubscribeAt(old, record.topic, 'too-soon')).status).to.equal(404);

      await grant((await store.get(record.id))!, 86_400);
      // Not queue.idle(): that would also wait out the verifyWaitMs given to the hub.
      await eventually(() => modes().length === before + 2, 'the unsubscribe of the old URL');
      expect(modes().slice(before)).to.deep.equal([
        ['subscribe', current],
        ['unsubscribe', old],
      ]);
      expect(hub.requests.at(-1)!.params.get('hub.topic')).to.equal(record.topic);

      // One that plainly reached the current URL is not the old one's end.
      expect((await unsubscribeAt(current, record.topic, 'not-this')).status).to.equal(404);
      // Also when its Host ends with the root's dot.
      const target = new URL(current);
      target.search = new URLSearchParams({
        'hub.mode': 'unsubscribe',
        'hub.topic': record.topic,
        'hub.challenge': 'dotted',
      }).toString();
      const dotted = await new Promise<number>((resolve, reject) => {
        const headers = { host: `${target.hostname}.:${target.port}` };
        get(target, { headers }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        }).on('error', reject);
      });
      expect(dotted).to.equal(404);
      expect((await store.get(record.id))!.retiredCallbackUrl).to.equal(old);
      const answer = await unsubscribeAt(old, record.topic, 'bye-old');
      expect(answer.status).to.equal(200);
      expect(await answer.text()).to.equal('bye-old');
      expect(await store.get(record.id)).to.include({
        subscribeStatus: 'verified',
        unsubscribeStatus: null,
        retiredCallbackUrl: null,
      });
      // Nothing more is pending: the same verification now ends nothing.
      expect((await unsubscribeAt(current, record.topic, 'again')).status).to.equal(404);
    });

    it('forgets the old URL when the hub refuses to end it, subscription untouched', async () => {
      const { record } = await movedRecord('https://a.example/moved-refused');
      await subscriber.handleUrlChanges();
      await queue.idle();

      hub.answer = { status: 400, body: 'unknown callback' };
      await grant((await store.get(record.id))!, 86_400);
      await queue.idle();

      expect(hub.requests.at(-1)!.params.get('hub.mode')).to.equal('unsubscribe');
      const stored = (await store.get(record.id))!;
      expect(stored).to.include({
        subscribeStatus: 'verified',
        retiredCallbackUrl: null,
        hubErrors: 0,
      });
      expect(stored.lastError).to.match(/^The hub refused ending the old callback URL http/);
      expect(stored.lastError).to.contain('unknown callback');
    });

    it('asks again with the retry backoff while the hub is down, then ends it', async () => {
      await build({ retryIntervalMs: 20, verifyWaitMs: 2000 });
      const { record, old } = await movedRecord('https://a.example/moved-hub-down');
      await subscriber.handleUrlChanges();
      await queue.idle();

      hub.answer = { status: 503, body: 'busy' };
      const before = hub.requests.length;
      await grant((await store.get(record.id))!, 86_400);
      await eventually(
        () =>
          modes()
            .slice(before)
            .filter(([mode]) => mode === 'unsubscribe').length === 2,
        'two failed attempts',
      );
      hub.answer = { status: 202 };
      await eventually(
        () =>
          modes()
            .slice(before)
            .filter(([mode]) => mode === 'unsubscribe').length === 3,
        'the third attempt',
      );
      expect(modes().slice(before)).to.deep.equal([
        ['unsubscribe', old],
        ['unsubscribe', old],
        ['unsubscribe', old],
      ]);
      expect((await store.get(record.id))!.retiredCallbackUrl).to.equal(old);
      expect((await unsubscribeAt(old, record.topic, 'ended')).status).to.equal(200);
    });

    it('forgets the old URL when the hub never verifies its end within verifyWaitMs', async () => {
      await build({ verifyWaitMs: 30 });
      const { record, old } = await movedRecord('https://a.example/moved-silent');
      await subscriber.handleUrlChanges();
      await queue.idle();

      await grant((await store.get(record.id))!, 86_400);
      expect((await store.get(record.id))!.retiredCallbackUrl).to.equal(old);
      await queue.idle();

      expect(hub.requests.at(-1)!.params.get('hub.callback')).to.equal(old);
      expect((await store.get(record.id))!.retiredCallbackUrl).to.equal(null);
      expect((await unsubscribeAt(old, record.topic, 'late')).status).to.equal(404);
    });

    it('sends an unsubscribe with the callback URL the hub knows, not a rebuilt one', async () => {
      const { record, old } = await movedRecord('https://a.example/moved-leaving');

      await subscriber.unsubscribe(record.id);
      await queue.idle();

      expect(modes().at(-1)).to.deep.equal(['unsubscribe', old]);
      const answer = await unsubscribeAt(old, record.topic, 'bye');
      expect(answer.status).to.equal(200);
      expect((await store.get(record.id))!.unsubscribeStatus).to.equal('verified');
    });

    it('unsubscribes the old URL when the new one was never verified', async () => {
      const { record, old } = await movedRecord('https://a.example/moved-then-left');
      hub.answer = { status: 500, body: 'down' };
      await subscriber.handleUrlChanges();
      await queue.idle();
      expect((await store.get(record.id))!.subscribeStatus).to.equal('huberror');

      hub.answer = { status: 202 };
      await subscriber.unsubscribe(record.id);
      await queue.idle();

      expect(modes().at(-1)).to.deep.equal(['unsubscribe', old]);
      expect(await store.get(record.id)).to.include({ callbackUrl: old, retiredCallbackUrl: null });
      expect((await unsubscribeAt(old, record.topic, 'bye')).status).to.equal(200);
      expect((await store.get(record.id))!.unsubscribeStatus).to.equal('verified');
    });

    it('has nothing to end when the old URL was never verified', async () => {
      const record = await seed('https://a.example/never-verified', {});
      const old = record.callbackUrl.replace('127.0.0.1', 'localhost');
      await store.transition(record.id, { set: { callbackUrl: old } });

      await subscriber.handleUrlChanges();
      await queue.idle();
      await grant((await store.get(record.id))!, 86_400);
      await queue.idle();

      expect((await store.get(record.id))!.retiredCallbackUrl).to.equal(null);
      expect(modes().filter(([mode]) => mode === 'unsubscribe')).to.deep.equal([]);
    });
  });

  it('marks the record with a visible error when autofix is off', async () => {
    await build({ autofixCallbackUrls: false });
    const record = await seed('https://a.example/stuck', { subscribeStatus: 'verified' });
    const old = `${server.origin}/old-path/news/${record.id}`;
    await store.transition(record.id, { set: { callbackUrl: old } });
    const before = hub.requests.length;

    await subscriber.handleUrlChanges();
    await queue.idle();

    expect(hub.requests.length).to.equal(before);
    const stored = (await store.get(record.id))!;
    expect(stored.callbackUrl).to.equal(old);
    expect(stored.subscribeStatus).to.equal('connerror');
    expect(stored.lastError).to.contain('automatic fixing is off');
  });

  it('retries one record now, as the sweep would, and re-subscribes a denied one', async () => {
    const unverified = await seed('https://a.example/now', {});
    const denied = await seed('https://a.example/denied-now', {
      subscribeStatus: 'denied',
      deniedReason: 'no',
      hubErrors: 3,
    });
    const before = hub.requests.length;

    const retried = await subscriber.retryNow(unverified.id);
    await queue.idle();
    expect(retried?.verifyTimeouts).to.equal(1);
    expect(await subscriber.retryNow(denied.id)).to.equal(null);
    expect(hub.requests.length - before).to.equal(1);

    const again = await subscriber.resubscribe(denied.id);
    await queue.idle();
    expect(again.deniedReason).to.equal(null);
    expect(again.hubErrors).to.equal(0);
    expect(hub.requests.length - before).to.equal(2);
    expect((await store.get(denied.id))!.subscribeStatus).to.equal('verifying');
  });
});

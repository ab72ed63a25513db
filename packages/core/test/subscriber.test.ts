import { expect } from 'chai';

import {
  createMemoryQueue,
  createSubscriber,
  signBody,
  type MemoryQueue,
  type Notification,
  type Subscriber,
  type Subscription,
} from '../src/index.js';
import { startCallbackServer, eventually, type CallbackServer } from './helpers/callback-server.js';
import { startTestServer } from './helpers/discovery-server.js';
import { startRecordingHub, type RecordingHub } from './helpers/recording-hub.js';

const TOPIC = 'https://publisher.example.com/feed.xml';

describe("subscriber lifecycle (the original project's cases, over real sockets)", () => {
  let hub: RecordingHub;
  let server: CallbackServer;
  let queue: MemoryQueue;
  let subscriber: Subscriber;
  let received: Notification[];

  beforeEach(async () => {
    hub = await startRecordingHub();
    server = await startCallbackServer();
    queue = createMemoryQueue({ backoffMs: 10 });
    received = [];
    subscriber = createSubscriber({
      baseUrl: server.origin,
      handlers: { news: (notification) => void received.push(notification) },
      queue,
      upkeep: false,
    });
    server.attach(subscriber);
    await subscriber.start();
  });

  afterEach(async () => {
    await subscriber.stop();
    await server.close();
    await hub.close();
  });

  /** Subscribe and wait until the hub request was answered. */
  async function subscribed(
    extra: { secret?: string; leaseSeconds?: number; topic?: string; hub?: string } = {},
  ) {
    const record = await subscriber.subscribe({ topic: TOPIC, hub: hub.url, ...extra });
    await queue.idle();
    return (await subscriber.get(record.id)) as Subscription;
  }

  async function verify(record: Subscription, params: Record<string, string>) {
    const url = new URL(record.callbackUrl);
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    const response = await fetch(url);
    return { status: response.status, body: await response.text(), headers: response.headers };
  }

  it('creating a subscription sends one hub request and leaves it verifying', async () => {
    const record = await subscribed({ leaseSeconds: 3600, secret: 's3cret' });

    expect(hub.requests).to.have.length(1);
    const sent = hub.requests[0]!;
    expect(sent.contentType).to.equal('application/x-www-form-urlencoded');
    expect(sent.params.get('hub.mode')).to.equal('subscribe');
    expect(sent.params.get('hub.topic')).to.equal(TOPIC);
    expect(sent.params.get('hub.callback')).to.equal(record.callbackUrl);
    expect(sent.params.get('hub.lease_seconds')).to.equal('3600');
    expect(sent.params.get('hub.secret')).to.equal('s3cret');

    expect(record.subscribeStatus).to.equal('verifying');
    expect(record.unsubscribeStatus).to.equal(null);
    expect(record.lastSubscribeAt).to.be.instanceOf(Date);
    expect(record.callbackUrl).to.equal(`${server.origin}/websub/news/${record.id}`);
  });

  it('leaves out hub.lease_seconds and hub.secret when none is set', async () => {
    await subscribed();

    const sent = hub.requests[0]!.params;
    expect(sent.has('hub.lease_seconds')).to.equal(false);
    expect(sent.has('hub.secret')).to.equal(false);
  });

  it('a subscribe verification echoes the challenge and records the lease', async () => {
    const record = await subscribed();
    const before = Date.now();

    const answer = await verify(record, {
      'hub.mode': 'subscribe',
      'hub.topic': TOPIC,
      'hub.challenge': 'a/b+c=d',
      'hub.lease_seconds': '86400',
    });

    expect(answer.status).to.equal(200);
    expect(answer.body).to.equal('a/b+c=d');
    expect(answer.headers.get('content-type')).to.match(/^text\/plain/);
    const stored = (await subscriber.get(record.id))!;
    expect(stored.subscribeStatus).to.equal('verified');
    const expires = stored.leaseExpiresAt!.getTime();
    expect(expires).to.be.within(before + 86_400_000 - 1000, Date.now() + 86_400_000);
  });

  it('confirms the verification of a request sent again after a timeout, once', async () => {
    const record = await subscribed({ leaseSeconds: 3600 });
    // The hub is slow: the retry sweep finds no verification in time and asks again.
    await subscriber.store.transition(record.id, { set: { retryAt: new Date(Date.now() - 1) } });
    await subscriber.retryFailed();
    await queue.idle();
    expect(hub.requests.map((request) => request.params.get('hub.mode'))).to.deep.equal([
      'subscribe',
      'subscribe',
    ]);
    const ask = (challenge: string, lease: string) =>
      verify(record, {
        'hub.mode': 'subscribe',
        'hub.topic': TOPIC,
        'hub.challenge': challenge,
        'hub.lease_seconds': lease,
      });

    // The hub verifies both requests, late: both are ours, so both are confirmed. The second
    // never pushes the lease end later (a replayed one could push it past the hub's lease).
    expect(await ask('first', '3600')).to.include({ status: 200, body: 'first' });
    const firstEnd = (await subscriber.get(record.id))!.leaseExpiresAt;
    expect(await ask('second', '7200')).to.include({ status: 200, body: 'second' });
    const stored = (await subscriber.get(record.id))!;
    expect(stored).to.include({ subscribeStatus: 'verified', verifyTimeouts: 0 });
    expect(stored.leaseExpiresAt).to.deep.equal(firstEnd);

    // A third has no request of ours to answer: refused, the lease unchanged.
    expect((await ask('third', '60')).status).to.equal(404);
    expect((await subscriber.get(record.id))!.leaseExpiresAt).to.deep.equal(stored.leaseExpiresAt);
  });

  for (const [name, params, reason] of [
    ['without a challenge', { 'hub.lease_seconds': '3600' }, 'Missing hub.challenge'],
    ['without a lease', { 'hub.challenge': 'abc' }, 'Missing hub.lease_seconds'],
    [
      'with a non-numeric lease',
      { 'hub.challenge': 'abc', 'hub.lease_seconds': 'soon' },
      'Invalid',
    ],
  ] as const) {
    it(`a verification ${name} is refused and counted as a verify error`, async () => {
      const record = await subscribed();

      const answer = await verify(record, {
        'hub.mode': 'subscribe',
        'hub.topic': TOPIC,
        ...params,
      });

      expect(answer.status).to.equal(400);
      expect(answer.body).to.contain(reason);
      const stored = (await subscriber.get(record.id))!;
      expect(stored.verifyErrors).to.equal(1);
      expect(stored.subscribeStatus).to.equal('verifyerror');
      expect(stored.lastError).to.contain(reason);
    });
  }

  it('refuses a verification for another topic with 404 and changes nothing', async () => {
    const record = await subscribed();

    const answer = await verify(record, {
      'hub.mode': 'subscribe',
      'hub.topic': `${TOPIC}?other`,
      'hub.challenge': 'abc',
      'hub.lease_seconds': '60',
    });

    expect(answer.status).to.equal(404);
    expect(await subscriber.get(record.id)).to.deep.equal(record);
  });

  it('refuses an unsubscribe verification nobody asked for', async () => {
    const record = await subscribed();

    const answer = await verify(record, {
      'hub.mode': 'unsubscribe',
      'hub.topic': TOPIC,
      'hub.challenge': 'abc',
    });

    expect(answer.status).to.equal(404);
    expect((await subscriber.get(record.id))!.unsubscribeStatus).to.equal(null);
  });

  it('answers content 410 once unsubscribing, before the hub has verified it', async () => {
    const record = await subscribed();
    await verify(record, {
      'hub.mode': 'subscribe',
      'hub.topic': TOPIC,
      'hub.challenge': 'c',
      'hub.lease_seconds': '3600',
    });
    await subscriber.unsubscribe(record.id);
    await queue.idle();
    expect((await subscriber.get(record.id))!.unsubscribeStatus).to.equal('verifying');

    const answer = await fetch(record.callbackUrl, { method: 'POST', body: 'late' });
    await queue.idle();

    expect(answer.status).to.equal(410);
    expect(received).to.deep.equal([]);
  });

  it('unsubscribing sends one request with the stored callback URL', async () => {
    const record = await subscribed();

    await subscriber.unsubscribe(record.id);
    await queue.idle();

    expect(hub.requests).to.have.length(2);
    const sent = hub.requests[1]!.params;
    expect(sent.get('hub.mode')).to.equal('unsubscribe');
    expect(sent.get('hub.topic')).to.equal(TOPIC);
    expect(sent.get('hub.callback')).to.equal(record.callbackUrl);
    expect((await subscriber.get(record.id))!.unsubscribeStatus).to.equal('verifying');
  });

  it('an unsubscribe verification echoes the challenge, then content gets 410', async () => {
    const record = await subscribed();
    await subscriber.unsubscribe(record.id);
    await queue.idle();

    const answer = await verify(record, {
      'hub.mode': 'unsubscribe',
      'hub.topic': TOPIC,
      'hub.challenge': 'bye-123',
    });

    expect(answer.status).to.equal(200);
    expect(answer.body).to.equal('bye-123');
    expect((await subscriber.get(record.id))!.unsubscribeStatus).to.equal('verified');
    const late = await fetch(record.callbackUrl, { method: 'POST', body: 'late' });
    expect(late.status).to.equal(410);
  });

  it('a delivery calls the handler once with the body', async () => {
    const record = await subscribed();
    const body = '<feed xmlns="http://www.w3.org/2005/Atom"><title>é</title></feed>';

    const response = await fetch(record.callbackUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/atom+xml; charset=utf-8' },
      body,
    });
    await queue.idle();

    expect(response.status).to.equal(202);
    expect(received).to.have.length(1);
    const notification = received[0]!;
    expect(notification.body.toString('utf8')).to.equal(body);
    expect(notification.contentType).to.equal('application/atom+xml; charset=utf-8');
    expect(notification.topic).to.equal(TOPIC);
    expect(notification.subscription.id).to.equal(record.id);
    expect((await subscriber.get(record.id))!.lastDeliveryAt).to.be.instanceOf(Date);
  });

  it('checks the signature when the subscription has a secret', async () => {
    const record = await subscribed({ secret: 'topsecret' });
    const body = Buffer.from('{"items":[]}');
    const post = (headers: Record<string, string>) =>
      fetch(record.callbackUrl, { method: 'POST', headers, body });

    const missing = await post({});
    const wrong = await post({ 'x-hub-signature': signBody(body, 'not-the-secret', 'sha256') });
    await queue.idle();
    expect(missing.status).to.equal(403);
    expect(wrong.status).to.be.within(200, 299);
    expect(received).to.have.length(0);

    const right = await post({ 'x-hub-signature': signBody(body, 'topsecret', 'sha512') });
    await queue.idle();
    expect(right.status).to.equal(202);
    expect(received).to.have.length(1);
    expect(received[0]!.body.equals(body)).to.equal(true);
  });

  describe('a subscription asked for again with another secret', () => {
    const body = Buffer.from('<feed xmlns="http://www.w3.org/2005/Atom"/>');
    const post = (record: Subscription, headers: Record<string, string>) =>
      fetch(record.callbackUrl, { method: 'POST', headers, body });
    const subscribeVerification = (challenge: string) => ({
      'hub.mode': 'subscribe',
      'hub.topic': TOPIC,
      'hub.challenge': challenge,
      'hub.lease_seconds': '3600',
    });

    it('takes the old secret until content comes signed with the new one', async () => {
      const first = await subscribed({ secret: 'old-secret' });
      expect((await verify(first, subscribeVerification('one'))).status).to.equal(200);

      const again = await subscribed({ secret: 'new-secret' });
      expect(again.id).to.equal(first.id);
      expect(again.secret).to.equal('new-secret');
      expect(again.previousSecret).to.equal('old-secret');
      expect(hub.requests.at(-1)!.params.get('hub.secret')).to.equal('new-secret');

      // The hub has not verified the new request yet: it still signs with the old secret.
      const old = await post(again, { 'x-hub-signature': signBody(body, 'old-secret') });
      const other = await post(again, { 'x-hub-signature': signBody(body, 'other') });
      await queue.idle();
      expect([old.status, other.status]).to.deep.equal([202, 202]);
      expect(received).to.have.length(1);

      // A verification does not say which request it confirms: the old secret still holds.
      expect((await verify(again, subscribeVerification('two'))).status).to.equal(200);
      const stillOld = await post(again, { 'x-hub-signature': signBody(body, 'old-secret') });
      await queue.idle();
      expect(stillOld.status).to.equal(202);
      expect(received).to.have.length(2);

      const fresh = await post(again, { 'x-hub-signature': signBody(body, 'new-secret') });
      await queue.idle();
      expect(fresh.status).to.equal(202);
      expect(received).to.have.length(3);
      expect((await subscriber.get(first.id))!.previousSecret).to.equal(null);
      const stale = await post(again, { 'x-hub-signature': signBody(body, 'old-secret') });
      await queue.idle();
      expect(stale.status).to.equal(202);
      expect(received).to.have.length(3);
    });

    it('takes unsigned content until some comes signed with a first secret', async () => {
      const first = await subscribed();
      expect((await verify(first, subscribeVerification('one'))).status).to.equal(200);

      const again = await subscribed({ secret: 'new-secret' });
      expect(again.previousSecret).to.equal('');
      const unsigned = await post(again, {});
      const wrong = await post(again, { 'x-hub-signature': signBody(body, 'other') });
      await queue.idle();
      expect([unsigned.status, wrong.status]).to.deep.equal([202, 202]);
      expect(received).to.have.length(1);

      const signed = await post(again, { 'x-hub-signature': signBody(body, 'new-secret') });
      expect(signed.status).to.equal(202);
      expect((await post(again, {})).status).to.equal(403);
    });

    it('takes the secret of a request still in flight when another replaces it', async () => {
      // The hub verifies the first request after the second went out, and the second one not.
      await subscribed({ secret: 'first' });
      const changed = await subscribed({ secret: 'second' });
      expect(changed.previousSecret).to.equal('first');
      expect((await verify(changed, subscribeVerification('one'))).status).to.equal(200);
      expect((await verify(changed, subscribeVerification('two'))).status).to.equal(404);

      const first = await post(changed, { 'x-hub-signature': signBody(body, 'first') });
      await queue.idle();
      expect(first.status).to.equal(202);
      expect(received).to.have.length(1);
    });

    it('keeps nothing when the hub refused or never got the old secret', async () => {
      hub.answer = { status: 400, body: 'no' };
      expect((await subscribed()).subscribeStatus).to.equal('huberror');
      hub.answer = { status: 202 };
      const secured = await subscribed({ secret: 'first-secret' });
      expect(secured.previousSecret).to.equal(null);
      // Unsigned content is refused at once: the hub never had the subscription without one.
      expect((await post(secured, {})).status).to.equal(403);

      await hub.close();
      const unreachable = await subscribed({ secret: 'second-secret' });
      expect(unreachable.subscribeStatus).to.equal('connerror');
      hub = await startRecordingHub();
      // The first secret's request was accepted, so the hub may still verify and sign with it.
      expect(unreachable.previousSecret).to.equal('first-secret');
    });

    it('keeps nothing when the secret is unchanged or removed', async () => {
      const record = await subscribed({ secret: 'same' });
      expect((await verify(record, subscribeVerification('one'))).status).to.equal(200);

      expect((await subscribed({ secret: 'same' })).previousSecret).to.equal(null);
      expect((await subscribed()).previousSecret).to.equal(null);
    });

    it('keeps the verified secret through two changes, not on a way back', async () => {
      const first = await subscribed({ secret: 'verified' });
      expect((await verify(first, subscribeVerification('one'))).status).to.equal(200);

      expect((await subscribed({ secret: 'second' })).previousSecret).to.equal('verified');
      expect((await subscribed({ secret: 'third' })).previousSecret).to.equal('verified');
      expect((await subscribed({ secret: 'verified' })).previousSecret).to.equal(null);
    });
  });

  it('answers 404 for an unknown callback and 405 for other methods', async () => {
    const record = await subscribed();
    const unknown = record.callbackUrl.replace(record.id, '00000000-0000-4000-8000-000000000000');

    expect((await fetch(unknown, { method: 'POST', body: 'x' })).status).to.equal(404);
    expect((await fetch(record.callbackUrl, { method: 'PUT', body: 'x' })).status).to.equal(405);
  });

  it("records the hub's reason on a 4xx and a connection error when the hub is down", async () => {
    hub.answer = { status: 400, body: 'hub.topic not allowed' };
    const refused = await subscribed();
    expect(refused.subscribeStatus).to.equal('huberror');
    expect(refused.hubErrors).to.equal(1);
    expect(refused.lastError).to.contain('hub.topic not allowed');

    await hub.close();
    const unreachable = await subscriber.subscribe({ topic: `${TOPIC}#2`, hub: hub.url });
    await queue.idle();
    const stored = (await subscriber.get(unreachable.id))!;
    expect(stored.subscribeStatus).to.equal('connerror');
    expect(stored.connectionErrors).to.equal(1);
    hub = await startRecordingHub();
  });

  it('a denial is recorded with its reason and answered 200', async () => {
    const record = await subscribed();

    const answer = await verify(record, {
      'hub.mode': 'denied',
      'hub.topic': TOPIC,
      'hub.reason': 'not allowed here',
    });

    expect(answer.status).to.equal(200);
    const stored = (await subscriber.get(record.id))!;
    expect(stored.subscribeStatus).to.equal('denied');
    expect(stored.deniedReason).to.equal('not allowed here');
  });

  it('refuses a secret of 200 bytes or more before any request', async () => {
    let error: unknown;
    try {
      await subscriber.subscribe({ topic: TOPIC, hub: hub.url, secret: 'x'.repeat(200) });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.have.property('code', 'invalid_input');
    expect(hub.requests).to.have.length(0);
  });

  it('refuses intervals and timeouts a timer cannot keep (over 2^31 - 1 ms, 0, NaN)', () => {
    const handlers = { news: () => undefined };
    for (const option of ['refreshIntervalMs', 'retryIntervalMs', 'hubTimeoutMs', 'lockTtlMs']) {
      for (const value of [30 * 86_400_000, 0, Number.NaN]) {
        expect(() => createSubscriber({ baseUrl: server.origin, handlers, [option]: value }))
          .to.throw(`${option} must be from 1 to 2147483647 ms`)
          .with.property('code', 'invalid_input');
      }
    }
  });

  it('logs a static declaration it cannot discover as a warning, no stack', async () => {
    const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
    const record = (level: string) => (fields: Record<string, unknown>, message: string) =>
      void lines.push({ level, fields, message });
    const logged = createSubscriber({
      baseUrl: server.origin,
      handlers: { news: () => undefined },
      upkeep: false,
      logger: {
        debug: record('debug'),
        info: record('info'),
        warn: record('warn'),
        error: record('error'),
      },
    });
    const topic = `${hub.url}nothing-here`;
    hub.answer = { status: 404, body: 'not found' };

    const report = await logged.applyStaticSubscriptions([{ topic }]);

    expect(report.failed).to.have.length(1);
    const failures = lines.filter((line) => line.message === 'Static subscription failed');
    expect(failures).to.have.length(1);
    expect(failures[0]).to.deep.include({ level: 'warn' });
    expect(failures[0]!.fields).to.deep.equal({
      topic,
      code: 'bad_status',
      error: report.failed[0]!.error,
    });
  });

  it('refuses a renewal window, backoff cap or dedupe window that would break dates', () => {
    const handlers = { news: () => undefined };
    for (const option of ['renewBeforeMs', 'retryBackoffMaxMs', 'dedupeWindowMs']) {
      for (const value of [1e300, -1, Number.POSITIVE_INFINITY]) {
        expect(() => createSubscriber({ baseUrl: server.origin, handlers, [option]: value }))
          .to.throw(`${option} must be from 0 to 315360000000 ms`)
          .with.property('code', 'invalid_input');
      }
    }
    const timeout = { baseUrl: server.origin, handlers, http: { timeoutMs: 1e10 } };
    expect(() => createSubscriber(timeout)).to.throw('http.timeoutMs must be from 1 to');
  });

  it('matches a static declaration with spaces around its URLs to its denied record', async () => {
    const first = await subscriber.applyStaticSubscriptions([{ topic: TOPIC, hub: hub.url }]);
    await queue.idle();
    const [id] = first.created;
    const record = (await subscriber.get(id!))!;
    expect((await verify(record, { 'hub.mode': 'denied', 'hub.topic': TOPIC })).status).to.equal(
      200,
    );

    const again = await subscriber.applyStaticSubscriptions([
      { topic: ` ${TOPIC} `, hub: `\t${hub.url} ` },
    ]);

    expect(again.skipped).to.deep.equal([{ id, reason: 'denied' }]);
    expect(again.resubscribed).to.deep.equal([]);
    expect((await subscriber.get(id!))!.subscribeStatus).to.equal('denied');
  });

  it('ends static orphans by their state: deleted, unsubscribed, or left to finish', async () => {
    const topics = ['lapsed', 'held', 'ending', 'refused'].map((name) => `${TOPIC}?${name}`);
    const first = await subscriber.applyStaticSubscriptions(
      topics.map((topic) => ({ topic, hub: hub.url })),
    );
    await queue.idle();
    const [lapsed, held, ending, refused] = first.created as [string, string, string, string];
    const lease = (ms: number) => ({
      subscribeStatus: 'verified' as const,
      leaseExpiresAt: new Date(Date.now() + ms),
    });
    await subscriber.store.transition(lapsed, { set: lease(-1000) });
    await subscriber.store.transition(held, { set: lease(3_600_000) });
    await subscriber.store.transition(ending, {
      set: { ...lease(3_600_000), unsubscribeStatus: 'verifying' },
    });
    await subscriber.store.transition(refused, {
      set: { ...lease(3_600_000), unsubscribeStatus: 'huberror' },
    });
    hub.requests.length = 0;

    const report = await subscriber.applyStaticSubscriptions([], { purgeOrphans: true });
    await queue.idle();

    expect(report.purged).to.deep.equal([lapsed]);
    expect(report.unsubscribing).to.have.members([held, ending, refused]);
    expect(await subscriber.get(lapsed)).to.equal(null);
    const asked = hub.requests.map((request) => request.params.get('hub.callback'));
    const callbackOf = async (id: string) => (await subscriber.get(id))!.callbackUrl;
    expect(asked).to.have.members([await callbackOf(held), await callbackOf(refused)]);
    const modes = hub.requests.map((request) => request.params.get('hub.mode'));
    expect(modes).to.deep.equal(['unsubscribe', 'unsubscribe']);
  });

  it('refuses numeric options that are not whole numbers in range, naming them', () => {
    const base = { baseUrl: server.origin, handlers: { news: () => undefined } };
    const long = `${hub.url}?${'t'.repeat(600)}`;
    for (const [options, message] of [
      [{ maxLeaseSeconds: Number.NaN }, 'maxLeaseSeconds must be a whole number from 1 to'],
      [{ assumedLeaseSeconds: -1 }, 'assumedLeaseSeconds must be a whole number from 1 to'],
      [{ leaseSeconds: 1.5 }, 'leaseSeconds must be a whole number from 1 to 2147483647'],
      [{ sweepConcurrency: Number.NaN }, 'sweepConcurrency must be a whole number from 1 to'],
      [{ sweepPageSize: 0 }, 'sweepPageSize must be a whole number from 1 to 10000'],
      [{ deliveryAttempts: 0.5 }, 'deliveryAttempts must be a whole number from 1 to 1000'],
      [{ deliveryBackoffMs: 1e300 }, 'deliveryBackoffMs must be from 0 to 315360000000 ms'],
      [{ maxRetries: { hubErrors: -1 } }, 'maxRetries.hubErrors must be a whole number from 0'],
      [{ maxBodyBytes: 0 }, 'maxBodyBytes must be a whole number from 1 to'],
      [{ http: { maxRedirects: Number.NaN } }, 'http.maxRedirects must be a whole number from 0'],
      [{ http: { maxResponseBytes: -1 } }, 'http.maxResponseBytes must be a whole number from 1'],
      [{ defaultHub: long }, 'defaultHub is 6'],
      [{ handlers: { ['h'.repeat(101)]: () => undefined } }, 'and at most 100 characters'],
    ] as const) {
      expect(() => createSubscriber({ ...base, ...options }), message)
        .to.throw(message)
        .with.property('code', 'invalid_input');
    }
  });

  it('refuses a base URL with a query, callback paths a hub cannot send back, shared paths', () => {
    const base = { baseUrl: server.origin, handlers: { news: () => undefined } };
    for (const [options, message] of [
      [{ baseUrl: `${server.origin}/app?tenant=1` }, 'baseUrl must have no query or fragment'],
      [{ baseUrl: `${server.origin}/app#top` }, 'baseUrl must have no query or fragment'],
      [{ callbackPath: '/hooks?x' }, 'callbackPath must be a URL path'],
      [{ callbackPath: '/a/../b' }, 'callbackPath must be a URL path'],
      [{ callbackPath: '/a/%2E%2e/b' }, 'callbackPath must be a URL path'],
      [{ callbackPath: './hooks' }, 'callbackPath must be a URL path'],
      [{ handlers: { news: { handle: () => {}, path: '/a b' } } }, 'handler news must be a URL'],
      [{ handlers: { news: { handle: () => {}, path: '/x#y' } } }, 'handler news must be a URL'],
      [{ handlers: { news: { handle: () => {}, path: '/caf\u00e9' } } }, 'must be a URL path'],
      [
        {
          handlers: {
            a: { handle: () => {}, path: '/hooks/' },
            b: { handle: () => {}, path: 'hooks' },
          },
        },
        'Handlers a and b have the same callback path /hooks',
      ],
    ] as const) {
      expect(() => createSubscriber({ ...base, ...options }), message)
        .to.throw(message)
        .with.property('code', 'invalid_input');
    }
  });

  it('routes each callback to its handler when one path ends another, or is the root', async () => {
    await subscriber.stop();
    const got: string[] = [];
    const handle = (name: string) => () => void got.push(name);
    subscriber = createSubscriber({
      baseUrl: server.origin,
      handlers: {
        v1: { handle: handle('v1'), path: '/hooks' },
        v2: { handle: handle('v2'), path: '/v2/hooks' },
        root: { handle: handle('root'), path: '/' },
      },
      queue,
      upkeep: false,
    });
    server.attach(subscriber);
    await subscriber.start();

    for (const handler of ['v2', 'root', 'v1']) {
      const record = await subscriber.subscribe({ topic: TOPIC, hub: hub.url, handler });
      await queue.idle();
      const answer = await verify(record, {
        'hub.mode': 'subscribe',
        'hub.topic': TOPIC,
        'hub.challenge': `for ${handler}`,
        'hub.lease_seconds': '3600',
      });
      expect(answer, handler).to.deep.include({ status: 200, body: `for ${handler}` });
      const delivered = await fetch(record.callbackUrl, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'hello',
      });
      expect(delivered.status, handler).to.equal(202);
    }
    await queue.idle();

    const paths: Record<string, string> = { v1: '/hooks', v2: '/v2/hooks', root: '' };
    const { items } = await subscriber.list();
    expect(items).to.have.length(3);
    for (const record of items) {
      expect(record.callbackUrl).to.equal(`${server.origin}${paths[record.handler]}/${record.id}`);
    }
    expect(got).to.deep.equal(['v2', 'root', 'v1']);
  });

  it('stores the topic and hub without the whitespace around them', async () => {
    const record = await subscribed({ topic: `  ${TOPIC}\t`, hub: ` ${hub.url} ` });

    expect(record).to.include({ topic: TOPIC, hub: hub.url });
    expect(hub.requests[0]!.params.get('hub.topic')).to.equal(TOPIC);
  });

  it('refuses a topic or hub too long for the store to index, before any request', async () => {
    const long = (length: number) => `${TOPIC}?${'q'.repeat(length - TOPIC.length - 1)}`;
    await subscriber.subscribe({ topic: long(2048), hub: hub.url });

    for (const input of [
      { topic: long(2049), hub: hub.url },
      { topic: TOPIC, hub: `${hub.url}?${'t'.repeat(600)}` },
    ]) {
      const error = await subscriber.subscribe(input).catch((caught: unknown) => caught);
      expect(error).to.have.property('code', 'invalid_input');
      expect((error as Error).message).to.match(/ bytes long; the longest (topic|hub) URL kept /);
    }
    await queue.idle();
    expect(hub.requests.map((request) => request.params.get('hub.topic'))).to.deep.equal([
      long(2048),
    ]);
  });

  it('refuses a discovered rel=self URL too long to store, naming where it came from', async () => {
    const self = `${TOPIC}?${'s'.repeat(2100)}`;
    const publisher = await startTestServer((_request, response) => {
      response.setHeader('link', [`<${hub.url}>; rel="hub"`, `<${self}>; rel="self"`]);
      response.end('<html></html>');
    });
    try {
      const error = await subscriber
        .subscribe({ topic: `${publisher.origin}/page` })
        .catch((caught: unknown) => caught);
      expect(error).to.have.property('code', 'invalid_input');
      expect((error as Error).message).to.match(/^The topic's rel="self" URL https:\/\/publisher/);
      expect(hub.requests).to.have.length(0);
    } finally {
      await publisher.close();
    }
  });

  it('keeps the record pending before the request goes out (hub verifies in POST)', async () => {
    let seen: Subscription | null = null;
    subscriber.on('request:sent', ({ subscription }) => void (seen = subscription));

    const record = await subscribed();

    expect(seen).to.not.equal(null);
    expect(seen!.id).to.equal(record.id);
    expect(seen!.subscribeStatus).to.equal('requesting');
    await eventually(() => hub.requests.length === 1, 'one hub request');
  });
});

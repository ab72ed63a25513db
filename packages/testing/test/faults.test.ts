import { once } from 'node:events';

import { expect } from 'chai';

import { startTestHub, TestHubError, type Denial, type TestHub } from '../src/index.js';
import { startTestSubscriber, type TestSubscriber } from './helpers/subscriber.js';

describe('test hub: fault injection, denial and hand-made requests', () => {
  let hub: TestHub;
  let subscriber: TestSubscriber;
  let topic: string;

  beforeEach(async () => {
    hub = await startTestHub({ verification: 'sync' });
    subscriber = await startTestSubscriber();
    topic = hub.serveFeed('/feed');
  });

  afterEach(async () => {
    await hub.close();
    await subscriber.close();
  });

  describe('failNext', () => {
    it('answers the next n requests with status, body and Retry-After, then recovers', async () => {
      hub.failNext(2, { status: 503, body: 'busy, come back later', retryAfter: 7 });
      const callback = subscriber.callback('/retry');

      const first = await subscriber.subscribe(hub.url, { topic, callback });
      const second = await subscriber.subscribe(hub.url, { topic, callback });
      const third = await subscriber.subscribe(hub.url, { topic, callback });

      for (const failed of [first, second]) {
        expect(failed.status).to.equal(503);
        expect(failed.body).to.equal('busy, come back later');
        expect(failed.headers.get('retry-after')).to.equal('7');
      }
      expect(third.status).to.equal(202);
      expect(hub.requests.map((request) => request.status)).to.deep.equal([503, 503, 202]);
      // A failed request reaches no verification.
      expect(subscriber.gets).to.have.length(1);
    });

    it('defaults to 503 with its reason phrase', async () => {
      hub.failNext(1, {});

      const answer = await subscriber.subscribe(hub.url, {
        topic,
        callback: subscriber.callback('/x'),
      });

      expect(answer.status).to.equal(503);
      expect(answer.body).to.equal('Service Unavailable');
      expect(answer.headers.has('retry-after')).to.equal(false);
    });

    it("'drop' closes the connection without an answer", async () => {
      hub.failNext(1, 'drop');
      const callback = subscriber.callback('/drop');

      let failure: unknown;
      try {
        await subscriber.subscribe(hub.url, { topic, callback });
      } catch (error) {
        failure = error;
      }

      expect(failure).to.be.instanceOf(TypeError);
      expect(hub.requests[0]).to.include({ mode: 'subscribe', callback, status: null });
      expect(subscriber.gets).to.have.length(0);
      expect((await subscriber.subscribe(hub.url, { topic, callback })).status).to.equal(202);
    });

    it('refuses a count that is not a whole number', () => {
      expect(() => hub.failNext(-1, 'drop')).to.throw(TestHubError, /whole number/);
    });
  });

  describe('denial', () => {
    it('deny sends hub.mode=denied with topic and reason, and stops distribution', async () => {
      const callback = subscriber.callback('/denied');
      await subscriber.subscribe(hub.url, { topic, callback });
      const announced = once(hub, 'denied') as Promise<[Denial]>;

      const denial = await hub.deny(topic, callback, 'not welcome');

      expect(denial).to.deep.include({ topic, callback, reason: 'not welcome', status: 200 });
      expect((await announced)[0]).to.equal(denial);
      const query = subscriber.gets.at(-1)!.query;
      expect(query.get('hub.mode')).to.equal('denied');
      expect(query.get('hub.topic')).to.equal(topic);
      expect(query.get('hub.reason')).to.equal('not welcome');
      expect(query.has('hub.challenge')).to.equal(false);
      expect(hub.subscriptions()[0]!.state).to.equal('denied');
      expect(await hub.publish(topic, { body: 'x' })).to.deep.equal([]);
    });

    it('deny leaves out hub.reason when none is given', async () => {
      const callback = subscriber.callback('/denied-quietly');

      await hub.deny(topic, callback);

      expect(subscriber.gets[0]!.query.has('hub.reason')).to.equal(false);
    });

    it('denyNext accepts the next subscribe and denies it instead of verifying', async () => {
      hub.denyNext(1, 'full');
      const callback = subscriber.callback('/refused');
      const announced = once(hub, 'denied');

      const answer = await subscriber.subscribe(hub.url, { topic, callback });
      await announced;

      expect(answer.status).to.equal(202);
      expect(hub.verifications).to.have.length(0);
      expect(subscriber.gets.map((get) => get.query.get('hub.mode'))).to.deep.equal(['denied']);
      expect(subscriber.gets[0]!.query.get('hub.reason')).to.equal('full');
      expect(hub.subscriptions()[0]!.state).to.equal('denied');
    });

    it('deny rejects with request_failed when the callback cannot be reached', async () => {
      const unreachable = subscriber.callback('/gone');
      await subscriber.close();

      try {
        await hub.deny(topic, unreachable);
        expect.fail('deny should have rejected');
      } catch (error) {
        expect(error).to.be.instanceOf(TestHubError).with.property('code', 'request_failed');
      }
      subscriber = await startTestSubscriber();
    });
  });

  describe('verify by hand', () => {
    it('sends exactly the given parameters and changes nothing in the hub', async () => {
      const callback = subscriber.callback('/hand?keep=1');
      await subscriber.subscribe(hub.url, { topic, callback });

      // websub.rocks 205: a verification for a topic the subscriber did not ask for.
      const answer = await hub.verify(callback, {
        'hub.mode': 'subscribe',
        'hub.topic': 'http://127.0.0.1:9/not-asked',
        'hub.challenge': 'a/b+c=',
        'hub.lease_seconds': '0',
      });

      expect(answer.status).to.equal(404);
      expect(subscriber.gets.at(-1)!.rawUrl).to.equal(
        '/hand?keep=1&hub.mode=subscribe&hub.topic=http%3A%2F%2F127.0.0.1%3A9%2Fnot-asked' +
          '&hub.challenge=a%2Fb%2Bc%3D&hub.lease_seconds=0',
      );
      expect(hub.verifications).to.have.length(1);
      expect(hub.subscriptions()[0]!.state).to.equal('active');
    });

    it('returns the callback answer when it confirms', async () => {
      const callback = subscriber.callback('/hand2');
      await subscriber.subscribe(hub.url, { topic, callback });

      const answer = await hub.verify(callback, {
        'hub.mode': 'subscribe',
        'hub.topic': topic,
        'hub.challenge': 'echo me',
      });

      expect(answer).to.deep.include({ status: 200, body: 'echo me' });
      expect(answer.headers['content-type']).to.equal('text/plain');
    });
  });

  describe('waitFor', () => {
    it('resolves once the predicate holds', async () => {
      let ready = false;
      setTimeout(() => {
        ready = true;
      }, 30);

      await hub.waitFor(() => ready, 1000);

      expect(ready).to.equal(true);
    });

    it('rejects with a timeout error that shows the predicate', async () => {
      const started = Date.now();

      try {
        await hub.waitFor(() => hub.subscriptions().length === 42, 100);
        expect.fail('waitFor should have rejected');
      } catch (error) {
        expect(error).to.be.instanceOf(TestHubError).with.property('code', 'timeout');
        expect((error as Error).message)
          .to.match(/within 100 ms/)
          .and.to.include('42');
      }
      expect(Date.now() - started).to.be.within(90, 1000);
    });
  });

  describe('close', () => {
    it('aborts a delivery in flight and stops listening', async () => {
      const callback = subscriber.callback('/slow');
      await subscriber.subscribe(hub.url, { topic, callback });
      subscriber.stall = true;
      const origin = hub.origin;

      const publishing = hub.publish(topic, { body: 'never answered' });
      await hub.waitFor(() => subscriber.deliveries.length === 1);
      const started = Date.now();
      await hub.close();

      const [result] = await publishing;
      expect(Date.now() - started).to.be.below(1000);
      expect(result!.status).to.equal(null);
      expect(result!.error).to.match(/abort/i);

      let refused: unknown;
      try {
        await fetch(`${origin}/feed`);
      } catch (error) {
        refused = error;
      }
      expect(refused).to.be.instanceOf(TypeError);
      try {
        await hub.publish(topic, { body: 'x' });
        expect.fail('publish should have rejected');
      } catch (error) {
        expect(error).to.have.property('code', 'closed');
      }
    });
  });

  it('reset forgets subscriptions, logs, routes and pending failures', async () => {
    await subscriber.subscribe(hub.url, { topic, callback: subscriber.callback('/r') });
    hub.failNext(1, { status: 500 });

    hub.reset();

    expect(hub.subscriptions()).to.deep.equal([]);
    expect(hub.requests).to.have.length(0);
    expect(hub.verifications).to.have.length(0);
    expect((await fetch(topic)).status).to.equal(404);
    const answer = await subscriber.subscribe(hub.url, {
      topic,
      callback: subscriber.callback('/r'),
    });
    expect(answer.status).to.equal(202);
  });
});

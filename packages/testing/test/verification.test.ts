import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'chai';

import {
  startTestHub,
  type TestHub,
  type TestHubOptions,
  type Verification,
} from '../src/index.js';
import { startTestSubscriber, type TestSubscriber } from './helpers/subscriber.js';

describe('test hub: subscription requests and verification of intent', () => {
  let hub: TestHub;
  let subscriber: TestSubscriber;

  async function start(options: TestHubOptions = {}): Promise<void> {
    hub = await startTestHub(options);
  }

  beforeEach(async () => {
    subscriber = await startTestSubscriber();
  });

  afterEach(async () => {
    await hub?.close();
    await subscriber.close();
  });

  describe('async verification', () => {
    it('answers 202, then verifies with mode, topic, lease and an encoded challenge', async () => {
      await start();
      const topic = hub.serveFeed('/feed');
      const callback = subscriber.callback('/cb/1');
      const verified = once(hub, 'verified') as Promise<[Verification]>;

      const answer = await subscriber.subscribe(hub.url, { topic, callback, leaseSeconds: 3600 });
      expect(answer.status).to.equal(202);

      const [verification] = await verified;
      const [received] = subscriber.gets;
      expect(received!.query.get('hub.mode')).to.equal('subscribe');
      expect(received!.query.get('hub.topic')).to.equal(topic);
      expect(received!.query.get('hub.lease_seconds')).to.equal('3600');
      expect(received!.query.get('hub.challenge')).to.equal(verification.challenge);

      // The challenge always carries the characters that break naive query handling.
      expect(verification.challenge).to.match(/\//).and.to.match(/\+/).and.to.match(/=$/);
      expect(received!.rawUrl).to.include('%2F').and.to.include('%2B').and.to.include('%3D');
      expect(received!.rawUrl).not.to.match(/hub\.challenge=[^&]*[/+]/);

      const [subscription] = hub.subscriptions();
      expect(subscription).to.include({ topic, callback, state: 'active', leaseSeconds: 3600 });
      expect(subscription!.secret).to.equal(undefined);
      expect(subscription!.expiresAt!.getTime() - subscription!.verifiedAt!.getTime()).to.equal(
        3600 * 1000,
      );
      expect(hub.requests).to.have.length(1);
      expect(hub.requests[0]).to.include({ mode: 'subscribe', topic, callback, status: 202 });
      expect(hub.requests[0]!.leaseSeconds).to.equal(3600);
    });

    it("keeps the callback's own query string byte for byte, before the hub's", async () => {
      await start();
      const topic = hub.serveFeed('/feed');
      const callback = subscriber.callback('/cb/2?id=a%2Fb%20c&flag');

      await subscriber.subscribe(hub.url, { topic, callback });
      await hub.waitFor(() => subscriber.gets.length === 1);

      expect(subscriber.gets[0]!.rawUrl).to.match(
        /^\/cb\/2\?id=a%2Fb%20c&flag&hub\.mode=subscribe&/,
      );
      expect(subscriber.gets[0]!.query.get('id')).to.equal('a/b c');
    });

    it('refuses a subscription whose callback does not echo the challenge exactly', async () => {
      await start();
      const topic = hub.serveFeed('/feed');
      subscriber.onVerify = (query) => ({ status: 200, body: `${query.get('hub.challenge')}\n` });
      const failed = once(hub, 'verification-failed') as Promise<[Verification]>;

      const answer = await subscriber.subscribe(hub.url, {
        topic,
        callback: subscriber.callback('/cb/3'),
      });
      expect(answer.status).to.equal(202);

      const [verification] = await failed;
      expect(verification.confirmed).to.equal(false);
      expect(verification.status).to.equal(200);
      expect(verification.reason).to.match(/challenge/);
      expect(hub.subscriptions()[0]!.state).to.equal('refused');
      expect(await hub.publish(topic, { body: 'x' })).to.deep.equal([]);
    });

    it('refuses when the callback answers the challenge with a non-2xx status', async () => {
      await start();
      const topic = hub.serveFeed('/feed');
      subscriber.onVerify = (query) => ({ status: 404, body: query.get('hub.challenge')! });

      await subscriber.subscribe(hub.url, { topic, callback: subscriber.callback('/cb/4') });
      await hub.waitFor(() => hub.verifications.length === 1);

      expect(hub.verifications[0]).to.include({ confirmed: false, status: 404 });
      expect(hub.subscriptions()[0]!.state).to.equal('refused');
    });
  });

  describe('sync verification', () => {
    it('verifies inside the request and answers only after the callback confirmed', async () => {
      await start({ verification: 'sync' });
      const topic = hub.serveFeed('/feed');

      const answer = await subscriber.subscribe(hub.url, {
        topic,
        callback: subscriber.callback('/cb/5'),
      });

      // No waiting: by the time the answer arrives, the verification is done.
      expect(answer.status).to.equal(202);
      expect(subscriber.gets).to.have.length(1);
      expect(hub.subscriptions()[0]!.state).to.equal('active');
    });

    it('answers 409 with the reason when the callback does not confirm', async () => {
      await start({ verification: 'sync' });
      const topic = hub.serveFeed('/feed');
      subscriber.onVerify = () => ({ status: 200, body: '{"challenge":"no"}' });

      const answer = await subscriber.subscribe(hub.url, {
        topic,
        callback: subscriber.callback('/cb/6'),
      });

      expect(answer.status).to.equal(409);
      expect(answer.body).to.match(/^Verification of intent failed: .*challenge/);
      expect(hub.requests[0]!.status).to.equal(409);
      expect(hub.subscriptions()[0]!.state).to.equal('refused');
    });

    it('answers with acceptStatus when configured (204, as some hubs do)', async () => {
      await start({ verification: 'sync', acceptStatus: 204 });
      const topic = hub.serveFeed('/feed');

      const answer = await subscriber.subscribe(hub.url, {
        topic,
        callback: subscriber.callback('/cb/7'),
      });

      expect(answer.status).to.equal(204);
      expect(hub.subscriptions()[0]!.state).to.equal('active');
    });
  });

  describe('leases', () => {
    it('clamps a lease to [minLeaseSeconds, maxLeaseSeconds]; default if none asked', async () => {
      await start({
        verification: 'sync',
        leaseSeconds: 600,
        minLeaseSeconds: 60,
        maxLeaseSeconds: 3600,
      });
      const topic = hub.serveFeed('/feed');

      await subscriber.subscribe(hub.url, {
        topic,
        callback: subscriber.callback('/short'),
        leaseSeconds: 10,
      });
      await subscriber.subscribe(hub.url, {
        topic,
        callback: subscriber.callback('/long'),
        leaseSeconds: 99_999_999,
      });
      await subscriber.subscribe(hub.url, { topic, callback: subscriber.callback('/none') });

      const sent = subscriber.gets.map((get) => get.query.get('hub.lease_seconds'));
      expect(sent).to.deep.equal(['60', '3600', '600']);
      expect(hub.subscriptions().map((s) => s.leaseSeconds)).to.deep.equal([60, 3600, 600]);
    });

    it('reports a lapsed lease as expired and distributes nothing to it', async () => {
      await start({ verification: 'sync', minLeaseSeconds: 1 });
      const topic = hub.serveFeed('/feed');

      await subscriber.subscribe(hub.url, {
        topic,
        callback: subscriber.callback('/brief'),
        leaseSeconds: 1,
      });
      expect(hub.subscriptions()[0]!.state).to.equal('active');

      await sleep(1050);
      expect(hub.subscriptions()[0]!.state).to.equal('expired');
      expect(await hub.publish(topic, { body: 'late' })).to.deep.equal([]);
    });

    it('renews the lease and the secret when one (topic, callback) subscribes again', async () => {
      await start({ verification: 'sync' });
      const topic = hub.serveFeed('/feed');
      const callback = subscriber.callback('/renew');

      await subscriber.subscribe(hub.url, { topic, callback, secret: 'first', leaseSeconds: 100 });
      const first = hub.subscriptions()[0]!;
      await sleep(5);
      await subscriber.subscribe(hub.url, { topic, callback, secret: 'second', leaseSeconds: 200 });

      const subscriptions = hub.subscriptions();
      expect(subscriptions).to.have.length(1);
      expect(subscriptions[0]).to.include({ secret: 'second', leaseSeconds: 200, state: 'active' });
      expect(subscriptions[0]!.verifiedAt!.getTime()).to.be.greaterThan(
        first.verifiedAt!.getTime(),
      );
    });

    it('leaves a live subscription unchanged when its renewal is not confirmed', async () => {
      await start({ verification: 'sync' });
      const topic = hub.serveFeed('/feed');
      const callback = subscriber.callback('/keep');

      await subscriber.subscribe(hub.url, { topic, callback, secret: 'kept', leaseSeconds: 100 });
      subscriber.onVerify = () => ({ status: 404, body: '' });
      const answer = await subscriber.subscribe(hub.url, { topic, callback, secret: 'lost' });

      expect(answer.status).to.equal(409);
      expect(hub.subscriptions()[0]).to.include({
        state: 'active',
        secret: 'kept',
        leaseSeconds: 100,
      });
    });
  });

  describe('unsubscribe', () => {
    it('verifies without a lease and removes the subscription', async () => {
      await start();
      const topic = hub.serveFeed('/feed');
      const callback = subscriber.callback('/bye');
      await subscriber.subscribe(hub.url, { topic, callback });
      await hub.waitFor(() => hub.subscriptions()[0]?.state === 'active');

      const answer = await subscriber.subscribe(hub.url, { topic, callback, mode: 'unsubscribe' });
      expect(answer.status).to.equal(202);
      await hub.waitFor(() => hub.subscriptions()[0]?.state === 'unsubscribed');

      const query = subscriber.gets[1]!.query;
      expect(query.get('hub.mode')).to.equal('unsubscribe');
      expect(query.get('hub.topic')).to.equal(topic);
      expect(query.has('hub.lease_seconds')).to.equal(false);
      expect(await hub.publish(topic, { body: 'gone' })).to.deep.equal([]);
    });

    it('keeps the subscription when the callback refuses the unsubscription', async () => {
      await start({ verification: 'sync' });
      const topic = hub.serveFeed('/feed');
      const callback = subscriber.callback('/stay');
      await subscriber.subscribe(hub.url, { topic, callback });
      subscriber.onVerify = () => ({ status: 404, body: '' });

      const answer = await subscriber.subscribe(hub.url, { topic, callback, mode: 'unsubscribe' });

      expect(answer.status).to.equal(409);
      expect(hub.subscriptions()[0]!.state).to.equal('active');
    });
  });

  describe('validation', () => {
    async function post(body: string, contentType = 'application/x-www-form-urlencoded') {
      const response = await fetch(hub.url, {
        method: 'POST',
        headers: { 'Content-Type': contentType },
        body,
      });
      return { status: response.status, text: await response.text() };
    }

    function form(fields: Record<string, string>): string {
      return new URLSearchParams(fields).toString();
    }

    const topic = 'http://127.0.0.1:9/feed';
    const callback = 'http://127.0.0.1:9/cb';

    beforeEach(async () => {
      await start();
    });

    it('answers 400 with a plain-text reason for missing or invalid fields', async () => {
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ 'hub.topic': topic, 'hub.callback': callback }, /hub\.mode is missing/],
        [{ 'hub.mode': 'publish', 'hub.topic': topic, 'hub.callback': callback }, /hub\.mode/],
        [{ 'hub.mode': 'subscribe', 'hub.callback': callback }, /hub\.topic is missing/],
        [{ 'hub.mode': 'subscribe', 'hub.topic': topic }, /hub\.callback is missing/],
        [
          { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': '/relative' },
          /hub\.callback must be an absolute/,
        ],
        [
          {
            'hub.mode': 'subscribe',
            'hub.topic': 'mailto:x@example.com',
            'hub.callback': callback,
          },
          /hub\.topic must be an absolute/,
        ],
        [
          {
            'hub.mode': 'subscribe',
            'hub.topic': topic,
            'hub.callback': callback,
            'hub.lease_seconds': '1.5',
          },
          /hub\.lease_seconds/,
        ],
        [
          {
            'hub.mode': 'subscribe',
            'hub.topic': topic,
            'hub.callback': callback,
            'hub.secret': '',
          },
          /hub\.secret is empty/,
        ],
      ];

      for (const [fields, reason] of cases) {
        const answer = await post(form(fields));
        expect(answer.status, JSON.stringify(fields)).to.equal(400);
        expect(answer.text).to.match(reason);
      }
      expect(hub.requests.map((request) => request.status)).to.deep.equal(cases.map(() => 400));
      expect(hub.subscriptions()).to.deep.equal([]);
    });

    it('refuses a repeated field', async () => {
      const fields = form({
        'hub.mode': 'subscribe',
        'hub.topic': topic,
        'hub.callback': callback,
      });
      const body = `${fields}&hub.topic=x`;
      const answer = await post(body);

      expect(answer.status).to.equal(400);
      expect(answer.text).to.equal('hub.topic is given more than once');
    });

    it('refuses a secret of 200 bytes and accepts one of 199 bytes', async () => {
      // 'é' is two bytes in UTF-8: the limit is on bytes, not characters.
      const tooLong = `${'é'.repeat(100)}`;
      const justFits = `${'é'.repeat(99)}a`;

      const refused = await post(
        form({
          'hub.mode': 'subscribe',
          'hub.topic': topic,
          'hub.callback': callback,
          'hub.secret': tooLong,
        }),
      );
      const accepted = await post(
        form({
          'hub.mode': 'subscribe',
          'hub.topic': topic,
          'hub.callback': callback,
          'hub.secret': justFits,
        }),
      );

      expect(refused).to.deep.equal({
        status: 400,
        text: 'hub.secret must be shorter than 200 bytes',
      });
      expect(accepted.status).to.equal(202);
      expect(hub.requests[1]!.secret).to.equal(justFits);
    });

    it('answers 415 to a body that is not form-encoded and 405 to a GET', async () => {
      const json = await post(JSON.stringify({ 'hub.mode': 'subscribe' }), 'application/json');
      const get = await fetch(hub.url);

      expect(json.status).to.equal(415);
      expect(json.text).to.match(/application\/x-www-form-urlencoded/);
      expect(get.status).to.equal(405);
      expect(get.headers.get('allow')).to.equal('POST');
    });
  });

  it('serves the hub at a hubPath with a query string and records the request target', async () => {
    await start({ hubPath: '/websub/hub?site=notes' });
    const topic = hub.serveFeed('/feed');

    expect(hub.url).to.equal(`${hub.origin}/websub/hub?site=notes`);
    await subscriber.subscribe(hub.url, { topic, callback: subscriber.callback('/q') });

    expect(hub.requests[0]!.url).to.equal('/websub/hub?site=notes');
    expect(hub.requests[0]!.status).to.equal(202);
  });

  it('rejects inconsistent options with a TestHubError', async () => {
    try {
      await startTestHub({ minLeaseSeconds: 10, maxLeaseSeconds: 5 });
      expect.fail('startTestHub should have thrown');
    } catch (error) {
      expect(error).to.have.property('code', 'invalid_argument');
    }
  });
});

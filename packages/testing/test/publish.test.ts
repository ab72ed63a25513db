import { createHmac } from 'node:crypto';
import { once } from 'node:events';

import { expect } from 'chai';

import {
  startTestHub,
  type DeliveryResult,
  type SignatureAlgorithm,
  type TestHub,
} from '../src/index.js';
import { fixtureBytes, fixtureHeaders, notificationCases } from './helpers/fixtures.js';
import { fieldValues } from './helpers/raw-http.js';
import { startTestSubscriber, type TestSubscriber } from './helpers/subscriber.js';

function pairs(rawHeaders: string[]): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  for (let i = 0; i < rawHeaders.length; i += 2) result.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  return result;
}

describe('test hub: content distribution', () => {
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

  async function subscribe(path: string, secret?: string): Promise<string> {
    const callback = subscriber.callback(path);
    const answer = await subscriber.subscribe(hub.url, { topic, callback, secret });
    expect(answer.status, 'subscription').to.equal(202);
    return callback;
  }

  it('posts the body with Content-Type and the Link header naming hub and self', async () => {
    const callback = await subscribe('/plain');

    const results = await hub.publish(topic, {
      body: '<feed/>',
      contentType: 'application/atom+xml',
    });

    expect(results).to.have.length(1);
    expect(results[0]).to.include({ topic, callback, status: 202 });
    expect(results[0]!.signature).to.equal(undefined);

    const [delivery] = subscriber.deliveries;
    expect(delivery!.body.toString()).to.equal('<feed/>');
    expect(delivery!.headers['content-type']).to.equal('application/atom+xml');
    expect(delivery!.headers['link']).to.equal(`<${hub.url}>; rel="hub", <${topic}>; rel="self"`);
    expect(delivery!.headers).not.to.have.property('x-hub-signature');
    expect(delivery!.signature).to.equal('not-expected');
  });

  for (const algorithm of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
    it(`signs with ${algorithm} over the raw body, as the subscriber verifies`, async () => {
      const secret = `secret for ${algorithm}`;
      await subscribe(`/signed/${algorithm}`, secret);
      const body = Buffer.from('caf\u00e9 \u2014 \u{1F600}\r\n', 'utf8');

      const [result] = await hub.publish(topic, { body, contentType: 'text/plain', algorithm });

      const expected = createHmac(algorithm, secret).update(body).digest('hex');
      expect(result!.signature).to.equal(`${algorithm}=${expected}`);
      expect(subscriber.deliveries[0]!.headers['x-hub-signature']).to.equal(result!.signature);
      expect(subscriber.deliveries[0]!.signature).to.equal('valid');
    });
  }

  it('uses the hub-wide signatureAlgorithm when publish names none', async () => {
    await hub.close();
    hub = await startTestHub({ verification: 'sync', signatureAlgorithm: 'sha384' });
    topic = hub.serveFeed('/feed');
    await subscribe('/hub-wide', 'abc');

    const [result] = await hub.publish(topic, { body: 'x' });

    expect(result!.signature).to.match(/^sha384=[0-9a-f]{96}$/);
    expect(subscriber.deliveries[0]!.signature).to.equal('valid');
  });

  describe('real-world notification fixtures', () => {
    for (const { name, algorithm } of notificationCases()) {
      it(`delivers ${name} byte for byte, with the fixture's own signature`, async () => {
        const secret = fixtureBytes(`notifications/${name}.secret`).toString('utf8');
        const body = fixtureBytes(`notifications/${name}.body`);
        const headers = fixtureHeaders(`notifications/${name}.headers`);
        const expectedSignature = fieldValues(headers, 'x-hub-signature')[0];
        const contentType = fieldValues(headers, 'content-type')[0];
        await subscribe(`/fixture/${name}`, secret);

        const [result] = await hub.publish(topic, {
          body,
          contentType,
          algorithm: algorithm as SignatureAlgorithm,
        });

        const [delivery] = subscriber.deliveries;
        expect(delivery!.body.equals(body)).to.equal(true);
        expect(delivery!.headers['content-type']).to.equal(contentType);
        expect(result!.signature).to.equal(expectedSignature);
        expect(delivery!.signature).to.equal('valid');
        expect(result!.status).to.equal(202);
      });
    }

    it('replays the fixture header fields in order, repeated Link fields kept apart', async () => {
      const name = 'wordpress-atom-two-entries';
      const secret = fixtureBytes(`notifications/${name}.secret`).toString('utf8');
      const body = fixtureBytes(`notifications/${name}.body`);
      const headers = fixtureHeaders(`notifications/${name}.headers`).filter(
        ([field]) => field.toLowerCase() !== 'x-hub-signature',
      );
      await subscribe('/replay', secret);

      await hub.publish(topic, { body, headers });

      const received = pairs(subscriber.deliveries[0]!.rawHeaders);
      expect(fieldValues(received, 'link')).to.deep.equal([
        '<https://websubhub.example.org/hub>; rel="hub"',
        '<https://blog.example.com/feed/atom/>; rel="self"',
      ]);
      expect(fieldValues(received, 'content-type')).to.deep.equal([
        'application/atom+xml; charset=UTF-8',
      ]);
      expect(fieldValues(received, 'accept')).to.deep.equal(['*/*']);
      expect(fieldValues(received, 'x-hub-signature')).to.deep.equal([
        fieldValues(fixtureHeaders(`notifications/${name}.headers`), 'x-hub-signature')[0],
      ]);
      expect(subscriber.deliveries[0]!.body.equals(body)).to.equal(true);
    });
  });

  describe('signature modes', () => {
    it("'invalid' sends a wrong signature of the right algorithm and length", async () => {
      await subscribe('/bad', 'the secret');

      const [result] = await hub.publish(topic, {
        body: 'payload',
        signature: 'invalid',
        algorithm: 'sha512',
      });

      const valid = createHmac('sha512', 'the secret').update('payload').digest('hex');
      expect(result!.signature).to.match(/^sha512=[0-9a-f]{128}$/);
      expect(result!.signature).not.to.equal(`sha512=${valid}`);
      expect(subscriber.deliveries[0]!.signature).to.equal('invalid');
    });

    it("'invalid' signs even a subscription without a secret", async () => {
      await subscribe('/no-secret');

      const [result] = await hub.publish(topic, { body: 'payload', signature: 'invalid' });

      expect(result!.signature).to.match(/^sha256=[0-9a-f]{64}$/);
      expect(subscriber.deliveries[0]!.headers['x-hub-signature']).to.equal(result!.signature);
    });

    it("'none' leaves the signature out even though the subscription has a secret", async () => {
      await subscribe('/unsigned', 'the secret');

      const [result] = await hub.publish(topic, { body: 'payload', signature: 'none' });

      expect(result!.signature).to.equal(undefined);
      expect(subscriber.deliveries[0]!.headers).not.to.have.property('x-hub-signature');
      // The test subscriber refuses an unsigned delivery; the hub reports that answer.
      expect(result!.status).to.equal(403);
    });

    it('each subscription is signed with its own secret', async () => {
      await subscribe('/one', 'secret one');
      await subscribe('/two', 'secret two');

      const results = await hub.publish(topic, { body: 'shared' });

      expect(results.map((result) => result.signature)).to.deep.equal(
        ['secret one', 'secret two'].map(
          (secret) => `sha256=${createHmac('sha256', secret).update('shared').digest('hex')}`,
        ),
      );
      expect(subscriber.deliveries.map((delivery) => delivery.signature)).to.deep.equal([
        'valid',
        'valid',
      ]);
    });
  });

  it('delivers only to active subscriptions of that topic and emits delivered', async () => {
    const other = hub.serveFeed('/other');
    await subscribe('/mine');
    await subscriber.subscribe(hub.url, { topic: other, callback: subscriber.callback('/theirs') });
    const delivered = once(hub, 'delivered') as Promise<[DeliveryResult]>;

    const results = await hub.publish(topic, { body: 'only mine' });

    expect(results.map((result) => result.callback)).to.deep.equal([subscriber.callback('/mine')]);
    expect(subscriber.deliveries.map((delivery) => delivery.path)).to.deep.equal(['/mine']);
    const [event] = await delivered;
    expect(event).to.equal(results[0]);
  });

  it('reports a callback that does not answer with a null status and the error', async () => {
    await hub.close();
    hub = await startTestHub({ verification: 'sync', requestTimeoutMs: 200 });
    topic = hub.serveFeed('/feed');
    await subscribe('/stalls');
    subscriber.stall = true;

    const [result] = await hub.publish(topic, { body: 'anyone there?' });

    expect(result!.status).to.equal(null);
    expect(result!.error).to.match(/did not answer within 200 ms/);
  });

  it('lets given headers replace the hub’s own fields', async () => {
    await subscribe('/override', 'secret');

    const [result] = await hub.publish(topic, {
      body: 'x',
      headers: {
        'X-Hub-Signature': 'sha1=deadbeef',
        Link: '<https://elsewhere.example>; rel=self',
      },
    });

    expect(result!.signature).to.equal('sha1=deadbeef');
    const received = pairs(subscriber.deliveries[0]!.rawHeaders);
    expect(fieldValues(received, 'link')).to.deep.equal(['<https://elsewhere.example>; rel=self']);
    expect(fieldValues(received, 'x-hub-signature')).to.deep.equal(['sha1=deadbeef']);
  });
});

import { createServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';

import {
  AdapterError,
  createMemoryQueue,
  createMemoryStore,
  createSubscriber,
  type Logger,
  type MemoryQueue,
  type Notification,
  type Subscriber,
  type SubscriberOptions,
  type Subscription,
} from '../src/index.js';
import { sharedFixturesDir } from '../src/testing/index.js';
import { startCallbackServer, type CallbackServer } from './helpers/callback-server.js';
import { startRecordingHub, type RecordingHub } from './helpers/recording-hub.js';

const FIXTURES = sharedFixturesDir();
const TOPIC = 'https://publisher.example.com/feed.xml';

/** Send a GET with a raw, unnormalised request target (fetch would re-encode it). */
function rawGet(origin: string, target: string): Promise<{ status: number; body: Buffer }> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: hostname, port, path: target, method: 'GET' },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }),
        );
      },
    );
    request.on('error', reject);
    request.end();
  });
}

describe('protocol details (issue 3), over real sockets', () => {
  let hub: RecordingHub;
  let server: CallbackServer;
  let queue: MemoryQueue;
  let subscriber: Subscriber;
  let received: Notification[];
  let warnings: string[];

  async function build(options: Partial<SubscriberOptions> = {}) {
    await subscriber?.stop();
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: (_fields, message) => void warnings.push(message),
      error: () => {},
    };
    subscriber = createSubscriber({
      baseUrl: server.origin,
      handlers: { news: (notification) => void received.push(notification) },
      queue,
      logger,
      upkeep: false,
      ...options,
    });
    server.attach(subscriber);
    await subscriber.start();
  }

  beforeEach(async () => {
    hub = await startRecordingHub();
    server = await startCallbackServer();
    queue = createMemoryQueue({ backoffMs: 5 });
    received = [];
    warnings = [];
    await build();
  });

  afterEach(async () => {
    await subscriber.stop();
    await server.close();
    await hub.close();
  });

  async function pending(extra: Record<string, unknown> = {}): Promise<Subscription> {
    const record = await subscriber.subscribe({ topic: TOPIC, hub: hub.url, ...extra });
    await queue.idle();
    return (await subscriber.get(record.id))!;
  }

  const target = (record: Subscription, query: string) =>
    `${new URL(record.callbackUrl).pathname}?${query}`;
  const topicParam = encodeURIComponent(TOPIC);

  describe('verification from raw query strings', () => {
    it('echoes challenge bytes exactly, including bytes that are not UTF-8', async () => {
      const record = await pending();
      const answer = await rawGet(
        server.origin,
        target(
          record,
          `hub.mode=subscribe&hub.topic=${topicParam}` +
            '&hub.challenge=%FF%00a%2Fb%2Bc%3D+d&hub.lease_seconds=60',
        ),
      );
      expect(answer.status).to.equal(200);
      expect([...answer.body]).to.deep.equal([
        0xff, 0x00, 0x61, 0x2f, 0x62, 0x2b, 0x63, 0x3d, 0x20, 0x64,
      ]);
    });

    for (const [name, query, status] of [
      [
        'a repeated hub.mode',
        `hub.mode=subscribe&hub.mode=subscribe&hub.topic=${topicParam}` +
          '&hub.challenge=x&hub.lease_seconds=1',
        400,
      ],
      [
        'invalid percent-encoding',
        `hub.mode=subscribe&hub.topic=${topicParam}&hub.challenge=%G1&hub.lease_seconds=1`,
        400,
      ],
      [
        'an empty hub.topic',
        'hub.mode=subscribe&hub.topic=&hub.challenge=x&hub.lease_seconds=1',
        400,
      ],
      [
        'an unencoded topic with its own query',
        `hub.mode=subscribe&hub.topic=${TOPIC}?a=1&b=2&hub.challenge=x&hub.lease_seconds=1`,
        404,
      ],
      ['an unknown mode', `hub.mode=publish&hub.topic=${topicParam}&hub.challenge=x`, 400],
      [
        'a negative lease',
        `hub.mode=subscribe&hub.topic=${topicParam}&hub.challenge=x&hub.lease_seconds=-5`,
        400,
      ],
      [
        'an absurdly long challenge',
        `hub.mode=subscribe&hub.topic=${topicParam}` +
          `&hub.challenge=${'x'.repeat(5000)}&hub.lease_seconds=1`,
        400,
      ],
    ] as const) {
      it(`refuses ${name} with ${status} and never confirms it`, async () => {
        const record = await pending();
        const answer = await rawGet(server.origin, target(record, query));
        expect(answer.status).to.equal(status);
        expect((await subscriber.get(record.id))!.subscribeStatus).to.not.equal('verified');
      });
    }

    for (const own of ['?a=1&b=2', '?q=foo%20bar&fmt=atom', '?q=a+b&c=d', '?tag=c%2B%2B']) {
      it(`confirms a topic with its own query ${own} that the hub sent unencoded`, async () => {
        const topic = `${TOPIC}${own}`;
        const record = await pending({ topic });
        const query = `hub.mode=subscribe&hub.challenge=y&hub.topic=${topic}&hub.lease_seconds=9`;
        expect((await rawGet(server.origin, target(record, query))).status).to.equal(200);
        expect((await subscriber.get(record.id))!.subscribeStatus).to.equal('verified');
      });
    }

    it('refuses an unencoded topic split at the wrong place, then confirms the whole', async () => {
      const topic = `${TOPIC}?a=1&b=2`;
      const record = await pending({ topic });
      for (const [query, status] of [
        // Split at the wrong place, or another topic: still refused.
        [`hub.mode=subscribe&hub.topic=${topic}x&hub.challenge=no&hub.lease_seconds=60`, 404],
        [`hub.mode=subscribe&hub.topic=${TOPIC}?a=1&hub.challenge=no&hub.lease_seconds=60`, 404],
        [`hub.mode=subscribe&hub.challenge=yes&hub.topic=${topic}&hub.lease_seconds=60`, 200],
      ] as const) {
        const answer = await rawGet(server.origin, target(record, query));
        expect(answer.status, query).to.equal(status);
      }
      expect((await subscriber.get(record.id))!.subscribeStatus).to.equal('verified');
    });

    it("leaves out a broken parameter that is not the protocol's, and confirms", async () => {
      const record = await pending();
      const query =
        `hub.mode=subscribe&hub.topic=${topicParam}&hub.challenge=abc&hub.lease_seconds=60` +
        '&utm_source=%ZZ&%E0%80=x';

      const answer = await rawGet(server.origin, target(record, query));

      expect(answer.status).to.equal(200);
      expect(answer.body.toString()).to.equal('abc');
      expect((await subscriber.get(record.id))!.subscribeStatus).to.equal('verified');
    });

    it('takes a lease of 0 as the assumed lease and clamps leases of years', async () => {
      await build({ assumedLeaseSeconds: 3600, maxLeaseSeconds: 86_400 });
      const zero = await pending();
      const start = Date.now();
      await rawGet(
        server.origin,
        target(
          zero,
          `hub.mode=subscribe&hub.topic=${topicParam}&hub.challenge=a&hub.lease_seconds=0`,
        ),
      );
      const zeroLease = (await subscriber.get(zero.id))!.leaseExpiresAt!.getTime() - start;
      expect(zeroLease).to.be.within(3_599_000, 3_601_000);

      const long = await subscriber.subscribe({ topic: `${TOPIC}?long`, hub: hub.url });
      await queue.idle();
      const longTopic = encodeURIComponent(`${TOPIC}?long`);
      await rawGet(
        server.origin,
        target(
          long,
          `hub.mode=subscribe&hub.topic=${longTopic}&hub.challenge=a&hub.lease_seconds=315360000`,
        ),
      );
      const longLease = (await subscriber.get(long.id))!.leaseExpiresAt!.getTime() - Date.now();
      expect(longLease).to.be.within(86_300_000, 86_400_000);
    });

    it('confirms an unsubscribe without a lease', async () => {
      const record = await pending();
      await subscriber.unsubscribe(record.id);
      await queue.idle();
      const answer = await rawGet(
        server.origin,
        target(record, `hub.mode=unsubscribe&hub.topic=${topicParam}&hub.challenge=ok`),
      );
      expect(answer.status).to.equal(200);
      expect(answer.body.toString()).to.equal('ok');
    });
  });

  describe('the subscription request', () => {
    it("keeps the hub URL's own query string", async () => {
      const withQuery = await startRecordingHub('/hub?key=abc&x=%2F');
      try {
        await subscriber.subscribe({ topic: TOPIC, hub: withQuery.url });
        await queue.idle();
        expect(withQuery.requests[0]!.url).to.equal('/hub?key=abc&x=%2F');
      } finally {
        await withQuery.close();
      }
    });

    for (const status of [307, 308]) {
      it(`sends the same request to the Location of a ${status}`, async () => {
        const moved: Server = createServer((request, response) => {
          response.writeHead(status, { location: hub.url }).end();
          request.resume();
        });
        await new Promise<void>((resolve) => moved.listen(0, '127.0.0.1', resolve));
        const origin = `http://127.0.0.1:${(moved.address() as AddressInfo).port}`;
        try {
          const record = await subscriber.subscribe({
            topic: TOPIC,
            hub: `${origin}/old-hub`,
            secret: 'abc',
          });
          await queue.idle();
          expect(hub.requests).to.have.length(1);
          expect(hub.requests[0]!.params.get('hub.mode')).to.equal('subscribe');
          expect(hub.requests[0]!.params.get('hub.secret')).to.equal('abc');
          expect((await subscriber.get(record.id))!.subscribeStatus).to.equal('verifying');
        } finally {
          moved.closeAllConnections();
          await new Promise<void>((resolve) => moved.close(() => resolve()));
        }
      });
    }

    describe('an https hub redirecting to plain http (self-signed certificate, checks off)', () => {
      let tlsHub: HttpsServer;
      let checks: string | undefined;

      beforeEach(async () => {
        const dir = join(import.meta.dirname, 'helpers', 'tls');
        tlsHub = createHttpsServer(
          { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
          (request, response) => {
            request.resume();
            response.writeHead(307, { location: hub.url }).end();
          },
        );
        await new Promise<void>((resolve) => tlsHub.listen(0, '127.0.0.1', resolve));
        // The test certificate is signed by no authority this process trusts.
        checks = process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
        process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = '0';
      });

      afterEach(async () => {
        if (checks === undefined) delete process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
        else process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = checks;
        tlsHub.closeAllConnections();
        await new Promise<void>((resolve) => tlsHub.close(() => resolve()));
      });

      const tlsHubUrl = () => `https://127.0.0.1:${(tlsHub.address() as AddressInfo).port}/hub`;

      it('does not send hub.secret there: a connection error saying why', async () => {
        const record = await subscriber.subscribe({ topic: TOPIC, hub: tlsHubUrl(), secret: 'k' });
        await queue.idle();

        expect(hub.requests).to.deep.equal([]);
        const stored = (await subscriber.get(record.id))!;
        expect(stored).to.include({ subscribeStatus: 'connerror', connectionErrors: 1 });
        expect(stored.lastError).to.contain('from https to plain http');
      });

      it('follows it with a request that holds no secret', async () => {
        const record = await subscriber.subscribe({ topic: TOPIC, hub: tlsHubUrl() });
        await queue.idle();

        expect(hub.requests).to.have.length(1);
        expect(hub.requests[0]!.params.get('hub.callback')).to.equal(record.callbackUrl);
        expect((await subscriber.get(record.id))!.subscribeStatus).to.equal('verifying');
      });
    });

    it('warns when a secret goes to an http: hub', async () => {
      await pending({ secret: 'abc' });
      expect(warnings).to.include('Sending hub.secret to a hub over plain http');
    });

    it('a verification inside the subscribe request stands after the hub answers', async () => {
      const syncHub: TestHub = await startTestHub({ verification: 'sync' });
      try {
        const record = await subscriber.subscribe({ topic: TOPIC, hub: syncHub.url });
        await queue.idle();
        expect((await subscriber.get(record.id))!.subscribeStatus).to.equal('verified');
      } finally {
        await syncHub.close();
      }
    });
  });

  describe('racing events on one subscription', () => {
    it('a denial racing a verification always ends denied, never verified', async () => {
      for (let round = 0; round < 20; round++) {
        const record = await subscriber.subscribe({
          topic: `${TOPIC}?race=${round}`,
          hub: hub.url,
        });
        await queue.idle();
        const topic = encodeURIComponent(`${TOPIC}?race=${round}`);
        const [verification, denial] = await Promise.all([
          rawGet(
            server.origin,
            target(
              record,
              `hub.mode=subscribe&hub.topic=${topic}&hub.challenge=c&hub.lease_seconds=60`,
            ),
          ),
          rawGet(server.origin, target(record, `hub.mode=denied&hub.topic=${topic}&hub.reason=no`)),
        ]);
        expect(denial.status).to.equal(200);
        expect([200, 404]).to.include(verification.status);
        expect((await subscriber.get(record.id))!.subscribeStatus).to.equal('denied');
      }
    });

    it('a subscribe task and its verification racing end verified', async () => {
      for (let round = 0; round < 10; round++) {
        const record = await subscriber.subscribe({
          topic: `${TOPIC}?both=${round}`,
          hub: hub.url,
        });
        const topic = encodeURIComponent(`${TOPIC}?both=${round}`);
        await new Promise((resolve) => setTimeout(resolve, round % 3));
        const answer = await rawGet(
          server.origin,
          target(
            record,
            `hub.mode=subscribe&hub.topic=${topic}&hub.challenge=c&hub.lease_seconds=60`,
          ),
        );
        await queue.idle();
        expect(answer.status).to.equal(200);
        expect((await subscriber.get(record.id))!.subscribeStatus).to.equal('verified');
      }
    });
  });

  describe('several hubs', () => {
    it('subscribes at every hub advertised, one callback each (wordpress-three-hubs)', async () => {
      const hubs = [hub, await startRecordingHub(), await startRecordingHub()];
      const expected = [
        'https://pubsubhubbub.example.com/',
        'https://pubsubhubbub.example.net/',
        'https://websubhub.example.org/hub',
      ];
      let headers = readFileSync(join(FIXTURES, 'discovery/wordpress-three-hubs.headers'), 'utf8');
      expected.forEach((url, index) => (headers = headers.split(url).join(hubs[index]!.url)));
      const body = readFileSync(join(FIXTURES, 'discovery/wordpress-three-hubs.body'));
      const feed = createServer((_request, response) => {
        const lines = headers.split('\n').filter((line) => line.includes(':'));
        const raw = lines.flatMap((line) => [
          line.slice(0, line.indexOf(':')),
          line.slice(line.indexOf(':') + 1).trim(),
        ]);
        response.writeHead(200, raw);
        response.end(body);
      });
      await new Promise<void>((resolve) => feed.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(feed.address() as AddressInfo).port}/feed/`;
      try {
        const records = await subscriber.subscribeEach({ topic: url });
        await queue.idle();

        expect(records.map((record) => record.hub)).to.deep.equal(hubs.map((entry) => entry.url));
        expect(new Set(records.map((record) => record.callbackUrl)).size).to.equal(3);
        hubs.forEach((entry, index) => {
          expect(entry.requests).to.have.length(1);
          expect(entry.requests[0]!.params.get('hub.callback')).to.equal(
            records[index]!.callbackUrl,
          );
        });

        const one = await subscriber.subscribe({ topic: url, handler: 'news' });
        expect(one.hub).to.equal(hubs[0]!.url);
      } finally {
        feed.closeAllConnections();
        await new Promise<void>((resolve) => feed.close(() => resolve()));
        await hubs[1]!.close();
        await hubs[2]!.close();
      }
    });
  });

  describe('content distribution', () => {
    it('drops a duplicate delivery within the window when asked to', async () => {
      await build({ dedupeWindowMs: 60_000 });
      const record = await pending();
      const post = (body: string) => fetch(record.callbackUrl, { method: 'POST', body });

      const statuses = [
        (await post('same')).status,
        (await post('same')).status,
        (await post('other')).status,
      ];
      await queue.idle();

      expect(statuses).to.deep.equal([202, 202, 202]);
      expect(received.map((notification) => notification.body.toString())).to.deep.equal([
        'same',
        'other',
      ]);
    });

    it('keeps duplicates when the option is off', async () => {
      const record = await pending();
      await fetch(record.callbackUrl, { method: 'POST', body: 'same' });
      await fetch(record.callbackUrl, { method: 'POST', body: 'same' });
      await queue.idle();
      expect(received).to.have.length(2);
    });

    it('keeps an acknowledged delivery through a store outage (failures injected)', async () => {
      const store = createMemoryStore();
      const read = store.get.bind(store);
      const outage = { pass: 0, fail: 0 };
      store.get = async (id) => {
        if (outage.pass > 0) outage.pass -= 1;
        else if (outage.fail > 0) {
          outage.fail -= 1;
          throw new AdapterError('MemoryStore', 'get failed', new Error('connection refused'));
        }
        return read(id);
      };
      const failed: unknown[] = [];
      await build({ store, deliveryAttempts: 2, deliveryBackoffMs: 1, retryBackoffMaxMs: 5 });
      subscriber.on('handler:failed', (event) => void failed.push(event));
      const record = await pending();

      // The callback reads the record once to acknowledge; the job's next six reads fail.
      Object.assign(outage, { pass: 1, fail: 6 });
      const response = await fetch(record.callbackUrl, { method: 'POST', body: 'kept' });
      expect(response.status).to.equal(202);
      await queue.idle();

      expect(outage.fail).to.equal(0);
      expect(received.map((notification) => notification.body.toString())).to.deep.equal(['kept']);
      expect(failed).to.deep.equal([]);
      expect(warnings).to.include('The store could not be read: the delivery waits in the queue');
    });

    it('answers 503 when the queue refuses (simulated), so the hub sends again', async () => {
      const record = await pending();
      const original = queue.enqueue.bind(queue);
      queue.enqueue = async () => {
        throw new Error('queue down');
      };
      try {
        const response = await fetch(record.callbackUrl, { method: 'POST', body: 'x' });
        expect(response.status).to.equal(503);
        expect(response.headers.get('retry-after')).to.equal('30');
      } finally {
        queue.enqueue = original;
      }
    });
  });
});

import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type RequestListener } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { TestHub } from '@websubsub/testing';
import { expect } from 'chai';

import type { Notification } from '../context.js';
import { InvalidInputError } from '../errors.js';
import type { CallbackEndpoint, CallbackRequest } from '../http-handler.js';
import { createMemoryQueue, type MemoryQueue } from '../memory-queue.js';
import { createSubscriber, type Subscriber, type SubscriberOptions } from '../subscriber.js';
import type { Subscription } from '../subscription.js';
import { makeSubscription } from './store-contract.js';

/** A callback endpoint as adapters mount it, with the handler paths route-based mounts need. */
export type MountableEndpoint = CallbackEndpoint & { readonly callbackPaths: string[] };

/** An app listening on 127.0.0.1 with the adapter under test in front of its own routes. */
export interface MountedAdapter {
  /** `http://127.0.0.1:PORT`, where the subscriber's callbacks are reachable. */
  origin: string;
  /** Stop listening and drop open connections. */
  close(): Promise<void>;
}

/**
 * Start an app with the adapter mounted for `endpoint`. Every request the adapter does not
 * answer must reach `app`, a plain Node listener that stands for the application's own routes
 * (call it from the framework's last middleware). Called once per suite.
 */
export type AdapterMount = (
  endpoint: MountableEndpoint,
  app: RequestListener,
) => Promise<MountedAdapter>;

/** Options of `httpAdapterSuite`. */
export interface HttpAdapterSuiteOptions {
  /**
   * The shared fixtures directory (with `notifications/` and `cases.json`).
   * @default `WEBSUB_FIXTURES`, else the nearest `shared/fixtures` above the working directory
   */
  fixturesDir?: string;
  /** Random requests sent by the fuzz test. @default 1000 */
  fuzzRequests?: number;
  /** Seed of the fuzz test's generator. @default `WEBSUB_FUZZ_SEED`, else random */
  fuzzSeed?: number;
}

/** Largest body the suite's subscriber accepts: small, so the limit is cheap to cross. */
const LIMIT = 64 * 1024;

const HANDLERS = { news: '/websub/news', alerts: '/hooks/alerts' } as const;
type HandlerName = keyof typeof HANDLERS;

/** What the app behind the adapter answers, so a test can tell it from the callback's answers. */
const APP_MARK = 'x-served-by';

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface RawRequest {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: Buffer | string;
  /** Send the body as chunks without `Content-Length`. */
  chunked?: boolean;
}

/** One delivery from the shared fixtures: header lines in wire order, exact body, secret. */
export interface NotificationFixture {
  name: string;
  headers: Array<[string, string]>;
  body: Buffer;
  secret: string;
}

/** Receives whatever the adapter passes on: reads the whole body, says what it saw. */
const appListener: RequestListener = (request, response) => {
  let bytes = 0;
  request.on('data', (chunk: Buffer) => (bytes += chunk.length));
  request.on('end', () => {
    const body = `app ${request.method} ${request.url} ${bytes}`;
    response.writeHead(200, { 'content-type': 'text/plain', [APP_MARK]: 'app' });
    response.end(body);
  });
};

/** Delegates to the subscriber of the running test, so one mounted app serves every test. */
class CurrentEndpoint implements MountableEndpoint {
  constructor(public current: Subscriber) {}

  get maxBodyBytes(): number {
    return this.current.maxBodyBytes;
  }

  get maxBufferedBytes(): number {
    return this.current.maxBufferedBytes;
  }

  get callbackPaths(): string[] {
    return this.current.callbackPaths;
  }

  isCallbackPath(pathname: string): boolean {
    return this.current.isCallbackPath(pathname);
  }

  handle(request: CallbackRequest) {
    return this.current.handle(request);
  }

  refuseOversized(request: Omit<CallbackRequest, 'body'>) {
    return this.current.refuseOversized(request);
  }
}

/**
 * The directory of the shared real-world fixtures (feeds, pages, signed deliveries, and the
 * `cases.json` that lists them): the one given, else `WEBSUB_FIXTURES`, else the nearest
 * `shared/fixtures` above the working directory. Throws, saying where it looked, when none
 * holds a `cases.json`.
 */
export function sharedFixturesDir(given?: string): string {
  const explicit = given ?? process.env['WEBSUB_FIXTURES'];
  let dir: string | null = explicit ?? null;
  for (let at = process.cwd(); dir === null; at = path.dirname(at)) {
    const candidate = path.join(at, 'shared', 'fixtures');
    if (existsSync(path.join(candidate, 'cases.json'))) dir = candidate;
    else if (path.dirname(at) === at) break;
  }
  if (dir === null || !existsSync(path.join(dir, 'cases.json'))) {
    const where = dir ?? `any shared/fixtures above ${process.cwd()}`;
    throw new InvalidInputError(
      `No shared fixtures (cases.json) in ${where}: set WEBSUB_FIXTURES to their directory`,
    );
  }
  return dir;
}

/**
 * The notification fixtures listed in `cases.json` of the shared fixtures directory (see
 * `sharedFixturesDir`). Throws when there is none, saying where it looked.
 */
export function notificationFixtures(fixturesDir?: string): NotificationFixture[] {
  const dir = sharedFixturesDir(fixturesDir);

  const cases = JSON.parse(readFileSync(path.join(dir, 'cases.json'), 'utf8')) as {
    notifications: Array<{ name: string }>;
  };
  return cases.notifications.map(({ name }) => {
    const file = (ext: string) => readFileSync(path.join(dir, 'notifications', `${name}.${ext}`));
    const headers = file('headers')
      .toString('utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line): [string, string] => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon), line.slice(colon + 1).trim()];
      });
    return { name, headers, body: file('body'), secret: file('secret').toString('utf8') };
  });
}

/** One request over a fresh or pooled socket, with the target sent exactly as given. */
function send(
  origin: string,
  target: string,
  options: RawRequest = {},
  agent: http.Agent | false = false,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const url = new URL(origin);
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    // Node frames a body by itself only for some methods; a DELETE body would go unframed.
    const framing: Record<string, string> = {};
    if (body !== undefined) {
      if (options.chunked) framing['transfer-encoding'] = 'chunked';
      else framing['content-length'] = String(body.length);
    }
    const request = http.request({
      host: url.hostname,
      port: url.port,
      path: target,
      method: options.method ?? 'GET',
      headers: { ...options.headers, ...framing },
      agent,
    });

    // A request the server never answers fails with what it was, rather than the whole test.
    request.setTimeout(5000, () => request.destroy(new Error('no answer within 5 s')));
    request.on('error', reject);
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks),
        });
      });
    });

    if (options.chunked && body !== undefined) {
      for (let start = 0; start < body.length; start += 1000) {
        request.write(body.subarray(start, start + 1000));
      }
      request.end();
    } else {
      request.end(body);
    }
  });
}

/** Write `wire` on a fresh connection, half-close it, and read everything the server says. */
function rawExchange(origin: string, wire: string): Promise<string> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.end(wire));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no answers within 5 s')));
  });
}

/**
 * Send `size` bytes, chunked or with their length declared, until the server answers; then
 * report the answer and whether the server closed the connection.
 */
function sendOversized(
  origin: string,
  target: string,
  size: number,
  chunked: boolean,
): Promise<RawAnswer & { closed: boolean }> {
  return new Promise((resolve, reject) => {
    const url = new URL(origin);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    headers[chunked ? 'transfer-encoding' : 'content-length'] = chunked ? 'chunked' : String(size);
    const request = http.request({
      host: url.hostname,
      port: url.port,
      path: target,
      method: 'POST',
      headers,
      agent: false,
    });

    let answered = false;
    let answer: RawAnswer | null = null;
    let socketClosed = false;
    const finish = () => {
      if (answer && socketClosed) resolve({ ...answer, closed: true });
    };

    // Writing into a connection the server closed fails; only an error before the answer counts.
    request.on('error', (error) => {
      if (!answered) reject(error);
    });
    request.on('socket', (socket) => {
      socket.on('close', () => {
        socketClosed = true;
        finish();
      });
    });
    request.on('response', (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        answer = {
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks),
        };
        finish();
        // A server that keeps the connection open fails the test instead of hanging it.
        setTimeout(() => {
          if (!socketClosed && answer) resolve({ ...answer, closed: false });
          request.destroy();
        }, 1000).unref();
      });
    });

    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const pump = async () => {
      let written = 0;
      while (written < size && !answered && !request.destroyed) {
        const piece = chunk.subarray(0, Math.min(chunk.length, size - written));
        written += piece.length;
        if (!request.write(piece)) await new Promise((done) => request.once('drain', done));
        await sleep(1);
      }
      if (!answered && !request.destroyed) request.end();
    };
    pump().catch(reject);
  });
}

const signed = (body: Buffer | string, secret: string, algorithm = 'sha256') =>
  `${algorithm}=${createHmac(algorithm, secret).update(body).digest('hex')}`;

const callbackTarget = (record: Subscription) => new URL(record.callbackUrl).pathname;

/** A verification query with every value percent-encoded, in the order given. */
const query = (params: Array<[string, string]>) =>
  params
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    .join('&');

/** mulberry32: small, fast and seedable, so a failing run can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The behaviour every HTTP adapter must show, over real sockets: intent verification, denial,
 * content distribution of the real-world fixtures, limits, methods, fall-through to the app,
 * and a seeded fuzz run that must cause no 5xx and no change to any stored record. Each test
 * gets a fresh subscriber (in-memory store and queue) with two handlers, `news` at
 * `/websub/news` and `alerts` at `/hooks/alerts`, and `maxBodyBytes` of 64 KiB, subscribed
 * through the `@websubsub/testing` hub. Call it inside a mocha file: `httpAdapterSuite('koa',
 * mount)`.
 */
export function httpAdapterSuite(
  name: string,
  mount: AdapterMount,
  options: HttpAdapterSuiteOptions = {},
): void {
  describe(`${name}: HTTP adapter behaviour`, function () {
    let hub: TestHub;
    let mounted: MountedAdapter;
    let endpoint: CurrentEndpoint;
    let queue: MemoryQueue;
    let subscriber: Subscriber;
    let received: Array<{ handler: HandlerName; notification: Notification }>;
    let accepted: number;

    const handlerOptions = () => ({
      news: { handle: record('news'), path: HANDLERS.news },
      alerts: { handle: record('alerts'), path: HANDLERS.alerts },
    });
    const record = (handler: HandlerName) => (notification: Notification) => {
      received.push({ handler, notification });
    };

    before(async function () {
      // Loaded here, so that the other suites of this entry do not need the test hub installed.
      const { startTestHub } = await import('@websubsub/testing');
      hub = await startTestHub();
      endpoint = new CurrentEndpoint(
        createSubscriber({
          baseUrl: 'http://127.0.0.1',
          handlers: handlerOptions(),
          upkeep: false,
        }),
      );
      mounted = await mount(endpoint, appListener);
    });

    after(async function () {
      await mounted?.close();
      await hub?.close();
    });

    /** The subscriber the mounted app serves, for this test. */
    async function serve(extra: Partial<SubscriberOptions> = {}): Promise<void> {
      await subscriber?.stop();
      subscriber = createSubscriber({
        baseUrl: mounted.origin,
        handlers: handlerOptions(),
        queue,
        upkeep: false,
        maxBodyBytes: LIMIT,
        ...extra,
      });
      subscriber.on('delivery:accepted', () => (accepted += 1));
      endpoint.current = subscriber;
      await subscriber.start();
    }

    beforeEach(async function () {
      hub.reset();
      received = [];
      accepted = 0;
      queue = createMemoryQueue({ backoffMs: 10 });
      await serve();
    });

    afterEach(async function () {
      await subscriber.stop();
    });

    /** Subscribe through the test hub and wait until its verification of intent went through. */
    async function subscribed(
      input: { handler?: HandlerName; secret?: string } = {},
    ): Promise<Subscription> {
      const topic = hub.topicUrl(`/topics/${randomUUID()}`);
      const created = await subscriber.subscribe({
        topic,
        hub: hub.url,
        leaseSeconds: 3600,
        ...input,
      });

      await hub.waitFor(() => hub.verifications.some((entry) => entry.topic === topic));
      const verification = hub.verifications.find((entry) => entry.topic === topic)!;
      expect(verification.confirmed, verification.reason).to.equal(true);

      const stored = await subscriber.get(created.id);
      expect(stored?.subscribeStatus).to.equal('verified');
      return stored as Subscription;
    }

    /** A verified subscription whose renewal request is out: the hub's next verification is due. */
    async function renewing(
      input: { handler?: HandlerName; secret?: string } = {},
    ): Promise<Subscription> {
      const subscription = await subscribed(input);
      const pending = await subscriber.store.transition(subscription.id, {
        set: { subscribeStatus: 'verifying' },
      });
      return pending as Subscription;
    }

    const get = (target: string, headers?: Record<string, string>) =>
      send(mounted.origin, target, { headers });
    const post = (target: string, body: Buffer | string, headers: Record<string, string> = {}) =>
      send(mounted.origin, target, { method: 'POST', body, headers });

    describe('intent verification', function () {
      it("confirms the hub's verification by echoing its challenge", async function () {
        const subscription = await subscribed();

        const verification = hub.verifications.find((entry) => entry.topic === subscription.topic)!;
        expect(verification.status).to.equal(200);
        expect(verification.body).to.equal(verification.challenge);
        expect(verification.challenge).to.match(/[/+=]/);
        expect(subscription.leaseExpiresAt).to.be.instanceOf(Date);
      });

      const challenges: Array<[string, string, Buffer]> = [
        ['/ + = percent-encoded', 'a%2Fb%2Bc%3Dd%3D%3D', Buffer.from('a/b+c=d==')],
        ['/ and = left raw', 'a/b=c/=', Buffer.from('a/b=c/=')],
        ['a raw + (a space in a query)', 'x+y', Buffer.from('x y')],
        ['bytes that are not UTF-8', '%00%FF%80%fe%0D%0A', Buffer.from([0, 255, 128, 254, 13, 10])],
        ['unicode', '%E2%9C%93%20%C3%A9%F0%9F%98%80', Buffer.from('✓ é😀', 'utf8')],
        ['the longest allowed (2048 bytes)', '%41'.repeat(2048), Buffer.alloc(2048, 0x41)],
      ];
      for (const [label, raw, bytes] of challenges) {
        it(`echoes a challenge byte for byte: ${label}`, async function () {
          const subscription = await renewing();

          const answer = await get(
            `${callbackTarget(subscription)}?${query([
              ['hub.mode', 'subscribe'],
              ['hub.topic', subscription.topic],
              ['hub.lease_seconds', '3600'],
            ])}&hub.challenge=${raw}`,
          );

          expect(answer.status).to.equal(200);
          expect(answer.body.equals(bytes), `echoed ${answer.body.toString('hex')}`).to.equal(true);
          expect(answer.headers['content-type']).to.match(/^text\/plain/);
          expect(answer.headers['x-content-type-options']).to.equal('nosniff');
        });
      }

      it('refuses verifying a verified subscription with nothing pending', async function () {
        const subscription = await subscribed();

        const answer = await hub.verify(subscription.callbackUrl, {
          'hub.mode': 'subscribe',
          'hub.topic': subscription.topic,
          'hub.challenge': 'abc',
          'hub.lease_seconds': '999999999',
        });

        expect(answer.status).to.equal(404);
        expect(await subscriber.get(subscription.id)).to.deep.equal(subscription);
      });

      it('refuses a verification for another topic with 404, changing nothing', async function () {
        const subscription = await subscribed();

        const answer = await hub.verify(subscription.callbackUrl, {
          'hub.mode': 'subscribe',
          'hub.topic': `${subscription.topic}/other`,
          'hub.challenge': 'abc',
          'hub.lease_seconds': '60',
        });

        expect(answer.status).to.equal(404);
        expect(answer.body).to.not.contain('abc');
        expect(await subscriber.get(subscription.id)).to.deep.equal(subscription);
      });

      it('refuses an unsubscribe verification nobody asked for with 404', async function () {
        const subscription = await subscribed();

        const answer = await hub.verify(subscription.callbackUrl, {
          'hub.mode': 'unsubscribe',
          'hub.topic': subscription.topic,
          'hub.challenge': 'abc',
        });

        expect(answer.status).to.equal(404);
        expect(await subscriber.get(subscription.id)).to.deep.equal(subscription);
      });

      for (const [label, params] of [
        ['without a challenge', { 'hub.lease_seconds': '60' }],
        ['without a lease', { 'hub.challenge': 'abc' }],
      ] as const) {
        it(`refuses a subscribe verification ${label} with 400`, async function () {
          const subscription = await renewing();

          const answer = await hub.verify(subscription.callbackUrl, {
            'hub.mode': 'subscribe',
            'hub.topic': subscription.topic,
            ...params,
          });

          expect(answer.status).to.equal(400);
          expect((await subscriber.get(subscription.id))?.verifyErrors).to.equal(1);
        });
      }

      it('refuses a query with a broken percent-encoding with 400', async function () {
        const subscription = await subscribed();

        const answer = await get(
          `${callbackTarget(subscription)}?hub.mode=subscribe&hub.topic=%ZZ&hub.challenge=abc`,
        );

        expect(answer.status).to.equal(400);
        expect(await subscriber.get(subscription.id)).to.deep.equal(subscription);
      });

      it('answers a GET to an unknown callback with 404', async function () {
        const answer = await get(
          `${HANDLERS.news}/${randomUUID()}?${query([
            ['hub.mode', 'subscribe'],
            ['hub.topic', hub.topicUrl('/nothing')],
            ['hub.challenge', 'abc'],
            ['hub.lease_seconds', '60'],
          ])}`,
        );

        expect(answer.status).to.equal(404);
        expect(answer.headers[APP_MARK]).to.equal(undefined);
      });

      it('records a denial, answers 200, then answers content with 410', async function () {
        const subscription = await subscribed({ secret: 'denial secret' });

        const denial = await hub.deny(
          subscription.topic,
          subscription.callbackUrl,
          'quota reached',
        );

        expect(denial.status).to.equal(200);
        const stored = await subscriber.get(subscription.id);
        expect(stored?.subscribeStatus).to.equal('denied');
        expect(stored?.deniedReason).to.equal('quota reached');

        const body = 'late content';
        const answer = await post(callbackTarget(subscription), body, {
          'content-type': 'text/plain',
          'x-hub-signature': signed(body, 'denial secret'),
        });
        expect(answer.status).to.equal(410);
      });

      it('confirms an unsubscription, then answers content with 410', async function () {
        const subscription = await subscribed();

        await subscriber.unsubscribe(subscription.id);
        await hub.waitFor(() =>
          hub
            .subscriptions()
            .some((entry) => entry.topic === subscription.topic && entry.state === 'unsubscribed'),
        );

        expect((await subscriber.get(subscription.id))?.unsubscribeStatus).to.equal('verified');
        const answer = await post(callbackTarget(subscription), 'late', {
          'content-type': 'text/plain',
        });
        expect(answer.status).to.equal(410);
        await queue.idle();
        expect(received).to.have.length(0);
      });
    });

    describe('content distribution', function () {
      let fixtures: NotificationFixture[] = [];
      let missing: unknown = null;
      try {
        fixtures = notificationFixtures(options.fixturesDir);
      } catch (error) {
        missing = error;
      }

      it('has the real-world notification fixtures to replay', function () {
        if (missing) throw missing;
        expect(fixtures).to.not.be.empty;
      });

      for (const fixture of fixtures) {
        it(`passes ${fixture.name} to its handler once, byte for byte`, async function () {
          const subscription = await subscribed({ secret: fixture.secret });

          const [result] = await hub.publish(subscription.topic, {
            body: fixture.body,
            headers: fixture.headers,
          });

          expect(result?.status, result?.error ?? result?.body).to.be.within(200, 299);
          await queue.idle();
          expect(received).to.have.length(1);
          const { handler, notification } = received[0]!;
          expect(handler).to.equal('news');
          expect(notification.subscription.id).to.equal(subscription.id);
          expect(notification.body.equals(fixture.body), 'body bytes differ').to.equal(true);

          const sent = new Map<string, string[]>();
          for (const [field, value] of fixture.headers) {
            sent.set(field.toLowerCase(), [...(sent.get(field.toLowerCase()) ?? []), value]);
          }
          expect(notification.contentType).to.equal(sent.get('content-type')?.[0]);
          for (const [field, values] of sent) {
            expect(notification.headers[field], field).to.equal(values.join(', '));
          }
        });
      }

      it('passes an empty light ping on as an empty body', async function () {
        const subscription = await subscribed({ secret: 'ping secret' });

        const [result] = await hub.publish(subscription.topic, {
          contentType: 'application/rss+xml',
        });

        expect(result?.status).to.be.within(200, 299);
        await queue.idle();
        expect(received).to.have.length(1);
        expect(received[0]!.notification.body.length).to.equal(0);
        expect(received[0]!.notification.contentType).to.equal('application/rss+xml');
      });

      it('serves a handler with a path of its own', async function () {
        const subscription = await subscribed({ handler: 'alerts' });

        const body = Buffer.from('<alert>é</alert>', 'utf8');
        const [result] = await hub.publish(subscription.topic, {
          body,
          contentType: 'application/xml; charset=utf-8',
        });

        expect(
          new URL(subscription.callbackUrl).pathname.startsWith(`${HANDLERS.alerts}/`),
        ).to.equal(true);
        expect(result?.status).to.be.within(200, 299);
        await queue.idle();
        expect(received.map((entry) => entry.handler)).to.deep.equal(['alerts']);
        expect(received[0]!.notification.body.equals(body)).to.equal(true);
        expect(received[0]!.notification.contentType).to.equal('application/xml; charset=utf-8');
      });

      it('acknowledges content with a wrong signature and never hands it over', async function () {
        const subscription = await subscribed({ secret: 'the real secret' });

        const [result] = await hub.publish(subscription.topic, {
          body: 'forged',
          signature: 'invalid',
        });

        expect(result?.status).to.be.within(200, 299);
        await queue.idle();
        expect(received).to.have.length(0);
        expect(accepted).to.equal(0);
      });

      it('answers taken and forged content alike: empty 202, same header names', async function () {
        const subscription = await subscribed({ secret: 'the real secret' });
        const body = Buffer.from('<feed/>');
        const send = (signature: string) =>
          post(callbackTarget(subscription), body, {
            'content-type': 'application/atom+xml',
            'x-hub-signature': signature,
          });

        const taken = await send(signed(body, 'the real secret'));
        const forged = await send(signed(body, 'a guessed secret'));

        for (const answer of [taken, forged]) {
          expect(answer.status).to.equal(202);
          expect(answer.body.length).to.equal(0);
          expect(answer.headers['content-type']).to.equal(undefined);
          // Framed by its length, so the connection carries no chunked terminator.
          expect(answer.headers['content-length']).to.equal('0');
          expect(answer.headers['transfer-encoding']).to.equal(undefined);
        }
        const names = (answer: RawAnswer) => Object.keys(answer.headers).sort();
        expect(names(forged)).to.deep.equal(names(taken));
        await queue.idle();
        expect(received).to.have.length(1);
      });

      it('tells an HTTP/1.0 hub the empty 202 is empty: Content-Length: 0', async function () {
        const subscription = await subscribed({ secret: 'the real secret' });
        const body = 'old client';
        const wire =
          `POST ${callbackTarget(subscription)} HTTP/1.0\r\nHost: 127.0.0.1\r\n` +
          `Content-Length: ${body.length}\r\n` +
          `X-Hub-Signature: ${signed(body, 'the real secret')}\r\n\r\n${body}`;

        const raw = await rawExchange(mounted.origin, wire);

        expect(raw).to.match(/^HTTP\/1\.1 202 /);
        expect(raw.toLowerCase()).to.include('\r\ncontent-length: 0\r\n');
        expect(raw.endsWith('\r\n\r\n'), 'nothing after the head').to.equal(true);
        await queue.idle();
        expect(received).to.have.length(1);
      });

      it('answers requests pipelined on one connection, each in its turn', async function () {
        const subscription = await subscribed({ secret: 'the real secret' });
        const target = callbackTarget(subscription);
        const request = (body: string, signature: string | null) =>
          `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n` +
          (signature === null ? '' : `X-Hub-Signature: ${signature}\r\n`) +
          `\r\n${body}`;
        const wire =
          request('first', signed('first', 'the real secret')) +
          request('unsigned', null) +
          request('second', signed('second', 'the real secret')) +
          'GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';

        const raw = await rawExchange(mounted.origin, wire);

        const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => match[1]);
        expect(statuses).to.deep.equal(['202', '403', '202', '200']);
        expect(raw).to.include(`${APP_MARK}: app`);
        await queue.idle();
        expect(received.map(({ notification }) => notification.body.toString())).to.deep.equal([
          'first',
          'second',
        ]);
      });

      it('refuses unsigned content for a subscription with a secret with 403', async function () {
        const subscription = await subscribed({ secret: 'the real secret' });

        const [result] = await hub.publish(subscription.topic, {
          body: 'unsigned',
          signature: 'none',
        });

        expect(result?.status).to.equal(403);
        await queue.idle();
        expect(received).to.have.length(0);
      });

      it('answers content for an unknown callback with 404', async function () {
        const answer = await post(`${HANDLERS.news}/${randomUUID()}`, 'content', {
          'content-type': 'text/plain',
        });

        expect(answer.status).to.equal(404);
        expect(answer.headers[APP_MARK]).to.equal(undefined);
      });

      for (const method of ['PUT', 'DELETE', 'PATCH']) {
        it(`answers ${method} with 405`, async function () {
          const subscription = await subscribed();

          const answer = await send(mounted.origin, callbackTarget(subscription), {
            method,
            body: 'content',
            headers: { 'content-type': 'text/plain' },
          });

          expect(answer.status).to.equal(405);
          expect(answer.headers['allow']).to.match(/GET, POST/);
          expect(answer.headers[APP_MARK]).to.equal(undefined);
        });
      }

      it('accepts a body of exactly maxBodyBytes', async function () {
        const subscription = await subscribed({ secret: 'limit secret' });
        const body = randomBytes(LIMIT);

        const answer = await post(callbackTarget(subscription), body, {
          'content-type': 'application/octet-stream',
          'x-hub-signature': signed(body, 'limit secret'),
        });

        expect(answer.status).to.equal(202);
        await queue.idle();
        expect(received[0]?.notification.body.equals(body)).to.equal(true);
      });

      for (const chunked of [false, true]) {
        const how = chunked ? 'sent chunked, without a length' : 'with its length declared';
        it(`answers a body over the limit ${how}: 413, closed, nothing queued`, async function () {
          const subscription = await subscribed();
          const refusals: string[] = [];
          subscriber.on('delivery:rejected', ({ subscriptionId, reason }) => {
            if (subscriptionId === subscription.id) refusals.push(reason);
          });

          const answer = await sendOversized(
            mounted.origin,
            callbackTarget(subscription),
            LIMIT * 4,
            chunked,
          );

          expect(answer.status).to.equal(413);
          expect(answer.closed, 'the connection stayed open').to.equal(true);
          await queue.idle();
          expect(received).to.have.length(0);
          expect(accepted).to.equal(0);
          expect(refusals, 'the refusal is reported as an event').to.deep.equal(['too_large']);
        });
      }
    });

    describe('bodies read at once', function () {
      const title = 'answers 503 past maxBufferedBodyBytes while a slow body is held, then reads';
      it(title, async function () {
        await serve({ maxBufferedBodyBytes: LIMIT + LIMIT / 2 });
        const subscription = await subscribed();

        // A client that declares a full body, sends three quarters of it and waits.
        const url = new URL(mounted.origin);
        const slow = http.request({
          host: url.hostname,
          port: url.port,
          path: callbackTarget(subscription),
          method: 'POST',
          headers: { 'content-length': String(LIMIT), 'content-type': 'text/plain' },
          agent: false,
        });
        slow.on('error', () => {});
        slow.write(Buffer.alloc((LIMIT * 3) / 4, 0x61));
        await sleep(300);

        const body = Buffer.alloc(LIMIT, 0x62);
        const busy = await post(callbackTarget(subscription), body, {
          'content-type': 'text/plain',
        });
        expect(busy.status).to.equal(503);
        expect(busy.headers['retry-after']).to.equal('30');

        slow.destroy();
        await sleep(300);
        const again = await post(callbackTarget(subscription), body, {
          'content-type': 'text/plain',
        });
        expect(again.status).to.equal(202);
        await queue.idle();
        expect(received.map(({ notification }) => notification.body.length)).to.deep.equal([LIMIT]);
      });
    });

    describe('requests that are not callbacks', function () {
      const cases: Array<[string, string, string, string]> = [
        ['a path of the app', 'GET', '/app/page?x=1', ''],
        ['a POST with a body, unread by the adapter', 'POST', '/app/upload', 'b'.repeat(1000)],
        ['a callback path whose id is no UUID', 'GET', `${HANDLERS.news}/not-a-uuid`, ''],
        ['an unknown handler', 'POST', `/websub/unknown/${randomUUID()}`, 'content'],
        ['the callback prefix alone', 'GET', HANDLERS.news, ''],
      ];
      for (const [label, method, target, body] of cases) {
        it(`falls through to the app: ${label}`, async function () {
          const answer = await send(mounted.origin, target, { method, body });

          expect(answer.status).to.equal(200);
          expect(answer.headers[APP_MARK]).to.equal('app');
          expect(answer.body.toString()).to.equal(`app ${method} ${target} ${body.length}`);
        });
      }
    });

    describe('fuzzing', function () {
      const count = options.fuzzRequests ?? 1000;
      const envSeed = Number(process.env['WEBSUB_FUZZ_SEED']);
      const seed =
        options.fuzzSeed ??
        (Number.isInteger(envSeed) ? envSeed : Math.floor(Math.random() * 2 ** 31));

      const title = `answers ${count} random requests, no 5xx, no record changed (seed ${seed})`;
      it(title, async function () {
        this.timeout(15_000);

        const verified = [
          await subscribed({ secret: randomUUID() }),
          await subscribed({ secret: randomUUID(), handler: 'alerts' }),
        ];
        const states: Array<Partial<Subscription>> = [
          { subscribeStatus: 'requesting' },
          { subscribeStatus: 'verifying' },
          { subscribeStatus: 'verifyerror', verifyErrors: 3 },
          { subscribeStatus: 'denied', deniedReason: 'no' },
          { subscribeStatus: 'verified', unsubscribeStatus: 'requesting' },
          { subscribeStatus: 'verified', unsubscribeStatus: 'verified' },
          { subscribeStatus: 'verified', handler: 'alerts' },
        ];
        const stored: Subscription[] = [];
        for (const state of states) {
          const id = randomUUID();
          const handler = (state.handler ?? 'news') as HandlerName;
          stored.push(
            await subscriber.store.create(
              makeSubscription({
                id,
                hub: hub.url,
                topic: hub.topicUrl(`/topics/${id}`),
                handler,
                callbackUrl: `${mounted.origin}${HANDLERS[handler]}/${id}`,
                secret: randomUUID(),
                ...state,
              }),
            ),
          );
        }
        const records = [...verified, ...stored];
        const snapshot = (await subscriber.list({}, { limit: 1000 })).items;
        expect(snapshot).to.have.length(records.length);

        const random = seededRandom(seed);
        const generate = fuzzRequests(random, records);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
        const failures: string[] = [];
        let sent = 0;

        const describeRequest = (request: FuzzRequest) =>
          `${request.method} ${request.target} ${JSON.stringify(request.headers)} ` +
          `(${request.body?.length ?? 0} bytes${request.chunked ? ', chunked' : ''})`;
        const worker = async () => {
          while (sent < count) {
            sent += 1;
            const request = generate();
            try {
              const answer = await send(mounted.origin, request.target, request, agent);
              if (answer.status >= 500) {
                failures.push(`${describeRequest(request)} -> ${answer.status} ${answer.body}`);
              }
            } catch (error) {
              // A server may close the connection on a body it refuses to read; nothing else.
              if (!request.oversized) failures.push(`${describeRequest(request)} -> ${error}`);
            }
          }
        };
        try {
          await Promise.all(Array.from({ length: 8 }, worker));
        } finally {
          agent.destroy();
        }

        expect(failures, `seed ${seed}: ${failures.slice(0, 5).join('\n')}`).to.deep.equal([]);
        await queue.idle();
        expect(received, `seed ${seed}: content reached a handler`).to.have.length(0);
        expect((await subscriber.list({}, { limit: 1000 })).items, `seed ${seed}`).to.deep.equal(
          snapshot,
        );

        // Still serving: a well-formed verification of a pending request goes through after it.
        const target = verified[0]!;
        await subscriber.store.transition(target.id, { set: { subscribeStatus: 'verifying' } });
        const answer = await get(
          `${callbackTarget(target)}?${query([
            ['hub.mode', 'subscribe'],
            ['hub.topic', target.topic],
            ['hub.challenge', 'still here'],
            ['hub.lease_seconds', '60'],
          ])}`,
        );
        expect(answer.body.toString()).to.equal('still here');
      });
    });
  });
}

interface FuzzRequest extends RawRequest {
  method: string;
  target: string;
  /** Over the body limit: the server may close the connection before reading it. */
  oversized: boolean;
}

const METHODS = [
  'GET',
  'GET',
  'GET',
  'GET',
  'GET',
  'POST',
  'POST',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'HEAD',
  'OPTIONS',
];
const MODES = ['subscribe', 'unsubscribe', 'denied'];
// Never decode to a valid mode, so a request naming the real topic cannot change a record.
const BAD_MODES = [
  '',
  'SUBSCRIBE',
  'subscribe ',
  ' unsubscribe',
  'deny',
  'publish',
  'sub%73cribe%00',
];
const PARAMS = [
  'hub.mode',
  'hub.topic',
  'hub.challenge',
  'hub.lease_seconds',
  'hub.reason',
  'hub.callback',
];
const HEADER_NAMES = [
  'content-type',
  'x-hub-signature',
  'x-hub-signature-256',
  'content-encoding',
  'link',
  'accept',
  'user-agent',
  'if-none-match',
  'cookie',
  'authorization',
  'range',
  'x-forwarded-for',
  'x-pubsubhubbub-topic',
];
const CONTENT_TYPES = [
  'application/atom+xml',
  'application/json',
  'application/feed+json',
  'text/plain; charset=utf-8',
  'text/plain; charset=nonsense',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  ';;;',
];

/** A generator of random, mostly malformed requests to the callback routes. */
function fuzzRequests(random: () => number, records: Subscription[]): () => FuzzRequest {
  const int = (below: number) => Math.floor(random() * below);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const chance = (p: number) => random() < p;
  const text = (length: number, from = 0x21, to = 0x7e) =>
    String.fromCharCode(...Array.from({ length }, () => from + int(to - from + 1)));
  const bytes = (length: number) => Buffer.from(Array.from({ length }, () => int(256)));
  const percent = (value: Buffer) =>
    [...value].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
  const topics = records.map((entry) => entry.topic);
  const uuid = () => {
    const hex = bytes(16).toString('hex');
    const parts = [
      hex.slice(0, 8),
      hex.slice(8, 12),
      `4${hex.slice(13, 16)}`,
      `a${hex.slice(17, 20)}`,
    ];
    return [...parts, hex.slice(20)].join('-');
  };

  /** Encode a value one of several ways a hub (or an attacker) might. */
  const encode = (value: string) => {
    switch (int(4)) {
      case 0:
        return encodeURIComponent(value);
      case 1:
        return percent(Buffer.from(value, 'utf8'));
      case 2:
        return encodeURIComponent(value).replace(/%20/g, '+');
      default:
        return [...value]
          .map((char) => (chance(0.5) ? encodeURIComponent(char) : char))
          .join('')
          .replace(/[ #&]/g, '_');
    }
  };

  /** Never one of the real topics once decoded. */
  const otherTopic = () => {
    const base = pick(topics);
    const changed = pick([
      `${base}/`,
      base.toUpperCase(),
      base.slice(0, -1),
      `${base}?x=${int(100)}`,
      base.replace('http://', 'https://'),
      `http://example.com/${text(8, 0x61, 0x7a)}`,
      text(int(30)),
    ]);
    return topics.includes(changed) ? `${changed}#` : changed;
  };

  /** Mostly well-formed callback paths (real, upper-cased or unknown ids), some malformed. */
  const path = () => {
    const entry = pick(records);
    const own = new URL(entry.callbackUrl).pathname.replace(/\/[^/]*$/, '');
    if (chance(0.7)) {
      const id = pick([entry.id, entry.id, entry.id.toUpperCase(), uuid()]);
      return { entry, target: `${own}/${id}${chance(0.1) ? '/' : ''}` };
    }

    const prefix = pick([
      own,
      ...Object.values(HANDLERS),
      '/websub',
      '/websub/news/x',
      '/hooks',
      '',
    ]);
    const id = pick([
      entry.id,
      entry.id.slice(1),
      `${entry.id}x`,
      text(int(40)),
      percent(Buffer.from(entry.id)),
      '',
    ]);
    const suffix = pick(['', '/', '//', '/..', '/x', '%2F', ';a=b', '%']);
    return { entry, target: `${prefix}/${id}${suffix}` };
  };

  const queryString = (topic: string) => {
    const pairs: string[] = [];
    const realTopic = chance(0.2);
    const mode = realTopic ? pick(BAD_MODES) : pick([...MODES, ...BAD_MODES]);

    if (chance(0.9)) pairs.push(`hub.mode=${encode(mode)}`);
    if (chance(0.9)) pairs.push(`hub.topic=${encode(realTopic ? topic : otherTopic())}`);
    for (let extra = int(5); extra > 0; extra -= 1) {
      const name = chance(0.7) ? pick(PARAMS) : text(1 + int(10));
      const value = pick([
        () => encode(text(int(60), 0x20, 0x7e)),
        () => percent(bytes(int(40))),
        () => String(pick([-1, 0, 1, 3600, 2 ** 53, 1e21])),
        () => pick(['%', '%G1', '%4', '%%', '%zz', '=', '&&', '+']),
        () => 'A'.repeat(int(4000)),
      ])();
      pairs.push(chance(0.1) ? name : `${encode(name)}=${value}`);
    }
    // A repeated hub.mode with the real topic is refused before the topic is read.
    if (chance(0.05))
      pairs.push(`hub.mode=${encode(pick(MODES))}`, `hub.mode=${encode(pick(MODES))}`);

    for (let index = pairs.length - 1; index > 0; index -= 1) {
      const other = int(index + 1);
      [pairs[index], pairs[other]] = [pairs[other] as string, pairs[index] as string];
    }
    return pairs.join(chance(0.9) ? '&' : pick(['&&', ';', '&=&']));
  };

  const headers = () => {
    const fields: Record<string, string | string[]> = {};
    for (let count = int(6); count > 0; count -= 1) {
      const field = chance(0.7) ? pick(HEADER_NAMES) : `x-${text(1 + int(12), 0x61, 0x7a)}`;
      let value: string;
      if (field === 'content-type') value = pick(CONTENT_TYPES);
      else if (field === 'x-hub-signature') {
        value = pick([
          () => `sha256=${bytes(32).toString('hex')}`,
          () => `sha1=${bytes(20).toString('hex')}`,
          () => `sha512=${bytes(10).toString('hex')}`,
          () => `md5=${bytes(16).toString('hex')}`,
          () => `=${text(10)}`,
          () => text(int(80), 0x20, 0x7e).trim(),
        ])();
      } else value = text(int(100), 0x20, 0x7e).trim();
      fields[field] = chance(0.1) ? [value, value] : value;
    }
    return fields;
  };

  return () => {
    const method = pick(METHODS);
    const { entry, target } = path();
    const withQuery = chance(method === 'GET' ? 0.9 : 0.3);
    const oversized = method === 'POST' && chance(0.01);

    let body: Buffer | undefined;
    if (method !== 'GET' && method !== 'HEAD' && chance(0.9)) {
      body = oversized ? Buffer.alloc(LIMIT + 1 + int(LIMIT), 0x62) : bytes(int(2000));
    }
    return {
      method,
      target: withQuery ? `${target}?${queryString(entry.topic)}` : target,
      headers: headers(),
      ...(body ? { body, chunked: chance(0.3) } : {}),
      oversized,
    };
  };
}

import { setMaxListeners } from 'node:events';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { sendToCallback, withParams, type RawAnswer } from './callback-client.js';
import { TestHubError } from './errors.js';
import { signatureFor } from './signature.js';
import { parseSubscriptionRequest, type Intent, type LeasePolicy } from './subscription-request.js';
import { atomFeed } from './topic-feed.js';
import type {
  CallbackAnswer,
  DeliveryResult,
  Denial,
  FeedDocument,
  HeaderFields,
  HubFailure,
  HubSubscription,
  PublishContent,
  SignatureAlgorithm,
  SubscriptionRequest,
  SubscriptionState,
  TestHub,
  TestHubEvents,
  TestHubLogger,
  TestHubOptions,
  TopicDocument,
  Verification,
} from './types.js';

const USER_AGENT = 'websubsub-testing-hub';

// A subscription request is a handful of short form fields.
const MAX_REQUEST_BYTES = 64 * 1024;

// The hub computes these itself; taking them from the caller would corrupt the message.
const FRAMING_FIELDS = new Set(['content-length', 'transfer-encoding', 'host', 'connection']);

const ignore = (): void => {};
const silentLogger: TestHubLogger = { debug: ignore, info: ignore, warn: ignore, error: ignore };

type Route =
  | { kind: 'document'; status: number; headers: Array<[string, string]>; body: Buffer }
  | { kind: 'redirect'; status: number; location: string };

/** A subscription as stored; 'expired' is derived from the lease when read. */
interface StoredSubscription {
  topic: string;
  callback: string;
  state: Exclude<SubscriptionState, 'expired'>;
  secret?: string;
  leaseSeconds: number;
  verifiedAt: Date | null;
  expiresAt: Date | null;
}

interface Settings extends LeasePolicy {
  hubPath: string;
  verification: 'sync' | 'async';
  acceptStatus: number;
  signatureAlgorithm: SignatureAlgorithm;
  requestTimeoutMs: number;
  logger: TestHubLogger;
}

function headerList(fields: HeaderFields | undefined): Array<[string, string]> {
  if (!fields) return [];

  const pairs = Array.isArray(fields) ? fields : Object.entries(fields);
  return pairs.map(([name, value]) => [name, value]);
}

function toBuffer(body: string | Buffer | undefined): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function keyOf(topic: string, callback: string): string {
  return `${topic}\n${callback}`;
}

/**
 * A challenge like the base64 ones real hubs send, but always carrying `/`, `+` and `=`, so a
 * subscriber that decodes or re-encodes the query string wrongly fails every time, not by chance.
 */
function newChallenge(): string {
  for (;;) {
    const challenge = randomBytes(32).toString('base64');
    if (challenge.includes('/') && challenge.includes('+')) return challenge;
  }
}

function answerText(
  res: http.ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  const body = Buffer.from(text, 'utf8');

  res.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(body.length),
  });
  res.end(body);
}

/** Read a request body, or null when it is longer than the limit. */
async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;

  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }

  return Buffer.concat(chunks);
}

function resolveSettings(options: TestHubOptions): Settings {
  const settings: Settings = {
    hubPath: options.hubPath ?? '/hub',
    verification: options.verification ?? 'async',
    acceptStatus: options.acceptStatus ?? 202,
    leaseSeconds: options.leaseSeconds ?? 86_400,
    minLeaseSeconds: options.minLeaseSeconds ?? 1,
    maxLeaseSeconds: options.maxLeaseSeconds ?? 315_360_000,
    signatureAlgorithm: options.signatureAlgorithm ?? 'sha256',
    requestTimeoutMs: options.requestTimeoutMs ?? 5000,
    logger: options.logger ?? silentLogger,
  };

  if (!settings.hubPath.startsWith('/')) {
    throw new TestHubError('invalid_argument', `hubPath must start with "/": ${settings.hubPath}`);
  }
  for (const name of ['leaseSeconds', 'minLeaseSeconds', 'maxLeaseSeconds'] as const) {
    if (!Number.isInteger(settings[name]) || settings[name] < 0) {
      throw new TestHubError('invalid_argument', `${name} must be a whole number of seconds`);
    }
  }
  if (settings.minLeaseSeconds > settings.maxLeaseSeconds) {
    throw new TestHubError('invalid_argument', 'minLeaseSeconds is greater than maxLeaseSeconds');
  }

  return settings;
}

class HttpTestHub extends EventEmitter<TestHubEvents> implements TestHub {
  readonly requests: SubscriptionRequest[] = [];
  readonly verifications: Verification[] = [];

  private readonly settings: Settings;
  private readonly log: TestHubLogger;
  private readonly server: http.Server;
  // No keep-alive: a pooled socket to a subscriber would outlive close() and hold its server.
  private readonly agents = {
    http: new http.Agent({ keepAlive: false }),
    https: new https.Agent({ keepAlive: false }),
  };
  private readonly aborter = withoutListenerLimit(new AbortController());
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly routes = new Map<string, Route>();
  private readonly store = new Map<string, StoredSubscription>();
  private failures: HubFailure[] = [];
  private denials: Array<string | undefined> = [];
  private listeningOrigin = '';
  private closed = false;

  constructor(settings: Settings) {
    super();
    this.settings = settings;
    this.log = settings.logger;
    this.server = http.createServer((req, res) => this.onRequest(req, res));
  }

  get origin(): string {
    return this.listeningOrigin;
  }

  get url(): string {
    return `${this.listeningOrigin}${this.settings.hubPath}`;
  }

  async listen(port: number, host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });

    const address = this.server.address() as AddressInfo;
    const hostname = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.listeningOrigin = `http://${hostname}:${address.port}`;
  }

  topicUrl(path: string): string {
    if (!path.startsWith('/')) {
      throw new TestHubError('invalid_argument', `A path must start with "/": ${path}`);
    }

    // Concatenated, not resolved: a path like '//x' must stay a path, not become a host.
    return new URL(`${this.listeningOrigin}${path}`).href;
  }

  serveTopic(path: string, document: TopicDocument): string {
    const topic = this.topicUrl(path);

    this.routes.set(this.routeKey(topic), {
      kind: 'document',
      status: document.status ?? 200,
      headers: headerList(document.headers),
      body: toBuffer(document.body),
    });
    return topic;
  }

  serveFeed(path: string, feed: FeedDocument = {}): string {
    const topic = this.topicUrl(path);
    const headers: Array<[string, string]> = [
      ['Content-Type', feed.contentType ?? 'application/atom+xml; charset=utf-8'],
    ];

    if (feed.linkHeaders ?? true) {
      headers.push(['Link', `<${this.url}>; rel="hub"`], ['Link', `<${topic}>; rel="self"`]);
    }

    return this.serveTopic(path, {
      headers,
      body: feed.body ?? atomFeed(topic, this.url, new Date()),
    });
  }

  redirect(path: string, location: string, status: 301 | 302 | 303 | 307 | 308 = 302): void {
    this.routes.set(this.routeKey(this.topicUrl(path)), { kind: 'redirect', status, location });
  }

  async publish(topic: string, content: PublishContent = {}): Promise<DeliveryResult[]> {
    this.assertOpen();

    const body = toBuffer(content.body);
    const targets = this.subscriptions().filter(
      (subscription) => subscription.topic === topic && subscription.state === 'active',
    );

    return Promise.all(
      targets.map((subscription) => this.track(this.deliver(subscription, body, content))),
    );
  }

  async deny(topic: string, callback: string, reason?: string): Promise<Denial> {
    this.assertOpen();

    const { denial, error } = await this.track(this.sendDenial(topic, callback, reason));
    if (error !== undefined) {
      throw new TestHubError('request_failed', `Denial to ${callback} got no answer`, {
        cause: error,
      });
    }
    return denial;
  }

  denyNext(n: number, reason?: string): void {
    this.assertCount(n);
    for (let i = 0; i < n; i += 1) this.denials.push(reason);
  }

  async verify(callback: string, params: Record<string, string>): Promise<CallbackAnswer> {
    this.assertOpen();

    try {
      const answer = await this.track(this.send('GET', withParams(callback, params), []));
      return { status: answer.status, body: answer.body.toString('utf8'), headers: answer.headers };
    } catch (error) {
      throw new TestHubError('request_failed', `GET ${callback} got no answer`, { cause: error });
    }
  }

  failNext(n: number, failure: HubFailure): void {
    this.assertCount(n);
    for (let i = 0; i < n; i += 1) this.failures.push(failure);
  }

  subscriptions(): HubSubscription[] {
    const now = Date.now();

    return [...this.store.values()].map((stored) => {
      const lapsed = stored.state === 'active' && (stored.expiresAt?.getTime() ?? 0) <= now;
      return { ...stored, state: lapsed ? 'expired' : stored.state };
    });
  }

  async waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;

    while (!(await predicate())) {
      if (Date.now() >= deadline) {
        throw new TestHubError(
          'timeout',
          `waitFor: this did not hold within ${timeoutMs} ms: ${predicate.toString()}`,
        );
      }
      await sleep(10);
    }
  }

  reset(): void {
    this.requests.length = 0;
    this.verifications.length = 0;
    this.routes.clear();
    this.store.clear();
    this.failures = [];
    this.denials = [];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;

    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.aborter.abort();
    this.server.closeAllConnections();

    await Promise.allSettled([...this.inFlight]);
    this.agents.http.destroy();
    this.agents.https.destroy();
    await stopped;
  }

  private routeKey(url: string): string {
    const { pathname, search } = new URL(url);
    return `${pathname}${search}`;
  }

  private assertOpen(): void {
    if (this.closed) throw new TestHubError('closed', 'The test hub is closed');
  }

  private assertCount(n: number): void {
    if (!Number.isInteger(n) || n < 0) {
      throw new TestHubError('invalid_argument', `Expected a whole number >= 0, got ${n}`);
    }
  }

  /** Keep a promise until it settles, so close() can wait for it. */
  private track<T>(promise: Promise<T>): Promise<T> {
    const forget = (): void => {
      this.inFlight.delete(promise);
    };

    this.inFlight.add(promise);
    promise.then(forget, forget);
    return promise;
  }

  /** Run work nobody awaits; a failure there is a bug in the hub or a listener, so log it. */
  private background(promise: Promise<unknown>): void {
    this.track(promise).catch((error: unknown) => {
      this.log.error({ err: error }, 'test hub background work failed');
    });
  }

  private send(
    method: 'GET' | 'POST',
    url: URL,
    headers: Array<[string, string]>,
    body?: Buffer,
  ): Promise<RawAnswer> {
    return sendToCallback({
      method,
      url,
      headers,
      body,
      timeoutMs: this.settings.requestTimeoutMs,
      signal: this.aborter.signal,
      agents: this.agents,
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.route(req, res).catch((error: unknown) => {
      this.log.error({ err: error, url: req.url }, 'test hub failed to answer');

      if (res.headersSent) res.destroy();
      else answerText(res, 500, 'The test hub failed to answer');
    });
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const target = new URL(`${this.listeningOrigin}${req.url ?? '/'}`);
    if (target.pathname === new URL(this.url).pathname) return this.receive(req, res);

    req.resume();
    const route =
      this.routes.get(`${target.pathname}${target.search}`) ?? this.routes.get(target.pathname);
    this.log.debug({ method: req.method, url: req.url, found: Boolean(route) }, 'topic request');

    if (!route) return answerText(res, 404, `Nothing is served at ${target.pathname}`);

    if (route.kind === 'redirect') {
      return answerText(res, route.status, `Moved to ${route.location}`, {
        Location: route.location,
      });
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return answerText(res, 405, 'A topic answers GET and HEAD only', { Allow: 'GET, HEAD' });
    }

    for (const [name, value] of route.headers) {
      if (!FRAMING_FIELDS.has(name.toLowerCase())) res.appendHeader(name, value);
    }
    res.setHeader('Content-Length', String(route.body.length));
    res.writeHead(route.status);
    res.end(req.method === 'HEAD' ? undefined : route.body);
  }

  /** The hub endpoint: a subscription request (WebSub §5.1). */
  private async receive(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      req.resume();
      return answerText(res, 405, 'The hub accepts POST only', { Allow: 'POST' });
    }

    const raw = await readBody(req, MAX_REQUEST_BYTES);
    if (raw === null) return answerText(res, 413, 'A subscription request is a few form fields');

    const body = raw.toString('utf8');
    const form = new URLSearchParams(body);
    const record = this.record(req, body, form);

    const failure = this.failures.shift();
    if (failure !== undefined) return this.fail(req, res, record, failure);

    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (mediaType !== 'application/x-www-form-urlencoded') {
      const reason = 'Content-Type must be application/x-www-form-urlencoded';
      return this.answer(res, record, 415, reason);
    }

    const parsed = parseSubscriptionRequest(form, this.settings);
    if ('problem' in parsed) return this.answer(res, record, 400, parsed.problem);

    const { intent } = parsed;
    if (intent.mode === 'subscribe') this.markRequested(intent);

    if (intent.mode === 'subscribe' && this.denials.length > 0) {
      const reason = this.denials.shift();
      this.answer(res, record, this.settings.acceptStatus);
      this.background(this.sendDenial(intent.topic, intent.callback, reason));
      return;
    }

    if (this.settings.verification === 'async') {
      this.answer(res, record, this.settings.acceptStatus);
      this.background(this.verifyIntent(intent));
      return;
    }

    const verification = await this.track(this.verifyIntent(intent));
    if (verification.confirmed) return this.answer(res, record, this.settings.acceptStatus);
    this.answer(res, record, 409, `Verification of intent failed: ${verification.reason}`);
  }

  private record(
    req: http.IncomingMessage,
    body: string,
    form: URLSearchParams,
  ): SubscriptionRequest {
    const params: Record<string, string> = {};
    for (const [name, value] of form) params[name] ??= value;

    const lease = params['hub.lease_seconds'];
    const record: SubscriptionRequest = {
      mode: params['hub.mode'],
      topic: params['hub.topic'],
      callback: params['hub.callback'],
      leaseSeconds: lease !== undefined && /^\d+$/.test(lease) ? Number(lease) : undefined,
      secret: params['hub.secret'],
      params,
      body,
      url: req.url ?? '/',
      headers: req.headers,
      receivedAt: new Date(),
      status: null,
    };

    this.requests.push(record);
    this.log.debug({ params }, 'subscription request');
    this.emit('subscription-request', record);
    return record;
  }

  private answer(
    res: http.ServerResponse,
    record: SubscriptionRequest,
    status: number,
    reason?: string,
  ): void {
    record.status = status;
    record.reason = reason;
    this.log.debug({ status, reason, callback: record.callback }, 'subscription request answered');

    if (reason !== undefined) return answerText(res, status, reason);
    res.writeHead(status, { 'Content-Length': '0' });
    res.end();
  }

  private fail(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: SubscriptionRequest,
    failure: HubFailure,
  ): void {
    if (failure === 'drop') {
      this.log.debug({ callback: record.callback }, 'subscription request dropped');
      req.socket.destroy();
      return;
    }

    const status = failure.status ?? 503;
    const reason = failure.body ?? http.STATUS_CODES[status] ?? `Failed with ${status}`;
    record.status = status;
    record.reason = reason;

    const headers: Record<string, string> = {};
    if (failure.retryAfter !== undefined) headers['Retry-After'] = String(failure.retryAfter);
    answerText(res, status, reason, headers);
  }

  /** Note a new subscription as verifying; a live one stays as it is until verified again. */
  private markRequested(intent: Intent): void {
    const key = keyOf(intent.topic, intent.callback);
    const existing = this.subscriptions().find(
      (subscription) => keyOf(subscription.topic, subscription.callback) === key,
    );

    if (existing?.state === 'active' || existing?.state === 'verifying') return;

    this.store.set(key, {
      topic: intent.topic,
      callback: intent.callback,
      state: 'verifying',
      secret: intent.secret,
      leaseSeconds: intent.leaseSeconds ?? this.settings.leaseSeconds,
      verifiedAt: null,
      expiresAt: null,
    });
  }

  /** Verification of intent (WebSub §5.3): GET the callback, expect the challenge back. */
  private async verifyIntent(intent: Intent): Promise<Verification> {
    const challenge = newChallenge();
    const params: Record<string, string> = {
      'hub.mode': intent.mode,
      'hub.topic': intent.topic,
      'hub.challenge': challenge,
    };
    if (intent.leaseSeconds !== undefined) {
      params['hub.lease_seconds'] = String(intent.leaseSeconds);
    }

    const url = withParams(intent.callback, params);
    let status: number | null = null;
    let body = '';
    let reason: string | undefined;

    try {
      const answer = await this.send('GET', url, [['User-Agent', USER_AGENT]]);
      status = answer.status;
      body = answer.body.toString('utf8');

      if (status < 200 || status > 299) reason = `the callback answered ${status}`;
      else if (!answer.body.equals(Buffer.from(challenge, 'utf8'))) {
        reason = 'the callback answered 2xx without echoing the challenge exactly';
      }
    } catch (error) {
      reason = `the callback did not answer: ${errorMessage(error)}`;
    }

    const verification: Verification = {
      mode: intent.mode,
      topic: intent.topic,
      callback: intent.callback,
      challenge,
      leaseSeconds: intent.leaseSeconds,
      url: url.href,
      status,
      body,
      confirmed: reason === undefined,
      reason,
      at: new Date(),
    };
    if (this.closed) return verification;

    this.verifications.push(verification);
    this.applyVerification(intent, verification);
    this.log.debug({ ...verification }, 'verification of intent');

    this.emit(verification.confirmed ? 'verified' : 'verification-failed', verification);
    return verification;
  }

  private applyVerification(intent: Intent, verification: Verification): void {
    const key = keyOf(intent.topic, intent.callback);
    const existing = this.store.get(key);

    if (intent.mode === 'unsubscribe') {
      if (verification.confirmed && existing) existing.state = 'unsubscribed';
      return;
    }

    if (!verification.confirmed) {
      // A failed renewal leaves the live subscription as it was (WebSub §5.3).
      if (existing?.state === 'verifying') existing.state = 'refused';
      return;
    }

    const leaseSeconds = intent.leaseSeconds ?? this.settings.leaseSeconds;
    this.store.set(key, {
      topic: intent.topic,
      callback: intent.callback,
      state: 'active',
      secret: intent.secret,
      leaseSeconds,
      verifiedAt: verification.at,
      expiresAt: new Date(verification.at.getTime() + leaseSeconds * 1000),
    });
  }

  /** Subscription denial (WebSub §5.2): mark it denied, then tell the callback. */
  private async sendDenial(
    topic: string,
    callback: string,
    reason: string | undefined,
  ): Promise<{ denial: Denial; error?: unknown }> {
    const existing = this.store.get(keyOf(topic, callback));
    if (existing) existing.state = 'denied';

    const params: Record<string, string> = { 'hub.mode': 'denied', 'hub.topic': topic };
    if (reason !== undefined) params['hub.reason'] = reason;

    const denial: Denial = { topic, callback, reason, status: null, body: '' };
    let error: unknown;
    try {
      const answer = await this.send('GET', withParams(callback, params), [
        ['User-Agent', USER_AGENT],
      ]);
      denial.status = answer.status;
      denial.body = answer.body.toString('utf8');
    } catch (caught) {
      error = caught;
    }

    this.log.debug({ ...denial, error: error && errorMessage(error) }, 'denial sent');
    if (!this.closed) this.emit('denied', denial);
    return { denial, error };
  }

  /** Content distribution (WebSub §7) to one subscription. */
  private async deliver(
    subscription: HubSubscription,
    body: Buffer,
    content: PublishContent,
  ): Promise<DeliveryResult> {
    const algorithm = content.algorithm ?? this.settings.signatureAlgorithm;
    const signature = signatureFor(
      content.signature ?? 'valid',
      algorithm,
      subscription.secret,
      body,
    );

    const own: Array<[string, string]> = [
      ['Content-Type', content.contentType ?? 'application/octet-stream'],
      ['Link', `<${this.url}>; rel="hub", <${subscription.topic}>; rel="self"`],
      ['User-Agent', USER_AGENT],
    ];
    if (signature !== undefined) own.push(['X-Hub-Signature', signature]);

    const given = headerList(content.headers).filter(
      ([name]) => !FRAMING_FIELDS.has(name.toLowerCase()),
    );
    const replaced = new Set(given.map(([name]) => name.toLowerCase()));
    const headers = [...own.filter(([name]) => !replaced.has(name.toLowerCase())), ...given];

    const sent = headers.filter(([name]) => name.toLowerCase() === 'x-hub-signature').at(-1);
    const result: DeliveryResult = {
      topic: subscription.topic,
      callback: subscription.callback,
      status: null,
      body: '',
      headers: {},
      signature: sent?.[1],
    };

    try {
      const answer = await this.send('POST', new URL(subscription.callback), headers, body);
      result.status = answer.status;
      result.body = answer.body.toString('utf8');
      result.headers = answer.headers;
    } catch (error) {
      result.error = errorMessage(error);
    }

    this.log.debug({ ...result }, 'content distributed');
    if (!this.closed) this.emit('delivered', result);
    return result;
  }
}

/**
 * Start a WebSub hub and publisher on a real port: it accepts subscription requests, verifies
 * intent against the callback, and distributes content signed with each subscription's secret.
 */
export async function startTestHub(options: TestHubOptions = {}): Promise<TestHub> {
  const hub = new HttpTestHub(resolveSettings(options));

  await hub.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  return hub;
}

/** Every request in flight listens to the hub's one abort signal: no limit on listeners. */
function withoutListenerLimit(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}

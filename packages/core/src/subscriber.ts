import { randomUUID } from 'node:crypto';

import {
  JOBS,
  HandlerRuns,
  RecentDeliveries,
  type HandlerDefinition,
  type NotificationHandler,
  type SubscriberContext,
  type SubscriberSettings,
} from './context.js';
import { discover, type DiscoveryResult } from './discovery.js';
import { runDelivery, type DeliveryJob } from './distribution.js';
import {
  AdapterError,
  DiscoveryError,
  DuplicateSubscriptionError,
  InvalidInputError,
  SubscriptionNotFoundError,
  WebSubError,
} from './errors.js';
import {
  SubscriberEventEmitter,
  type SubscriberEvents,
  type SubscriberListener,
} from './events.js';
import {
  DEFAULT_MAX_BUFFERED_BYTES,
  handleCallback,
  matchCallback,
  refuseOversized,
  type CallbackEndpoint,
  type CallbackRequest,
  type CallbackResponse,
} from './http-handler.js';
import { assertAddressAllowed, HttpRequestError, type HttpOptions } from './http-client.js';
import {
  callbackUrlFor,
  hasGivenUp,
  isStaleRetry,
  retireCallback,
  sendRequest,
  type RequestJob,
  type RetireJob,
} from './lifecycle.js';
import type { LockProvider } from './lock.js';
import { silentLogger, type Logger } from './logger.js';
import { createMemoryLock } from './memory-lock.js';
import { createMemoryQueue, MAX_TIMER_MS } from './memory-queue.js';
import { createMemoryStore } from './memory-store.js';
import type { JobQueue } from './queue.js';
import type { Page, PageOptions, SubscriptionFilter, SubscriptionStore } from './store.js';
import { isEnded, type Subscription, type SubscriptionCounter } from './subscription.js';
import {
  checkHealth,
  handleUrlChanges,
  purgeAll,
  purgeUnresolvable,
  resetCounters,
  type HealthReport,
  type StaticOptions,
  type StaticReport,
  type StaticSubscription,
} from './maintenance.js';
import {
  refreshSubscriptions,
  renewLease,
  retryFailed,
  retryRecord,
  type RenewJob,
  type SweepReport,
} from './upkeep.js';

export type { HandlerDefinition, Notification, NotificationHandler } from './context.js';

const SECOND = 1000;
const DAY = 86_400 * SECOND;
const HOUR = 3600 * SECOND;

/** Options of `createSubscriber`. Durations are in milliseconds unless named in seconds. */
export interface SubscriberOptions {
  /** Public base URL of this service, used to build callback URLs (the original's `SITE_URL`). */
  baseUrl: string;
  /** Named handlers of content: a function, or a function with its own callback path. */
  handlers: Record<string, NotificationHandler | HandlerDefinition>;
  /** Handler used when a subscription names none. @default the first handler */
  defaultHandler?: string;
  /** Path under which callbacks live: `${callbackPath}/${handler}/${id}`. @default '/websub' */
  callbackPath?: string;
  /** Where subscriptions are kept. @default an in-process `MemoryStore` */
  store?: SubscriptionStore;
  /** Where work is queued. @default an in-process `MemoryQueue` */
  queue?: JobQueue;
  /** Mutual exclusion per subscription. @default an in-process `MemoryLock` */
  lock?: LockProvider;
  /** Structured logger (pino-compatible). @default silent */
  logger?: Logger;
  /** Hub used when none is given and discovery finds none. @default none */
  defaultHub?: string;
  /**
   * `hub.lease_seconds` asked for when a subscription names none; `null` lets the hub choose.
   * @default null
   */
  leaseSeconds?: number | null;
  /** Timeout of a subscription request to a hub (hubs may verify inside it). @default 30000 */
  hubTimeoutMs?: number;
  /**
   * Outbound HTTP settings for discovery and hub requests (timeouts, redirects, address policy).
   */
  http?: HttpOptions;
  /** Largest content body accepted at a callback, in bytes. @default 4194304 (4 MiB) */
  maxBodyBytes?: number;
  /**
   * Most bytes of callback bodies being read at once in the process; past it, content is
   * answered 503 (the hub sends it again), so that clients sending large bodies slowly cannot
   * exhaust memory. At least `maxBodyBytes`. @default 67108864 (64 MiB)
   */
  maxBufferedBodyBytes?: number;
  /** Longest `hub.challenge` echoed, in bytes. @default 2048 */
  maxChallengeBytes?: number;
  /** How long the hub has to verify an accepted request before it is retried. @default 60000 */
  verifyWaitMs?: number;
  /** Lease assumed when a hub grants `hub.lease_seconds=0`, in seconds. @default 86400 */
  assumedLeaseSeconds?: number;
  /** Longest lease believed when scheduling renewal, in seconds. @default 31536000 (365 days) */
  maxLeaseSeconds?: number;
  /** Time to live of a subscription's lock. @default hubTimeoutMs + 30000 */
  lockTtlMs?: number;
  /** Rebuild callback URLs when the base URL or a handler path changed. @default true */
  autofixCallbackUrls?: boolean;
  /**
   * Run the recurring refresh and retry sweeps on `start()`, and queue the renewal of leases
   * too short for the refresh sweep to catch in time (see `refreshIntervalMs`). @default true
   */
  upkeep?: boolean;
  /**
   * Interval of the refresh sweep. A lease shorter than twice this (or a renewal window
   * shorter than it) also gets a renewal queued for its middle when verified. @default 3600000
   */
  refreshIntervalMs?: number;
  /** Renew leases ending within this window. @default 86400000 (1 day) */
  renewBeforeMs?: number;
  /**
   * Interval of the retry sweep; also the base of the retry backoff. @default 600000 (10 minutes)
   */
  retryIntervalMs?: number;
  /** Longest wait between two retries. @default 86400000 (1 day) */
  retryBackoffMaxMs?: number;
  /** Failures of each kind after which a subscription is given up. @default 10 each */
  maxRetries?: Partial<Record<SubscriptionCounter, number>>;
  /** Records per page in the sweeps. @default 500 */
  sweepPageSize?: number;
  /**
   * Records of a page a sweep works on at once (each takes its lock, its store update and its
   * enqueue: round trips that overlap rather than add up). @default 8
   */
  sweepConcurrency?: number;
  /** Attempts of a delivery whose handler throws, before it is reported failed. @default 5 */
  deliveryAttempts?: number;
  /** Delay before a failed delivery's first retry, doubling after each. @default 2000 */
  deliveryBackoffMs?: number;
  /**
   * Longest run of a content handler: past it the delivery counts as failed and is retried
   * (the handler's own work cannot be stopped and may still finish). 0 means no limit.
   * @default 600000 (10 minutes)
   */
  handlerTimeoutMs?: number;
  /**
   * Drop content whose exact bytes this process already accepted for the same subscription
   * within this window (hubs redeliver). 0 turns it off. @default 0
   */
  dedupeWindowMs?: number;
  /** The clock. @default () => new Date() */
  now?: () => Date;
}

/** What to subscribe to. */
export interface SubscribeInput {
  /** Topic URL; discovered from when `hub` is not given. */
  topic: string;
  /** Hub URL; given, discovery is skipped. */
  hub?: string;
  /** Handler of the content. @default the subscriber's default handler */
  handler?: string;
  /** `hub.lease_seconds` to ask for. @default the subscriber's `leaseSeconds` */
  leaseSeconds?: number | null;
  /** `hub.secret` (under 200 bytes) the hub signs content with. @default none */
  secret?: string | null;
  /** Declared in configuration. @default false */
  static?: boolean;
}

/** Where a subscription's hubs came from. */
interface ResolvedHubs {
  hubs: string[];
  topic: string;
  discoveredFrom: string | null;
  hubDiscovered: boolean;
}

/** What a URL path may hold as it is (RFC 3986 `pchar` and `/`), with `%XX` escapes. */
const URL_PATH = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;

/**
 * A callback path as callback URLs use it: one leading slash, none trailing, and the root as
 * `''` (its callback URLs are `<baseUrl>/<id>`, not `<baseUrl>//<id>`). A path a hub could not
 * send back as it is (a `?`, `#`, space or other character to escape) is refused.
 */
function normalisePath(path: unknown, name: string): string {
  // `.` and `..` segments (also escaped) are resolved away by every URL parser, the hub's too.
  const dotted = (segment: string) => /^(?:\.|%2e){1,2}$/i.test(segment);
  if (typeof path !== 'string' || !URL_PATH.test(path) || path.split('/').some(dotted)) {
    throw new InvalidInputError(
      `${name} must be a URL path (letters, digits, - . _ ~ ! $ & ' ( ) * + , ; = : @ / and ` +
        `%XX escapes, no . or .. segment): ${String(path).slice(0, 200)}`,
    );
  }
  return `/${path}`.replace(/\/+/g, '/').replace(/\/$/, '');
}

/** Control characters: no URL or secret needs them, and some stores cannot keep them. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Subscription ids are random UUIDs; anything else names no subscription. */
const SUBSCRIPTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The longest `hub.lease_seconds` asked for (the largest 32-bit integer, about 68 years). */
const MAX_LEASE_SECONDS = 2_147_483_647;

/**
 * The longest topic and hub URLs kept, in UTF-8 bytes: together they fit the unique key of a
 * store's index (PostgreSQL refuses index entries over 2,704 bytes), and no real feed needs more.
 */
const MAX_URL_BYTES = { topic: 2048, hub: 512 } as const;

/** Refuse a topic or hub URL too long to be stored; `what` says where it came from. */
function checkLength(value: string, name: keyof typeof MAX_URL_BYTES, what: string = name): void {
  const bytes = Buffer.byteLength(value);
  const most = MAX_URL_BYTES[name];
  if (bytes > most) {
    throw new InvalidInputError(
      `${what} is ${bytes} bytes long; the longest ${name} URL kept is ${most} bytes`,
    );
  }
}

/** A URL option or argument as given, around whitespace: absolute, http or https. */
function checkUrl(given: unknown, name: string): string {
  if (typeof given !== 'string' || given.trim() === '') {
    throw new InvalidInputError(`${name} is required`);
  }
  const value = given.trim();
  if (CONTROL.test(value))
    throw new InvalidInputError(`${name} must not contain control characters`);
  if (name === 'topic' || name === 'hub') checkLength(value, name);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidInputError(`${name} is not an absolute URL: ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidInputError(`${name} must be an http or https URL: ${value}`);
  }
  return value;
}

/**
 * What `previousSecret` becomes when a request with `secret` replaces a stored record: a hub
 * that verified (or may yet verify) a request with the old secret signs with it until it
 * verifies the new request, and goes on doing so if it never does; a verification does not
 * say which request it confirms, so the old secret is taken until content signed with the new
 * one arrives. Nothing to keep when the secret is unchanged or removed, or when no request
 * with the old one ever went out.
 */
function secretStillSignedWith(existing: Subscription, secret: string | null): string | null {
  if (secret === null) return null;
  // The hub took a request with the old secret: it verified one, or one is in flight or
  // accepted. Not after a refusal or a request that never reached it.
  const inFlight = ['requesting', 'verifying', 'verifyerror'].includes(existing.subscribeStatus);
  const reachedHub =
    existing.leaseExpiresAt !== null || (existing.lastSubscribeAt !== null && inFlight);
  // The empty string stands for "no secret": content then comes unsigned.
  const signer =
    existing.previousSecret ?? (reachedHub && !isEnded(existing) ? (existing.secret ?? '') : null);
  return signer === secret ? null : signer;
}

/** Ten years, the most a window or cap on dates may reach (dates stay valid far beyond). */
const MAX_SPAN_MS = 3650 * 86_400_000;

/**
 * A duration option, in milliseconds from `min` to `max`: those a timer waits for must be
 * ones it can (Node.js runs a longer timer at once), and a span added to dates must keep them
 * valid dates.
 */
function duration(
  value: number | undefined,
  name: string,
  fallback: number,
  { min = 1, max = MAX_TIMER_MS }: { min?: number; max?: number } = {},
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    throw new InvalidInputError(`${name} must be from ${min} to ${max} ms, got ${String(value)}`);
  }
  return value;
}

/** A whole-number option from `min` to `max`. */
function whole(
  value: number | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidInputError(`${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

/** Failures of each kind before upkeep gives up: ten unless set, each a whole number. */
function maxRetriesOf(given: Partial<Record<SubscriptionCounter, number>>) {
  const limits = { connectionErrors: 10, hubErrors: 10, verifyTimeouts: 10, verifyErrors: 10 };
  for (const counter of Object.keys(limits) as SubscriptionCounter[]) {
    limits[counter] = whole(given[counter], `maxRetries.${counter}`, 10, 0, 1_000_000);
  }
  return limits;
}

/** `defaultHub`: a hub URL like any other, stored with each record that falls back to it. */
function defaultHub(value: string): string {
  const hub = checkUrl(value, 'defaultHub');
  checkLength(hub, 'hub', 'defaultHub');
  return hub;
}

/** The longest handler name: with the longest topic and hub, it must fit a store's key. */
const MAX_HANDLER_NAME = 100;

function resolveSettings(options: SubscriberOptions): SubscriberSettings {
  const baseUrl = checkUrl(options.baseUrl, 'baseUrl').replace(/\/+$/, '');
  if (/[?#]/.test(baseUrl)) {
    // Callback URLs are built by appending paths: a query or fragment would swallow them.
    throw new InvalidInputError(`baseUrl must have no query or fragment: ${baseUrl}`);
  }
  const callbackPath = normalisePath(options.callbackPath ?? '/websub', 'callbackPath');

  const handlers = new Map<string, { handle: NotificationHandler; path: string }>();
  for (const [name, definition] of Object.entries(options.handlers ?? {})) {
    if (!/^[A-Za-z0-9._~-]+$/.test(name) || name.length > MAX_HANDLER_NAME) {
      throw new InvalidInputError(
        `Handler name ${name.slice(0, 120)} must be URL-safe (letters, digits, . _ ~ -) ` +
          `and at most ${MAX_HANDLER_NAME} characters`,
      );
    }
    const handle = typeof definition === 'function' ? definition : definition.handle;
    const path = typeof definition === 'function' ? undefined : definition.path;
    const route = normalisePath(path ?? `${callbackPath}/${name}`, `The path of handler ${name}`);
    const sharing = [...handlers].find(([, other]) => other.path === route)?.[0];
    if (sharing !== undefined) {
      throw new InvalidInputError(
        `Handlers ${sharing} and ${name} have the same callback path ${route || '/'}`,
      );
    }
    handlers.set(name, { handle, path: route });
  }
  const defaultHandler = options.defaultHandler ?? [...handlers.keys()][0];
  if (defaultHandler === undefined || !handlers.has(defaultHandler)) {
    throw new InvalidInputError('At least one handler is required, and the default must exist');
  }

  const maxBodyBytes = whole(options.maxBodyBytes, 'maxBodyBytes', 4 * 1024 * 1024, 1, 2 ** 30);
  const hubTimeoutMs = duration(options.hubTimeoutMs, 'hubTimeoutMs', 30 * SECOND);
  const retryIntervalMs = duration(options.retryIntervalMs, 'retryIntervalMs', 600 * SECOND);
  const timeoutMs = duration(options.http?.timeoutMs, 'http.timeoutMs', 15 * SECOND);
  // Checked only when given; the HTTP client has its own defaults.
  whole(options.http?.maxRedirects, 'http.maxRedirects', 0, 0, 100);
  whole(options.http?.maxResponseBytes, 'http.maxResponseBytes', 1, 1, 2 ** 30);
  const span = { min: 0, max: MAX_SPAN_MS };
  return {
    baseUrl,
    callbackPath,
    handlers,
    defaultHandler,
    defaultHub: options.defaultHub ? defaultHub(options.defaultHub) : null,
    leaseSeconds:
      options.leaseSeconds === undefined || options.leaseSeconds === null
        ? null
        : whole(options.leaseSeconds, 'leaseSeconds', 0, 1, MAX_LEASE_SECONDS),
    http: { ...options.http, timeoutMs },
    hubHttp: { ...options.http, timeoutMs: hubTimeoutMs },
    maxBodyBytes,
    maxBufferedBodyBytes: whole(
      options.maxBufferedBodyBytes,
      'maxBufferedBodyBytes',
      Math.max(DEFAULT_MAX_BUFFERED_BYTES, maxBodyBytes),
      maxBodyBytes,
      2 ** 40,
    ),
    maxChallengeBytes: whole(options.maxChallengeBytes, 'maxChallengeBytes', 2048, 1, 2 ** 20),
    verifyWaitMs: duration(options.verifyWaitMs, 'verifyWaitMs', 60 * SECOND),
    assumedLeaseSeconds: whole(
      options.assumedLeaseSeconds,
      'assumedLeaseSeconds',
      86_400,
      1,
      MAX_SPAN_MS / 1000,
    ),
    maxLeaseSeconds: whole(
      options.maxLeaseSeconds,
      'maxLeaseSeconds',
      365 * 86_400,
      1,
      MAX_SPAN_MS / 1000,
    ),
    lockTtlMs: duration(
      options.lockTtlMs,
      'lockTtlMs',
      Math.min(hubTimeoutMs + 30 * SECOND, MAX_TIMER_MS),
    ),
    autofixCallbackUrls: options.autofixCallbackUrls ?? true,
    upkeep: options.upkeep ?? true,
    refreshIntervalMs: duration(options.refreshIntervalMs, 'refreshIntervalMs', HOUR),
    renewBeforeMs: duration(options.renewBeforeMs, 'renewBeforeMs', DAY, span),
    retryIntervalMs,
    retryBackoffMaxMs: duration(options.retryBackoffMaxMs, 'retryBackoffMaxMs', DAY, span),
    maxRetries: maxRetriesOf(options.maxRetries ?? {}),
    sweepPageSize: whole(options.sweepPageSize, 'sweepPageSize', 500, 1, 10_000),
    sweepConcurrency: whole(options.sweepConcurrency, 'sweepConcurrency', 8, 1, 1000),
    handlerTimeoutMs: duration(options.handlerTimeoutMs, 'handlerTimeoutMs', 600_000, { min: 0 }),
    dedupeWindowMs: duration(options.dedupeWindowMs, 'dedupeWindowMs', 0, span),
  };
}

/**
 * A WebSub subscriber: discovers hubs, subscribes callbacks, answers intent verification,
 * takes signed content and hands it to named handlers through the queue, renews leases and
 * retries failures. Create it with `createSubscriber`.
 */
export class Subscriber implements CallbackEndpoint {
  /** Where subscriptions are kept. */
  readonly store: SubscriptionStore;
  /** Where work is queued. */
  readonly queue: JobQueue;
  /** Mutual exclusion per subscription. */
  readonly lock: LockProvider;
  /** Settings with defaults applied. */
  readonly settings: SubscriberSettings;

  private readonly context: SubscriberContext;
  private readonly events: SubscriberEventEmitter;
  private readonly logger: Logger;
  private readonly upkeep: boolean;
  private readonly deliveryRetry: { attempts: number; backoffMs: number };
  private started = false;
  private upkeepTimer: NodeJS.Timeout | null = null;

  constructor(options: SubscriberOptions) {
    this.settings = resolveSettings(options);
    this.store = options.store ?? createMemoryStore();
    this.queue = options.queue ?? createMemoryQueue();
    this.lock = options.lock ?? createMemoryLock();
    this.logger = options.logger ?? silentLogger;
    this.upkeep = options.upkeep ?? true;
    this.deliveryRetry = {
      attempts: whole(options.deliveryAttempts, 'deliveryAttempts', 5, 1, 1000),
      backoffMs: duration(options.deliveryBackoffMs, 'deliveryBackoffMs', 2000, {
        min: 0,
        max: MAX_SPAN_MS,
      }),
    };
    this.events = new SubscriberEventEmitter((error) =>
      this.logger.error({ error }, 'A subscriber event listener threw'),
    );

    const now = options.now ?? (() => new Date());
    this.context = {
      store: this.store,
      queue: this.queue,
      lock: this.lock,
      logger: this.logger,
      events: this.events,
      settings: this.settings,
      recentDeliveries:
        this.settings.dedupeWindowMs > 0
          ? new RecentDeliveries(this.settings.dedupeWindowMs)
          : null,
      handlerRuns: new HandlerRuns(),
      now,
    };
    this.defineJobs();
  }

  /** The largest content body accepted, in bytes. */
  get maxBodyBytes(): number {
    return this.settings.maxBodyBytes;
  }

  /** The most bytes of callback bodies read at once in the process. */
  get maxBufferedBytes(): number {
    return this.settings.maxBufferedBodyBytes;
  }

  /** Every callback path prefix, one per handler (for mounting on routers). */
  get callbackPaths(): string[] {
    return [...this.settings.handlers.values()].map((handler) => handler.path);
  }

  /**
   * Start running queued work and, unless turned off, the recurring upkeep sweeps, with one of
   * each at once. `sweepNow: false` leaves out the sweeps at once: for a one-off process (a
   * command) that only sends its own requests and should not renew what it did not ask for.
   */
  async start(options: { sweepNow?: boolean } = {}): Promise<void> {
    if (this.started) return;
    if (this.upkeep) {
      await this.scheduleUpkeep();
      // A durable queue's backend can lose its schedules (a Redis without persistence that
      // restarts): every instance asserts them again now and then, which costs nothing when
      // they are in place.
      if (!this.queue.inProcess) {
        const period = Math.min(
          this.settings.refreshIntervalMs,
          this.settings.retryIntervalMs,
          60_000,
        );
        this.upkeepTimer = setInterval(() => {
          this.scheduleUpkeep().catch((error: unknown) =>
            this.logger.warn(
              { error },
              'Could not assert the upkeep schedules; trying again later',
            ),
          );
        }, period);
        this.upkeepTimer.unref();
      }
    }
    await this.queue.start();
    this.started = true;
    if (this.upkeep && options.sweepNow !== false) await this.sweepOnStart();
    this.logger.info({ baseUrl: this.settings.baseUrl }, 'Subscriber started');
  }

  /**
   * One refresh and one retry sweep as soon as the subscriber starts: the interval's first tick
   * is a whole interval away, and what a stopped process had queued (the mid-lease renewal of a
   * short lease, a retry) may be gone with it. Leases ending before then would lapse.
   */
  private async sweepOnStart(): Promise<void> {
    for (const job of [JOBS.refresh, JOBS.retry]) {
      try {
        await this.queue.enqueue(job, {});
      } catch (error) {
        this.logger.warn({ job, error }, 'Could not queue a sweep at start; it runs at its time');
      }
    }
  }

  /** Stop taking work and wait for running jobs to finish. Stores and locks stay open. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.upkeepTimer) clearInterval(this.upkeepTimer);
    this.upkeepTimer = null;
    await this.queue.stop();
    this.logger.info({}, 'Subscriber stopped');
  }

  /** Fetch a topic URL and find its hubs and canonical topic, without subscribing. */
  discover(url: string): Promise<DiscoveryResult> {
    return discover(checkUrl(url, 'topic'), this.settings.http);
  }

  /**
   * Subscribe to a topic: discover its hub unless given, store the record as `requesting` and
   * queue the request to the hub. Resolves with the stored record, before the hub is asked.
   * Subscribing again to the same (hub, topic, handler) re-requests the existing record with
   * its counters reset. Throws `InvalidInputError` or `DiscoveryError`.
   */
  async subscribe(input: SubscribeInput): Promise<Subscription> {
    const [first] = await this.subscribeTo(input, 'first', true);
    return first as Subscription;
  }

  /**
   * Subscribe at every hub the topic advertises (or at the one given), one record and one
   * distinct callback URL per hub. Resolves with the stored records, in the hubs' order.
   */
  subscribeEach(input: SubscribeInput): Promise<Subscription[]> {
    return this.subscribeTo(input, 'all', true);
  }

  /** @internal Subscribe for static declarations and maintenance, keeping counters if asked. */
  async subscribeTo(
    input: SubscribeInput,
    hubs: 'first' | 'all',
    resetCounters: boolean,
  ): Promise<Subscription[]> {
    const handler = input.handler ?? this.settings.defaultHandler;
    if (!this.settings.handlers.has(handler)) {
      throw new InvalidInputError(`No handler named ${handler} is configured`);
    }
    const given = checkUrl(input.topic, 'topic');
    const secret = input.secret ?? null;
    if (secret !== null && (typeof secret !== 'string' || secret === '')) {
      throw new InvalidInputError('secret must be a non-empty string');
    }
    if (secret !== null && Buffer.byteLength(secret) >= 200) {
      throw new InvalidInputError('secret must be shorter than 200 bytes');
    }
    if (secret !== null && CONTROL.test(secret)) {
      throw new InvalidInputError('secret must not contain control characters');
    }
    const leaseSeconds =
      input.leaseSeconds === undefined ? this.settings.leaseSeconds : input.leaseSeconds;
    const wholeLease = Number.isInteger(leaseSeconds) && (leaseSeconds as number) > 0;
    if (leaseSeconds !== null && (!wholeLease || (leaseSeconds as number) > MAX_LEASE_SECONDS)) {
      throw new InvalidInputError(
        `leaseSeconds must be a whole number from 1 to ${MAX_LEASE_SECONDS}`,
      );
    }

    const resolved = await this.resolveHubs({ ...input, topic: given });
    const { topic, discoveredFrom, hubDiscovered } = resolved;
    const chosen = hubs === 'all' ? resolved.hubs : resolved.hubs.slice(0, 1);
    if (hubDiscovered) {
      checkLength(topic, 'topic', `The topic's rel="self" URL ${topic.slice(0, 60)}…`);
      for (const hub of chosen) checkLength(hub, 'hub', `The advertised hub ${hub.slice(0, 60)}…`);
    }
    const records: Subscription[] = [];
    for (const hub of chosen) {
      if (secret !== null && hub.startsWith('http:')) {
        this.logger.warn({ hub, topic }, 'Sending hub.secret to a hub over plain http');
      }
      const record = await this.storeRequest({
        hub,
        topic,
        handler,
        secret,
        leaseSeconds,
        static: input.static ?? false,
        discoveredFrom,
        hubDiscovered,
        resetCounters,
      });
      this.events.emit('subscription:requested', { subscription: record, mode: 'subscribe' });
      await this.enqueue(JOBS.subscribe, record);
      records.push(record);
    }
    return records;
  }

  /** Ask the hub to end a subscription. Resolves with the record once the request is queued. */
  async unsubscribe(id: string): Promise<Subscription> {
    const record = await this.get(id);
    if (!record) throw new SubscriptionNotFoundError(id);
    if (record.unsubscribeStatus === 'verified') return record;

    const now = this.context.now();
    const updated = await this.store.transition(record.id, {
      set: {
        unsubscribeStatus: 'requesting',
        retryAt: new Date(now.getTime() + this.settings.verifyWaitMs),
      },
    });
    if (!updated) throw new SubscriptionNotFoundError(id);

    this.events.emit('subscription:requested', { subscription: updated, mode: 'unsubscribe' });
    await this.enqueue(JOBS.unsubscribe, updated);
    return updated;
  }

  /**
   * Send a stored subscription's subscribe request again now, whatever its state (denied and
   * unsubscribed ones included), keeping its topic, hub, secret and lease; counters are reset.
   */
  async resubscribe(id: string): Promise<Subscription> {
    const record = await this.get(id);
    if (!record) throw new SubscriptionNotFoundError(id);
    const updated = await this.store.transition(record.id, {
      set: {
        subscribeStatus: 'requesting',
        unsubscribeStatus: null,
        deniedReason: null,
        lastError: null,
        retryAt: new Date(this.context.now().getTime() + this.settings.verifyWaitMs),
        connectionErrors: 0,
        hubErrors: 0,
        verifyTimeouts: 0,
        verifyErrors: 0,
      },
    });
    if (!updated) throw new SubscriptionNotFoundError(id);

    this.events.emit('subscription:requested', { subscription: updated, mode: 'subscribe' });
    await this.enqueue(JOBS.subscribe, updated);
    return updated;
  }

  /**
   * Retry one subscription now rather than at its `retryAt`, exactly as the retry sweep would:
   * its pending unsubscribe request if it has one, else its subscribe request (an unverified
   * request counts a verification timeout). Verified and denied records are left alone (use
   * `resubscribe`). Resolves with the record once its request is queued, or `null` when there
   * was nothing to retry or another worker was busy with it.
   */
  async retryNow(id: string): Promise<Subscription | null> {
    const record = await this.get(id);
    if (!record) throw new SubscriptionNotFoundError(id);

    const queued = await retryRecord(this.context, record.id);
    return queued ? await this.store.get(record.id) : null;
  }

  /** The subscription with this id, or `null` (also for anything that is not a UUID). */
  async get(id: string): Promise<Subscription | null> {
    if (typeof id !== 'string' || !SUBSCRIPTION_ID.test(id)) return null;
    return this.store.get(id.toLowerCase());
  }

  /** One page of subscriptions, in ascending id order. */
  list(filter?: SubscriptionFilter, page?: PageOptions): Promise<Page> {
    return this.store.list(filter, page);
  }

  /** Run one refresh sweep now (renew leases ending soon). */
  refreshSubscriptions(): Promise<SweepReport> {
    return refreshSubscriptions(this.context);
  }

  /** Run one retry sweep now (retry what failed or was lost). */
  retryFailed(): Promise<SweepReport> {
    return retryFailed(this.context);
  }

  /**
   * Materialise subscriptions declared in configuration: missing ones are created, existing
   * ones re-subscribed (denied ones and those being unsubscribed only with `force`), all marked
   * static; with `purgeOrphans`, static records no longer declared are ended: unsubscribed
   * while the hub may still hold them, deleted once it does not.
   */
  async applyStaticSubscriptions(
    declarations: StaticSubscription[],
    options: StaticOptions = {},
  ): Promise<StaticReport> {
    const report: StaticReport = {
      created: [],
      resubscribed: [],
      skipped: [],
      purged: [],
      unsubscribing: [],
      failed: [],
    };
    const declared = new Set<string>();
    const started = this.context.now().getTime();

    for (const declaration of declarations) {
      const handler = declaration.handler ?? this.settings.defaultHandler;
      try {
        // Stored as subscribe stores them: without the whitespace around.
        const hub = typeof declaration.hub === 'string' ? declaration.hub.trim() : null;
        const topic = typeof declaration.topic === 'string' ? declaration.topic.trim() : '';
        const existing = hub ? await this.store.findByKey(hub, topic, handler) : null;
        if (existing) declared.add(existing.id);
        const blocked =
          existing &&
          (existing.subscribeStatus === 'denied' || existing.unsubscribeStatus !== null);
        if (existing && blocked && !options.force) {
          report.skipped.push({
            id: existing.id,
            reason: existing.subscribeStatus === 'denied' ? 'denied' : 'being unsubscribed',
          });
          continue;
        }

        const records = await this.subscribeTo(
          { ...declaration, handler, static: true },
          'first',
          options.resetCounters ?? false,
        );
        for (const record of records) {
          declared.add(record.id);
          const isNew = !existing && record.createdAt.getTime() >= started;
          (isNew ? report.created : report.resubscribed).push(record.id);
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        report.failed.push({ topic: declaration.topic, error: message });
        // A topic that cannot be discovered or a bad declaration is the report's news; a store
        // or a bug failing is worth its stack.
        if (error instanceof WebSubError && !(error instanceof AdapterError)) {
          const fields = { topic: declaration.topic, code: error.code, error: message };
          this.logger.warn(fields, 'Static subscription failed');
        } else {
          this.logger.error({ topic: declaration.topic, error }, 'Static subscription failed');
        }
      }
    }

    if (options.purgeOrphans) await this.endOrphans(declared, report);
    return report;
  }

  /**
   * Static records not declared: deleted, unless the hub may still hold them (their lease has
   * not run out), in which case they are unsubscribed and left for a later run to delete once
   * the hub has confirmed; a deleted record's deliveries would be answered 404 and retried.
   */
  private async endOrphans(declared: Set<string>, report: StaticReport): Promise<void> {
    const orphans: Subscription[] = [];
    let after: string | undefined;
    do {
      const page = await this.store.list(
        { static: true },
        { limit: 500, ...(after ? { after } : {}) },
      );
      for (const record of page.items) if (!declared.has(record.id)) orphans.push(record);
      after = page.next ?? undefined;
    } while (after !== undefined);

    const now = this.context.now().getTime();
    for (const record of orphans) {
      const held =
        !isEnded(record) && record.leaseExpiresAt !== null && record.leaseExpiresAt.getTime() > now;
      if (!held) {
        if (await this.store.delete(record.id)) report.purged.push(record.id);
      } else if (
        record.unsubscribeStatus === 'requesting' ||
        record.unsubscribeStatus === 'verifying'
      ) {
        report.unsubscribing.push(record.id);
      } else {
        await this.unsubscribe(record.id);
        report.unsubscribing.push(record.id);
      }
    }
  }

  /** Delete records whose handler is no longer configured; resolves with their ids. */
  purgeUnresolvable(): Promise<string[]> {
    return purgeUnresolvable(this.context);
  }

  /** Zero the error counters of these records, or of every record. */
  resetCounters(ids?: string[]): Promise<string[]> {
    return resetCounters(this.context, ids);
  }

  /** Re-subscribe records whose callback URL changed; resolves with their ids. */
  handleUrlChanges(): Promise<string[]> {
    return handleUrlChanges(this.context);
  }

  /** Delete every record without telling the hubs; resolves with how many. */
  purgeAll(): Promise<number> {
    return purgeAll(this.context);
  }

  /** Find records that need attention: given up, unresolvable, stale URLs, overdue, expired. */
  checkHealth(): Promise<HealthReport> {
    return checkHealth(this.context);
  }

  /** Does this path belong to one of this subscriber's callbacks? */
  isCallbackPath(pathname: string): boolean {
    return matchCallback(this.context, pathname) !== null;
  }

  /** Answer one callback request; every HTTP adapter wraps this. Never throws. */
  handle(request: CallbackRequest): Promise<CallbackResponse> {
    return handleCallback(this.context, request);
  }

  /** Answer content refused while it streamed in, over `maxBodyBytes`: 413, counted. */
  refuseOversized(request: Omit<CallbackRequest, 'body'>): CallbackResponse {
    return refuseOversized(this.context, request);
  }

  /** Listen to a lifecycle event. */
  on<K extends keyof SubscriberEvents>(name: K, listener: SubscriberListener<K>): this {
    this.events.on(name, listener);
    return this;
  }

  /** Stop listening to a lifecycle event. */
  off<K extends keyof SubscriberEvents>(name: K, listener: SubscriberListener<K>): this {
    this.events.off(name, listener);
    return this;
  }

  private async scheduleUpkeep(): Promise<void> {
    await this.queue.every(JOBS.refresh, this.settings.refreshIntervalMs);
    await this.queue.every(JOBS.retry, this.settings.retryIntervalMs);
  }

  private async resolveHubs(input: SubscribeInput): Promise<ResolvedHubs> {
    if (input.hub !== undefined && input.hub !== null && input.hub !== '') {
      const hub = checkUrl(input.hub, 'hub');
      await assertAddressAllowed(hub, this.settings.http);
      return { hubs: [hub], topic: input.topic, discoveredFrom: null, hubDiscovered: false };
    }

    try {
      const found = await this.discover(input.topic);
      const discoveredFrom = found.topic !== input.topic ? input.topic : null;
      this.logger.info({ topic: found.topic, hubs: found.hubs }, 'Discovered hub');
      for (const hub of found.hubs) await assertAddressAllowed(hub, this.settings.http);
      return { hubs: found.hubs, topic: found.topic, discoveredFrom, hubDiscovered: true };
    } catch (error) {
      const noHub = error instanceof DiscoveryError && error.code === 'no_hub';
      if (noHub && this.settings.defaultHub !== null) {
        const hubs = [this.settings.defaultHub];
        return { hubs, topic: input.topic, discoveredFrom: null, hubDiscovered: false };
      }
      // A refused address says more than "could not fetch the topic".
      const cause = error instanceof DiscoveryError ? error.cause : null;
      if (cause instanceof HttpRequestError && cause.code === 'blocked_address') throw cause;
      throw error;
    }
  }

  private async storeRequest(fields: {
    hub: string;
    topic: string;
    handler: string;
    secret: string | null;
    leaseSeconds: number | null;
    static: boolean;
    discoveredFrom: string | null;
    hubDiscovered: boolean;
    resetCounters: boolean;
  }): Promise<Subscription> {
    const now = this.context.now();
    const retryAt = new Date(now.getTime() + this.settings.verifyWaitMs);
    const counters = { connectionErrors: 0, hubErrors: 0, verifyTimeouts: 0, verifyErrors: 0 };
    const reset = {
      secret: fields.secret,
      leaseSeconds: fields.leaseSeconds,
      subscribeStatus: 'requesting' as const,
      unsubscribeStatus: null,
      deniedReason: null,
      lastError: null,
      retryAt,
      static: fields.static,
      discoveredFrom: fields.discoveredFrom,
      hubDiscovered: fields.hubDiscovered,
    };

    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.store.findByKey(fields.hub, fields.topic, fields.handler);
      if (existing) {
        const previousSecret = secretStillSignedWith(existing, fields.secret);
        const set = { ...reset, ...(fields.resetCounters ? counters : {}), previousSecret };
        const updated = await this.store.transition(existing.id, { set });
        if (updated) return updated;
        continue;
      }

      const id = randomUUID();
      try {
        return await this.store.create({
          ...reset,
          ...counters,
          previousSecret: null,
          retiredCallbackUrl: null,
          id,
          topic: fields.topic,
          hub: fields.hub,
          handler: fields.handler,
          callbackUrl: callbackUrlFor(this.context, fields.handler, id) as string,
          leaseExpiresAt: null,
          lastSubscribeAt: null,
          lastUnsubscribeAt: null,
          createdAt: now,
          lastDeliveryAt: null,
        });
      } catch (error) {
        // Another instance created the same subscription at the same moment: use theirs.
        if (!(error instanceof DuplicateSubscriptionError)) throw error;
      }
    }
    throw new InvalidInputError(`Could not store the subscription to ${fields.topic}`);
  }

  /** Queue a task; if the queue refuses, the record's `retryAt` still brings it back. */
  private async enqueue(job: string, record: Subscription): Promise<void> {
    try {
      await this.queue.enqueue(job, { subscriptionId: record.id });
    } catch (error) {
      this.logger.error(
        { subscriptionId: record.id, error },
        'Could not queue the request; the retry sweep will send it',
      );
    }
  }

  /**
   * Renew a subscription whose hub came from discovery: discover its topic again first and, if
   * the publisher now names other hubs or another topic (lion-reader#1032: a hub switch never
   * followed), subscribe at its first hub and unsubscribe this record. When discovery fails or
   * finds the same hub, the renewal goes to the stored hub as before.
   */
  private async renewDiscovered(id: string, queuedAt?: string): Promise<void> {
    const record = await this.store.get(id);
    // Unsubscribed (or denied) since the sweep marked it: nothing to renew or move.
    if (!record || record.unsubscribeStatus !== null || isEnded(record)) return;
    // A retry queued again since: the later task does the work, discovery included.
    if (isStaleRetry(record, queuedAt)) return;

    const url = record.discoveredFrom ?? record.topic;
    const found = await this.resolveHubs({ topic: url }).catch((error: unknown) => {
      const fields = { subscriptionId: id, topic: url, error };
      this.logger.info(fields, 'Could not discover the topic again; renewing at the same hub');
      return null;
    });
    // A default hub standing in for a topic that names none now is no reason to move.
    const hub = found?.hubDiscovered ? found.hubs[0] : undefined;
    const same = found?.topic === record.topic && found.hubs.includes(record.hub);
    if (!found || hub === undefined || same) {
      return sendRequest(this.context, id, 'subscribe', queuedAt);
    }
    try {
      checkLength(found.topic, 'topic', 'The rel="self" URL discovered again');
      checkLength(hub, 'hub', 'The hub the topic names now');
    } catch (error) {
      this.logger.warn({ subscriptionId: id, error }, 'Not moving; renewing at the same hub');
      return sendRequest(this.context, id, 'subscribe');
    }
    // A hub that denied the subscription is not asked again, nor one still ending it; one
    // that ended it (an earlier move away, say) is, when the publisher names it again.
    const there = await this.store.findByKey(hub, found.topic, record.handler);
    const leaving = there !== null && there.unsubscribeStatus !== null;
    if (
      there?.subscribeStatus === 'denied' ||
      (leaving && there.unsubscribeStatus !== 'verified')
    ) {
      const fields = { subscriptionId: id, to: there.id, toHub: hub };
      this.logger.warn(fields, 'The topic names a hub that denied or is ending it: staying here');
      return sendRequest(this.context, id, 'subscribe');
    }

    const next = await this.storeRequest({
      hub,
      topic: found.topic,
      handler: record.handler,
      secret: record.secret,
      leaseSeconds: record.leaseSeconds,
      static: record.static,
      discoveredFrom: found.discoveredFrom,
      hubDiscovered: true,
      resetCounters: true,
    });
    this.logger.info(
      { subscriptionId: id, hub: record.hub, topic: record.topic, to: next.id, toHub: hub },
      'The topic names another hub now: subscribing there, leaving here once that is verified',
    );
    this.events.emit('subscription:moved', { from: record, to: next });
    this.events.emit('subscription:requested', { subscription: next, mode: 'subscribe' });
    await this.enqueue(JOBS.subscribe, next);
    // Make before break: this one is renewed too, and ended only once the new one holds.
    await sendRequest(this.context, id, 'subscribe');
    await this.checkMove({ subscriptionId: id, to: next.id, checks: 0 });
  }

  /**
   * Queue the next look at a move from one hub to another: once the subscription at the new
   * hub is verified, the old one is unsubscribed. While the new one is still being retried the
   * look comes again, with the retry backoff, up to `maxRetries.hubErrors` times; if the new hub
   * denies it or upkeep gives up on it, the old subscription stays (and the next renewal looks
   * at the topic again).
   */
  private async checkMove(job: MoveJob): Promise<void> {
    const { verifyWaitMs, retryIntervalMs, retryBackoffMaxMs } = this.settings;
    const wait = Math.max(verifyWaitMs, retryIntervalMs) * 2 ** job.checks;
    const delayMs = Math.min(wait, Math.max(retryBackoffMaxMs, verifyWaitMs));
    try {
      await this.queue.enqueue(JOBS.finishMove, { ...job }, { delayMs });
    } catch (error) {
      // Both stay subscribed; the old one's next renewal finds the move again.
      this.logger.warn({ subscriptionId: job.subscriptionId, error }, MOVE_NOT_QUEUED);
    }
  }

  private async finishMove(job: MoveJob): Promise<void> {
    const [from, to] = await Promise.all([
      this.store.get(job.subscriptionId),
      this.store.get(job.to),
    ]);
    if (!from) return;
    const fields = { subscriptionId: from.id, to: job.to };
    if (from.unsubscribeStatus !== null) {
      // Unsubscribed while the move was under way: the new one, still pending, goes too.
      const pending = to && to.unsubscribeStatus === null && !isEnded(to);
      if (pending && to.subscribeStatus !== 'verified') {
        this.logger.info(fields, 'Unsubscribed during its move: ending the new one too');
        await this.unsubscribe(to.id);
      }
      return;
    }
    if (to && to.subscribeStatus === 'verified' && to.unsubscribeStatus === null) {
      this.logger.info(fields, 'The new hub verified the subscription: leaving the old one');
      await this.unsubscribe(from.id);
      return;
    }
    const checks = job.checks + 1;
    if (to && !isEnded(to) && !hasGivenUp(to) && checks < this.settings.maxRetries.hubErrors) {
      return this.checkMove({ ...job, checks });
    }
    this.logger.warn(fields, 'The new hub did not take the subscription: staying at the old one');
  }

  private defineJobs(): void {
    const context = this.context;
    this.queue.define<RequestJob>(JOBS.subscribe, (job) =>
      sendRequest(context, job.subscriptionId, 'subscribe', job.retryAt),
    );
    this.queue.define<RequestJob>(JOBS.unsubscribe, (job) =>
      sendRequest(context, job.subscriptionId, 'unsubscribe', job.retryAt),
    );
    this.queue.define<DeliveryJob>(JOBS.deliver, (job) => runDelivery(context, job), {
      attempts: this.deliveryRetry.attempts,
      backoffMs: this.deliveryRetry.backoffMs,
    });
    this.queue.define(JOBS.refresh, async () => void (await refreshSubscriptions(context)), {
      attempts: 1,
      concurrency: 1,
    });
    this.queue.define<RequestJob>(JOBS.rediscover, (job) =>
      this.renewDiscovered(job.subscriptionId, job.retryAt),
    );
    this.queue.define<RenewJob>(JOBS.renew, (job) =>
      renewLease(context, job.subscriptionId, job.leaseExpiresAt),
    );
    this.queue.define<RetireJob>(JOBS.retire, (job) => retireCallback(context, job));
    this.queue.define<MoveJob>(JOBS.finishMove, (job) => this.finishMove(job));
    this.queue.define(JOBS.retry, async () => void (await retryFailed(context)), {
      attempts: 1,
      concurrency: 1,
    });
    this.queue.onFailure((name, data, error) => {
      if (name === JOBS.retire) {
        const fields = { subscriptionId: data['subscriptionId'], error };
        this.logger.warn(fields, 'Old callback URL not ended; the hub ends it with its lease');
        return;
      }
      if (name === JOBS.renew) {
        const fields = { subscriptionId: data['subscriptionId'], error };
        this.logger.warn(fields, 'Queued renewal not run; the refresh sweep will renew the lease');
        return;
      }
      if (name === JOBS.deliver) {
        const subscriptionId = String(data['subscriptionId']);
        const handler = String(data['handler'] ?? '');
        this.events.emit('handler:failed', { subscriptionId, handler, error, final: true });
      }
      this.logger.error({ job: name, data: redact(data), error }, 'Job failed for good');
    });
  }
}

/** Data of the look at a move between hubs: from `subscriptionId` to `to`. */
interface MoveJob {
  [key: string]: unknown;
  subscriptionId: string;
  to: string;
  /** Looks taken so far. */
  checks: number;
}

const MOVE_NOT_QUEUED = 'Could not queue the end of the move; the next renewal finds it again';

/** A job's data fit for a log line: a delivery's body and the hub's headers left out. */
function redact(data: Record<string, unknown>): Record<string, unknown> {
  const { body: _body, headers: _headers, ...rest } = data;
  return rest;
}

/** Create a subscriber; the embedded store, queue and lock are used for any role not given. */
export function createSubscriber(options: SubscriberOptions): Subscriber {
  return new Subscriber(options);
}

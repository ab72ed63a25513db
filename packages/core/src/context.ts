import { createHash } from 'node:crypto';

import { HandlerTimeoutError } from './errors.js';
import type { SubscriberEventEmitter } from './events.js';
import type { HttpOptions } from './http-client.js';
import type { LockProvider } from './lock.js';
import type { Logger } from './logger.js';
import type { JobQueue } from './queue.js';
import type { SubscriptionStore } from './store.js';
import type { Subscription, SubscriptionCounter } from './subscription.js';

/** A payload as the application receives it. */
export interface Notification {
  /** The subscription, as stored when the content is handed over. */
  subscription: Subscription;
  /** The subscribed topic (identified by the callback URL, never by the `Link` headers). */
  topic: string;
  /** The hub the subscription is with. */
  hub: string;
  /** `Content-Type` as sent, parameters (such as charset) included; `null` when absent. */
  contentType: string | null;
  /** Request headers as sent, names in lower case (framing headers left out). */
  headers: Record<string, string>;
  /**
   * The raw body bytes, exactly as received and signed: a `Content-Encoding` (gzip, deflate,
   * br) is not undone, `headers['content-encoding']` names it.
   */
  body: Buffer;
  /** When the callback accepted the content. */
  receivedAt: Date;
}

/** Receives content for one named handler. A rejection makes the queue retry it. */
export type NotificationHandler = (notification: Notification) => Promise<void> | void;

/** A named handler with its own callback route. */
export interface HandlerDefinition {
  /** Receives the content. */
  handle: NotificationHandler;
  /** Path of its callbacks, before the id. @default `${callbackPath}/${name}` */
  path?: string;
}

/** Everything the lifecycle steps share: the three roles, settings, clock and events. */
export interface SubscriberContext {
  readonly store: SubscriptionStore;
  readonly queue: JobQueue;
  readonly lock: LockProvider;
  readonly logger: Logger;
  readonly events: SubscriberEventEmitter;
  readonly settings: SubscriberSettings;
  /** Recently accepted content, when duplicates are dropped. */
  readonly recentDeliveries: RecentDeliveries | null;
  /** Content handlers running now, each failed once it outlives its time limit. */
  readonly handlerRuns: HandlerRuns;
  now(): Date;
}

/**
 * Remembers which (subscription, body digest) pairs were accepted within a window, so that a
 * hub's redelivery of the same bytes can be dropped. Kept in this process only, oldest first,
 * and at most `limit` pairs: past that the oldest are forgotten early, so memory stays bounded
 * and each delivery costs the same however many are remembered.
 */
export class RecentDeliveries {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly limit = 100_000,
  ) {}

  /** `true` when the same content was accepted within the window; records it otherwise. */
  isDuplicate(subscriptionId: string, body: Uint8Array, now: number): boolean {
    const key = `${subscriptionId}:${createHash('sha256').update(body).digest('base64')}`;
    const last = this.seen.get(key);
    if (last !== undefined && now - last < this.windowMs) return true;

    // Deleted first so that the map stays in order of acceptance.
    if (last !== undefined) this.seen.delete(key);
    this.seen.set(key, now);
    this.forget(now);
    return false;
  }

  /** How many pairs are remembered. */
  get size(): number {
    return this.seen.size;
  }

  /** Drop pairs from the oldest on: those past the window, and any beyond the limit. */
  private forget(now: number): void {
    for (const [key, at] of this.seen) {
      if (now - at < this.windowMs && this.seen.size <= this.limit) return;
      this.seen.delete(key);
    }
  }
}

/** One watched run: settled by its handler or, past its deadline, by the watch. */
interface WatchedRun {
  deadline: number;
  handler: string;
  timeoutMs: number;
  fail: (error: Error) => void;
  settled: boolean;
}

/**
 * Content handlers running in this process, watched by one timer for them all rather than one
 * each (a timer per delivery costs more than the rest of a delivery's bookkeeping). A run that
 * ends is only marked; the timer drops the marked ones as it passes, so a delivery costs a push
 * and a flag, not a set's insertion and removal.
 */
export class HandlerRuns {
  private runs: WatchedRun[] = [];
  private timer: NodeJS.Timeout | null = null;

  /**
   * Wait for a handler's run, no longer than `timeoutMs` (0: no limit) and a second or so. A run
   * that outlives it is left to finish on its own, its outcome ignored: the caller fails with
   * `HandlerTimeoutError` and the delivery is retried.
   */
  watch(run: void | PromiseLike<void>, handler: string, timeoutMs: number): Promise<void> {
    if (run === undefined) return Promise.resolve();
    const running = run instanceof Promise ? run : Promise.resolve(run);
    if (timeoutMs <= 0) return running;

    return new Promise<void>((resolve, reject) => {
      const entry: WatchedRun = {
        deadline: Date.now() + timeoutMs,
        handler,
        timeoutMs,
        fail: reject,
        settled: false,
      };
      this.runs.push(entry);
      this.timer ??= this.startTimer(timeoutMs);
      running.then(
        () => {
          entry.settled = true;
          resolve();
        },
        (error: unknown) => {
          entry.settled = true;
          reject(error);
        },
      );
    });
  }

  /** Runs being watched, those already settled but not yet dropped by the timer included. */
  get size(): number {
    return this.runs.length;
  }

  private startTimer(timeoutMs: number): NodeJS.Timeout {
    const timer = setInterval(() => this.expire(), Math.min(timeoutMs, 1000));
    timer.unref();
    return timer;
  }

  private expire(): void {
    const now = Date.now();
    const left: WatchedRun[] = [];
    for (const entry of this.runs) {
      if (entry.settled) continue;
      if (entry.deadline > now) {
        left.push(entry);
        continue;
      }
      entry.settled = true;
      entry.fail(new HandlerTimeoutError(entry.handler, entry.timeoutMs));
    }
    this.runs = left;
    if (left.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

/** Settings after defaults are applied. */
export interface SubscriberSettings {
  baseUrl: string;
  callbackPath: string;
  handlers: Map<string, { handle: NotificationHandler; path: string }>;
  defaultHandler: string;
  defaultHub: string | null;
  leaseSeconds: number | null;
  http: HttpOptions;
  hubHttp: HttpOptions;
  maxBodyBytes: number;
  maxBufferedBodyBytes: number;
  maxChallengeBytes: number;
  verifyWaitMs: number;
  assumedLeaseSeconds: number;
  maxLeaseSeconds: number;
  lockTtlMs: number;
  autofixCallbackUrls: boolean;
  upkeep: boolean;
  refreshIntervalMs: number;
  renewBeforeMs: number;
  retryIntervalMs: number;
  retryBackoffMaxMs: number;
  maxRetries: Record<SubscriptionCounter, number>;
  sweepPageSize: number;
  sweepConcurrency: number;
  handlerTimeoutMs: number;
  dedupeWindowMs: number;
}

/** Queue job names, one per kind of work. */
export const JOBS = {
  subscribe: 'websubsub.subscribe',
  unsubscribe: 'websubsub.unsubscribe',
  deliver: 'websubsub.deliver',
  refresh: 'websubsub.refresh',
  renew: 'websubsub.renew',
  rediscover: 'websubsub.rediscover',
  retire: 'websubsub.retire-callback',
  finishMove: 'websubsub.finish-move',
  retry: 'websubsub.retry',
} as const;

/** The lock key of one subscription. */
export const lockKey = (id: string): string => `subscription:${id}`;

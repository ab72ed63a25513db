import { JOBS, lockKey, type SubscriberContext } from './context.js';
import { WebSubError } from './errors.js';
import { sendHubRequest, type HubMode, type HubOutcome } from './hub-request.js';
import type { TransitionCondition } from './store.js';
import {
  isEnded,
  storableText,
  type SubscribeStatus,
  type Subscription,
  type SubscriptionCounter,
} from './subscription.js';

/** Thrown by a task that found its subscription locked by another worker; the queue retries it. */
export class SubscriptionBusyError extends WebSubError {
  constructor(id: string) {
    super('subscription_busy', `Subscription ${id} is locked by another worker`);
  }
}

/** Data of a subscribe or unsubscribe task. */
export interface RequestJob {
  [key: string]: unknown;
  subscriptionId: string;
  /**
   * For a retry: the record's `retryAt` when it was queued. Another value when the task runs
   * means it is stale (queued again since, or the request went out): it sends nothing.
   */
  retryAt?: string;
}

/**
 * Is this a retry task queued again since, or whose request went out already? Its record's
 * `retryAt` is no longer the one it was queued with (see `RequestJob.retryAt`).
 */
export function isStaleRetry(record: Subscription, queuedAt: string | undefined): boolean {
  return queuedAt !== undefined && record.retryAt?.toISOString() !== queuedAt;
}

/**
 * Subscribe states from which a (re)subscribe request may be sent. Not `verified`: every
 * request is asked for by marking the record `requesting` first (renewals too), so a task that
 * finds it verified was overtaken by the hub's verification and has nothing left to ask.
 */
const SUBSCRIBABLE: SubscribeStatus[] = [
  'requesting',
  'connerror',
  'huberror',
  'verifying',
  'verifyerror',
];

/** The callback URL a record should have under the current base URL and handler routes. */
export function callbackUrlFor(
  context: SubscriberContext,
  handler: string,
  id: string,
): string | null {
  const route = context.settings.handlers.get(handler);
  if (!route) return null;
  return `${context.settings.baseUrl}${route.path}/${id}`;
}

/**
 * Send one subscribe or unsubscribe request for a record, holding its lock, and record what
 * the hub answered. The record is marked `requesting` before the request goes out, so that a
 * hub verifying inside the request finds it pending on every instance.
 */
export async function sendRequest(
  context: SubscriberContext,
  id: string,
  mode: HubMode,
  queuedAt?: string,
): Promise<void> {
  const lock = await context.lock.acquire(lockKey(id), context.settings.lockTtlMs);
  if (!lock) throw new SubscriptionBusyError(id);

  try {
    const record = await context.store.get(id);
    if (!record) return;
    if (isStaleRetry(record, queuedAt)) {
      context.logger.debug({ subscriptionId: id, mode }, 'Stale retry task: nothing sent');
      return;
    }

    const prepared = await prepare(context, record, mode);
    if (!prepared) return;

    context.events.emit('request:sent', { subscription: prepared, mode });
    const outcome = await sendHubRequest(prepared, mode, context.settings.hubHttp);
    await recordOutcome(context, prepared, mode, outcome);
  } finally {
    await lock.release().catch((error: unknown) => {
      context.logger.warn({ subscriptionId: id, error }, 'Could not release lock');
    });
  }
}

async function prepare(
  context: SubscriberContext,
  record: Subscription,
  mode: HubMode,
): Promise<Subscription | null> {
  const now = context.now();
  const retryAt = new Date(now.getTime() + context.settings.verifyWaitMs);

  const expected = callbackUrlFor(context, record.handler, record.id);
  if (expected === null) {
    await context.store.transition(record.id, {
      set: { lastError: `No handler named ${record.handler} is configured`, retryAt: null },
    });
    context.logger.error({ subscriptionId: record.id }, `No handler named ${record.handler}`);
    return null;
  }

  if (mode === 'unsubscribe') {
    // The hub knows the subscription by the callback URL it verified: ending it under a new
    // one would end nothing. When the new URL was never verified, that is the old one.
    const known = record.subscribeStatus === 'verified' ? null : record.retiredCallbackUrl;
    const back = known === null ? {} : { callbackUrl: known, retiredCallbackUrl: null };
    return context.store.transition(record.id, {
      when: {
        unsubscribeStatus: ['requesting', 'connerror', 'huberror', 'verifying', 'verifyerror'],
      },
      set: { unsubscribeStatus: 'requesting', lastUnsubscribeAt: now, retryAt, ...back },
    });
  }

  const changes: Partial<Subscription> = {};
  if (expected !== record.callbackUrl) {
    if (!context.settings.autofixCallbackUrls) {
      await markCallbackChanged(context, record, expected);
      return null;
    }
    context.logger.info(
      { subscriptionId: record.id, from: record.callbackUrl, to: expected },
      'Callback URL changed; subscribing the new one, then unsubscribing the old',
    );
    changes.callbackUrl = expected;
    // A hub that verified the old URL delivers there until told otherwise or its lease ends.
    const live = record.leaseExpiresAt !== null && !isEnded(record);
    changes.retiredCallbackUrl = record.retiredCallbackUrl ?? (live ? record.callbackUrl : null);
  }
  return context.store.transition(record.id, {
    when: { unsubscribeStatus: null, subscribeStatus: SUBSCRIBABLE },
    set: { subscribeStatus: 'requesting', lastSubscribeAt: now, retryAt, ...changes },
  });
}

/** Data of the task that ends a subscription's retired callback URL at its hub. */
export interface RetireJob {
  [key: string]: unknown;
  subscriptionId: string;
  /** Failed attempts so far: the next waits as the retry backoff does. */
  failures?: number;
  /** Set on the run that gives up waiting for the hub's verification. */
  expire?: boolean;
}

/**
 * End the subscription of a record's retired callback URL at its hub, once the new URL is
 * verified: send the unsubscribe, then wait `verifyWaitMs` for the hub to verify it (at the
 * old URL, where it may still reach this subscriber). A hub that cannot be reached or answers
 * 5xx or 429 is asked again with the retry backoff, up to `maxRetries.hubErrors` times. A hub
 * that refuses, never verifies, or stays down ends it when its lease runs out: the retired URL
 * is then forgotten, and a refusal or giving up written to `lastError`.
 */
export async function retireCallback(context: SubscriberContext, job: RetireJob): Promise<void> {
  const record = await context.store.get(job.subscriptionId);
  const retired = record?.retiredCallbackUrl ?? null;
  if (!record || retired === null) return;
  const fields = { subscriptionId: record.id, callbackUrl: retired };
  const forget = (lastError?: string) =>
    context.store.transition(record.id, {
      set: { retiredCallbackUrl: null, ...(lastError === undefined ? {} : { lastError }) },
    });

  if (job.expire) {
    await forget();
    context.logger.info(fields, 'The hub did not verify ending the old callback URL in time');
    return;
  }
  const outcome = await sendHubRequest(
    { ...record, callbackUrl: retired },
    'unsubscribe',
    context.settings.hubHttp,
  );
  if (outcome.kind === 'accepted') {
    context.logger.info(fields, 'Asked the hub to end the old callback URL');
    const expire: RetireJob = { subscriptionId: record.id, expire: true };
    await context.queue.enqueue(JOBS.retire, expire, { delayMs: context.settings.verifyWaitMs });
    return;
  }

  const failures = (job.failures ?? 0) + 1;
  const transient =
    outcome.kind === 'connection_error' || outcome.status >= 500 || outcome.status === 429;
  const { maxRetries, retryIntervalMs, retryBackoffMaxMs } = context.settings;
  if (transient && failures < maxRetries.hubErrors) {
    const backoff = Math.min(retryIntervalMs * 2 ** (failures - 1), retryBackoffMaxMs);
    const retryAfter = outcome.kind === 'hub_error' ? outcome.retryAfterMs : null;
    const next: RetireJob = { subscriptionId: record.id, failures };
    const delayMs = waitBeforeRetry(context, backoff, retryAfter);
    await context.queue.enqueue(JOBS.retire, next, { delayMs });
    context.logger.warn({ ...fields, reason: outcome.reason, failures }, RETIRE_AGAIN);
    return;
  }
  const ending = transient ? `Gave up after ${failures} failures` : 'The hub refused';
  await forget(storableText(`${ending} ending the old callback URL ${retired}: ${outcome.reason}`));
  context.logger.warn({ ...fields, reason: outcome.reason }, RETIRE_FAILED);
}

const RETIRE_AGAIN = 'Could not end the old callback URL at the hub; asking again later';
const RETIRE_FAILED = 'Could not end the old callback URL at the hub; it ends with its lease';

/** With automatic fixing off, a changed callback URL is an error shown on the record. */
async function markCallbackChanged(
  context: SubscriberContext,
  record: Subscription,
  expected: string,
): Promise<void> {
  const message = `Callback URL changed to ${expected}; automatic fixing is off`;
  await context.store.transition(record.id, {
    set: { subscribeStatus: 'connerror', lastError: message, retryAt: null },
  });
  context.logger.error({ subscriptionId: record.id, callbackUrl: record.callbackUrl }, message);
}

/** Record the hub's answer, scheduling the next attempt or giving up. */
async function recordOutcome(
  context: SubscriberContext,
  record: Subscription,
  mode: HubMode,
  outcome: HubOutcome,
): Promise<void> {
  const field = mode === 'subscribe' ? 'subscribeStatus' : 'unsubscribeStatus';
  const when: TransitionCondition =
    mode === 'subscribe'
      ? { subscribeStatus: 'requesting', unsubscribeStatus: null }
      : { unsubscribeStatus: 'requesting' };
  const status = outcome.kind === 'connection_error' ? null : outcome.status;
  const error = outcome.kind === 'accepted' ? null : outcome.reason;
  context.events.emit('hub:answered', { subscription: record, mode, status, error });

  if (outcome.kind === 'accepted') {
    // A verification that arrived during the request has already moved the record on.
    await context.store.transition(record.id, {
      when,
      set: {
        [field]: 'verifying',
        lastError: null,
        retryAt: new Date(context.now().getTime() + context.settings.verifyWaitMs),
      },
    });
    context.logger.info({ subscriptionId: record.id, mode, status }, 'Hub accepted the request');
    return;
  }

  const counter: SubscriptionCounter =
    outcome.kind === 'hub_error' ? 'hubErrors' : 'connectionErrors';
  const failed = await context.store.transition(record.id, {
    when,
    set: {
      [field]: outcome.kind === 'hub_error' ? 'huberror' : 'connerror',
      lastError: outcome.reason,
    },
    increment: { [counter]: 1 },
  });
  context.logger.warn(
    { subscriptionId: record.id, mode, reason: outcome.reason },
    'Hub request failed',
  );
  if (failed) {
    const retryAfterMs = outcome.kind === 'hub_error' ? outcome.retryAfterMs : null;
    await scheduleRetry(context, failed, counter, retryAfterMs);
  }
}

/**
 * The wait before a retry: the backoff, or longer if the hub's `Retry-After` asks for it, but
 * never longer than `retryBackoffMaxMs` (a hub asking for years must not stop upkeep).
 */
function waitBeforeRetry(
  context: SubscriberContext,
  backoffMs: number,
  retryAfterMs: number | null,
): number {
  const longest = Math.max(backoffMs, context.settings.retryBackoffMaxMs);
  return Math.min(Math.max(backoffMs, retryAfterMs ?? 0), longest);
}

/**
 * After the n-th failure of a kind: the first retry comes at the next sweep, each later one
 * waits about twice as long (±20 % jitter) up to the backoff cap; a hub's `Retry-After` pushes
 * it later still. At the kind's maximum the subscription is given up: no `retryAt`, logged once.
 */
export async function scheduleRetry(
  context: SubscriberContext,
  record: Subscription,
  counter: SubscriptionCounter,
  retryAfterMs: number | null = null,
): Promise<Subscription | null> {
  const failures = record[counter];
  const maximum = context.settings.maxRetries[counter];
  const now = context.now().getTime();

  if (failures >= maximum) {
    const reason = `Gave up after ${failures} ${COUNTER_NAMES[counter]}`;
    const updated = await context.store.transition(record.id, {
      set: { retryAt: null, lastError: `${reason}: ${record.lastError ?? 'no detail'}` },
    });
    context.logger.error({ subscriptionId: record.id, topic: record.topic }, reason);
    if (updated) context.events.emit('retry:gave-up', { subscription: updated, reason });
    return updated;
  }

  const retryAt = new Date(
    now + waitBeforeRetry(context, backoffDelay(context, failures), retryAfterMs),
  );
  const updated = await context.store.transition(record.id, { set: { retryAt } });
  if (updated) context.events.emit('retry:scheduled', { subscription: updated, retryAt });
  return updated;
}

/** Delay before the retry after `failures` failures of one kind. */
export function backoffDelay(context: SubscriberContext, failures: number): number {
  if (failures <= 1) return 0;
  const { retryIntervalMs, retryBackoffMaxMs } = context.settings;
  const base = Math.min(retryBackoffMaxMs, retryIntervalMs * 2 ** (failures - 1));
  const jittered = base * (0.8 + Math.random() * 0.4);
  return Math.min(retryBackoffMaxMs, Math.round(jittered));
}

const COUNTER_NAMES: Record<SubscriptionCounter, string> = {
  connectionErrors: 'connection errors',
  hubErrors: 'hub errors',
  verifyTimeouts: 'verification timeouts',
  verifyErrors: 'verification errors',
};

/**
 * Has upkeep given up on this record? Every state but the final ones (verified, denied) carries
 * a `retryAt` while upkeep still looks after it: one without is left for a person, whether it
 * failed (`huberror`, ...) or waited in vain for the hub's verification (`verifying`).
 */
export function hasGivenUp(record: Subscription): boolean {
  // Ended (a denial, even one that came instead of an unsubscribe's verification): nothing to do.
  if (isEnded(record)) return false;
  const status = record.unsubscribeStatus ?? record.subscribeStatus;
  return status !== 'verified' && status !== 'denied' && record.retryAt === null;
}

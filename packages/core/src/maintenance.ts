import { JOBS, lockKey, type SubscriberContext } from './context.js';
import { callbackUrlFor, hasGivenUp } from './lifecycle.js';
import type { SubscriptionFilter } from './store.js';
import type { Subscription } from './subscription.js';

/** A subscription declared in configuration (the original's static subscriptions). */
export interface StaticSubscription {
  /** Topic URL (the canonical one; no discovery is done when `hub` is given). */
  topic: string;
  /** Hub URL; without it the topic is discovered. */
  hub?: string;
  /** Handler name. @default the subscriber's default handler */
  handler?: string;
  /** `hub.lease_seconds` to ask for. */
  leaseSeconds?: number | null;
  /** `hub.secret`. */
  secret?: string | null;
}

/** How `applyStaticSubscriptions` treats what is already stored. */
export interface StaticOptions {
  /**
   * End static records that the declarations no longer name: one the hub may still hold (a
   * lease not yet run out) is unsubscribed first and deleted by a later run once the hub has
   * confirmed; the others are deleted at once. @default false
   */
  purgeOrphans?: boolean;
  /** Zero the error counters of the declared records. @default false */
  resetCounters?: boolean;
  /** Also re-subscribe denied records and records being unsubscribed. @default false */
  force?: boolean;
}

/** What `applyStaticSubscriptions` did, by subscription id. */
export interface StaticReport {
  created: string[];
  resubscribed: string[];
  skipped: Array<{ id: string; reason: string }>;
  /** Orphans deleted. */
  purged: string[];
  /** Orphans the hub may still hold: being unsubscribed, to be deleted by a later run. */
  unsubscribing: string[];
  failed: Array<{ topic: string; error: string }>;
}

/** Records in a bad state, as `doctor` finds them. */
export interface HealthReport {
  total: number;
  byStatus: Record<string, number>;
  gaveUp: Subscription[];
  unresolvable: Subscription[];
  staleCallbackUrls: Subscription[];
  overdue: Subscription[];
  expired: Subscription[];
}

/** Visit every record matching a filter, a page at a time. */
export async function forEachRecord(
  context: SubscriberContext,
  filter: SubscriptionFilter,
  visit: (record: Subscription) => Promise<void> | void,
): Promise<void> {
  let after: string | undefined;
  do {
    const page = await context.store.list(filter, {
      limit: context.settings.sweepPageSize,
      ...(after ? { after } : {}),
    });
    for (const record of page.items) await visit(record);
    after = page.next ?? undefined;
  } while (after !== undefined);
}

/** Delete records whose handler is no longer configured; resolves with their ids. */
export async function purgeUnresolvable(context: SubscriberContext): Promise<string[]> {
  const purged: string[] = [];
  await forEachRecord(context, {}, async (record) => {
    if (context.settings.handlers.has(record.handler)) return;
    if (await context.store.delete(record.id)) purged.push(record.id);
  });
  if (purged.length > 0) {
    context.logger.info({ count: purged.length }, 'Purged subscriptions without a handler');
  }
  return purged;
}

/** Zero the error counters of the given records (every record when `ids` is omitted). */
export async function resetCounters(context: SubscriberContext, ids?: string[]): Promise<string[]> {
  const zero = { connectionErrors: 0, hubErrors: 0, verifyTimeouts: 0, verifyErrors: 0 };
  const reset: string[] = [];
  const one = async (id: string) => {
    if (await context.store.transition(id, { set: zero })) reset.push(id);
  };

  if (ids) for (const id of ids) await one(id);
  else await forEachRecord(context, {}, (record) => one(record.id));
  return reset;
}

/**
 * Re-subscribe every live record whose callback URL no longer matches the base URL and its
 * handler's route, so the hub learns the new URL (the subscribe task rewrites it when automatic
 * fixing is on, and marks the record failed when it is off). Resolves with their ids.
 */
export async function handleUrlChanges(context: SubscriberContext): Promise<string[]> {
  const changed: string[] = [];
  await forEachRecord(context, { unsubscribeStatus: null }, async (record) => {
    const expected = callbackUrlFor(context, record.handler, record.id);
    if (expected === null || expected === record.callbackUrl) return;
    if (record.subscribeStatus === 'denied') return;

    const lock = await context.lock.acquire(lockKey(record.id), context.settings.lockTtlMs);
    if (!lock) return;
    let marked;
    try {
      marked = await context.store.transition(record.id, {
        when: { unsubscribeStatus: null },
        set: {
          subscribeStatus: 'requesting',
          retryAt: new Date(context.now().getTime() + context.settings.verifyWaitMs),
        },
      });
    } finally {
      await lock.release().catch(() => undefined);
    }
    if (!marked) return;
    await context.queue.enqueue(JOBS.subscribe, { subscriptionId: record.id });
    changed.push(record.id);
  });
  return changed;
}

/** Delete every record; resolves with how many were deleted. Hubs are not told. */
export async function purgeAll(context: SubscriberContext): Promise<number> {
  const ids: string[] = [];
  await forEachRecord(context, {}, (record) => void ids.push(record.id));
  let deleted = 0;
  for (const id of ids) if (await context.store.delete(id)) deleted++;
  return deleted;
}

/** Look through every record for states that need a person's attention. */
export async function checkHealth(context: SubscriberContext): Promise<HealthReport> {
  const now = context.now().getTime();
  const report: HealthReport = {
    total: 0,
    byStatus: {},
    gaveUp: [],
    unresolvable: [],
    staleCallbackUrls: [],
    overdue: [],
    expired: [],
  };

  await forEachRecord(context, {}, (record) => {
    report.total++;
    const status =
      record.unsubscribeStatus === null
        ? record.subscribeStatus
        : `unsubscribe:${record.unsubscribeStatus}`;
    report.byStatus[status] = (report.byStatus[status] ?? 0) + 1;

    const expected = callbackUrlFor(context, record.handler, record.id);
    if (expected === null) report.unresolvable.push(record);
    else if (expected !== record.callbackUrl) report.staleCallbackUrls.push(record);
    if (hasGivenUp(record)) report.gaveUp.push(record);
    // A due retry that no sweep picked up within two intervals means upkeep is not running.
    const late = now - 2 * context.settings.retryIntervalMs;
    if (record.retryAt !== null && record.retryAt.getTime() < late) report.overdue.push(record);
    const live = record.subscribeStatus === 'verified' && record.unsubscribeStatus === null;
    if (live && record.leaseExpiresAt !== null && record.leaseExpiresAt.getTime() < now) {
      report.expired.push(record);
    }
  });
  return report;
}

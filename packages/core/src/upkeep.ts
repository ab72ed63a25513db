import { JOBS, lockKey, type SubscriberContext } from './context.js';
import { backoffDelay, scheduleRetry, type RequestJob } from './lifecycle.js';
import type { Page } from './store.js';
import type { Subscription, SubscriptionCounter } from './subscription.js';

/** What one sweep did. */
export interface SweepReport {
  /** Records the sweep looked at. */
  examined: number;
  /** Requests queued. */
  queued: number;
  /** Records skipped because another worker held their lock. */
  busy: number;
  /** Records given up on during this sweep. */
  gaveUp: number;
}

const emptyReport = (): SweepReport => ({ examined: 0, queued: 0, busy: 0, gaveUp: 0 });

/**
 * Walk every page of a query, one page in memory at a time, visiting up to `concurrency` of a
 * page's records at once. A failing visit ends the sweep once the visits under way are done.
 */
async function eachPage(
  fetch: (after: string | undefined) => Promise<Page>,
  visit: (record: Subscription) => Promise<void>,
  concurrency: number,
): Promise<void> {
  let after: string | undefined;
  do {
    const page = await fetch(after);
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && next < page.items.length) {
        const record = page.items[next++] as Subscription;
        try {
          await visit(record);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    };
    const workers = Array.from({ length: Math.min(concurrency, page.items.length) }, worker);
    const outcomes = await Promise.allSettled(workers);
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure) throw (failure as PromiseRejectedResult).reason;
    after = page.next ?? undefined;
  } while (after !== undefined);
}

/**
 * Decide about a record while holding its lock, then queue what was decided once the lock is
 * released (the task takes the same lock). `false` when another worker holds it.
 */
async function withRecordLock(
  context: SubscriberContext,
  id: string,
  decide: () => Promise<string | QueuedRetry | null>,
): Promise<boolean> {
  const lock = await context.lock.acquire(lockKey(id), context.settings.lockTtlMs);
  if (!lock) return false;

  let job: string | QueuedRetry | null;
  try {
    job = await decide();
  } finally {
    await lock.release().catch(() => undefined);
  }
  if (typeof job === 'string') await context.queue.enqueue(job, { subscriptionId: id });
  else if (job) {
    const data: RequestJob = { subscriptionId: id, retryAt: job.retryAt.toISOString() };
    await context.queue.enqueue(job.name, data);
  }
  return true;
}

/** A request the retry sweep queues, with the `retryAt` it set: the job's mark of freshness. */
interface QueuedRetry {
  name: string;
  retryAt: Date;
}

/**
 * Renew verified subscriptions whose lease ends within the renewal window (expired ones too):
 * each is marked `requesting` and a subscribe request queued. Denied, unsubscribing and
 * failed records are not touched here.
 */
export async function refreshSubscriptions(context: SubscriberContext): Promise<SweepReport> {
  const report = emptyReport();
  const now = context.now();
  const before = new Date(now.getTime() + context.settings.renewBeforeMs);
  const limit = context.settings.sweepPageSize;

  await eachPage(
    (after) => context.store.findLeasesEndingBefore(before, { limit, ...(after ? { after } : {}) }),
    async (record) => {
      report.examined++;
      const locked = await withRecordLock(context, record.id, async () => {
        const job = await markRenewing(context, record.id, now, true);
        if (job) report.queued++;
        return job;
      });
      if (!locked) report.busy++;
    },
    context.settings.sweepConcurrency,
  );

  if (report.examined > 0) context.logger.info({ ...report }, 'Refresh sweep done');
  return report;
}

/** The failure counters of a request cycle that has not failed yet. */
const NO_FAILURES = { connectionErrors: 0, hubErrors: 0, verifyTimeouts: 0, verifyErrors: 0 };

/**
 * Mark a verified record as renewing: the job to queue, or `null` if it is not. With
 * `discoverAgain`, a record whose hub came from discovery gets its topic discovered first.
 */
async function markRenewing(
  context: SubscriberContext,
  id: string,
  now: Date,
  discoverAgain: boolean,
): Promise<string | null> {
  const renewing = await context.store.transition(id, {
    when: { subscribeStatus: 'verified', unsubscribeStatus: null },
    set: {
      subscribeStatus: 'requesting',
      retryAt: new Date(now.getTime() + context.settings.verifyWaitMs),
      // Counted per renewal: failures of renewals the hub has since verified are over, and
      // left on the counters they gave up healthy subscriptions after scattered errors (and
      // stretched the backoff of the next retry to its maximum).
      ...NO_FAILURES,
    },
  });
  if (!renewing) return null;

  context.events.emit('lease:renewing', { subscription: renewing });
  return discoverAgain && renewing.hubDiscovered ? JOBS.rediscover : JOBS.subscribe;
}

/** The data of a queued renewal: the subscription and the lease end it was queued for. */
export interface RenewJob {
  [key: string]: unknown;
  subscriptionId: string;
  leaseExpiresAt: string;
}

/**
 * Queue the renewal of a lease just granted when the refresh sweep might not come round before
 * it ends: a lease (or renewal window) shorter than twice the sweep's interval is renewed in
 * its middle, or `renewBeforeMs` before its end if that comes later. Hubs grant such leases (a
 * few minutes to an hour, some by default); without this they would lapse between sweeps. A
 * queue that refuses is logged: the sweeps still renew the lease, perhaps late.
 */
export async function scheduleLeaseRenewal(
  context: SubscriberContext,
  record: Subscription,
): Promise<void> {
  const { upkeep, refreshIntervalMs, renewBeforeMs } = context.settings;
  if (!upkeep || record.leaseExpiresAt === null) return;
  const leaseMs = record.leaseExpiresAt.getTime() - context.now().getTime();
  if (Math.min(leaseMs, renewBeforeMs) >= 2 * refreshIntervalMs) return;

  const delayMs = Math.max(0, Math.round(leaseMs - Math.min(renewBeforeMs, leaseMs / 2)));
  const job: RenewJob = {
    subscriptionId: record.id,
    leaseExpiresAt: record.leaseExpiresAt.toISOString(),
  };
  try {
    await context.queue.enqueue(JOBS.renew, job, { delayMs });
  } catch (error) {
    context.logger.warn(
      { subscriptionId: record.id, error },
      'Could not queue the renewal of a short lease; the refresh sweep will renew it',
    );
  }
}

/**
 * Run a renewal queued by `scheduleLeaseRenewal`: what the refresh sweep does for this record,
 * unless its lease has changed since (renewed already, or ended). Throws while another worker
 * holds the record, so that the queue tries again.
 */
export async function renewLease(
  context: SubscriberContext,
  id: string,
  leaseExpiresAt: string,
): Promise<void> {
  const now = context.now();
  const locked = await withRecordLock(context, id, async () => {
    const current = await context.store.get(id);
    if (current?.leaseExpiresAt?.toISOString() !== leaseExpiresAt) return null;
    // Queued for leases of minutes: discovering at each would be polling the topic.
    return markRenewing(context, id, now, false);
  });
  if (!locked) throw new Error(`Subscription ${id} is busy; its renewal will be tried again`);
}

/**
 * Retry what failed or was lost: connection and hub errors once their backoff has passed,
 * malformed verifications, requests the hub never verified within the wait time, and
 * `requesting` records whose task never ran. Subscribe and unsubscribe alike; denied and
 * verified records are left alone.
 */
export async function retryFailed(context: SubscriberContext): Promise<SweepReport> {
  const report = emptyReport();
  const now = context.now();
  const limit = context.settings.sweepPageSize;

  await eachPage(
    (after) => context.store.findDueForRetry(now, { limit, ...(after ? { after } : {}) }),
    async (record) => {
      report.examined++;
      const locked = await withRecordLock(context, record.id, async () => {
        const current = await context.store.get(record.id);
        if (!current || current.retryAt === null || current.retryAt.getTime() > now.getTime()) {
          return null;
        }
        const outcome = await retryOne(context, current);
        if (outcome === 'gave-up') report.gaveUp++;
        if (outcome === 'cleared' || outcome === 'gave-up') return null;
        report.queued++;
        return outcome;
      });
      if (!locked) report.busy++;
    },
    context.settings.sweepConcurrency,
  );

  if (report.examined > 0) context.logger.info({ ...report }, 'Retry sweep done');
  return report;
}

/**
 * Retry one record now, as the retry sweep would once its `retryAt` came: resolves with
 * `true` when a request was queued, `false` when there was nothing to retry, `null` when
 * another worker held its lock.
 */
export async function retryRecord(context: SubscriberContext, id: string): Promise<boolean | null> {
  let queued = false;
  const locked = await withRecordLock(context, id, async () => {
    const current = await context.store.get(id);
    if (!current) return null;
    const outcome = await retryOne(context, current, false);
    if (outcome === 'cleared' || outcome === 'gave-up') return null;
    queued = true;
    return outcome;
  });
  return locked ? queued : null;
}

/**
 * Decide the retry of one due record: the job to queue, or why there is none. `backoff`: false
 * when someone asked for the retry now, so it is not held back for a later sweep.
 */
async function retryOne(
  context: SubscriberContext,
  record: Subscription,
  backoff = true,
): Promise<QueuedRetry | 'gave-up' | 'cleared'> {
  const unsubscribing = record.unsubscribeStatus !== null;
  const status = unsubscribing ? record.unsubscribeStatus : record.subscribeStatus;
  if (status === 'verified' || status === 'denied' || status === null) {
    await context.store.transition(record.id, { set: { retryAt: null } });
    return 'cleared';
  }

  // Verifications that never came, or came malformed, count against their own maximum here;
  // connection and hub errors were counted (and given up on) when they happened.
  const counter: SubscriptionCounter | null =
    status === 'verifying' ? 'verifyTimeouts' : status === 'verifyerror' ? 'verifyErrors' : null;
  let current = record;
  if (status === 'verifying') {
    const timedOut = await context.store.transition(record.id, {
      when: unsubscribing ? { unsubscribeStatus: 'verifying' } : { subscribeStatus: 'verifying' },
      set: { lastError: 'The hub did not verify intent in time' },
      increment: { verifyTimeouts: 1 },
    });
    if (!timedOut) return 'cleared';
    current = timedOut;
  }
  if (counter && current[counter] >= context.settings.maxRetries[counter]) {
    await scheduleRetry(context, current, counter);
    return 'gave-up';
  }

  // After the first, a request the hub did not verify (or verified malformed) waits out its
  // backoff before it is sent again, as a `requesting` record the sweep picks up when due.
  if (backoff && counter && backoffDelay(context, current[counter]) > 0) {
    const field = unsubscribing ? 'unsubscribeStatus' : 'subscribeStatus';
    const waiting = await context.store.transition(record.id, {
      when: { [field]: status },
      set: { [field]: 'requesting' },
    });
    if (waiting) await scheduleRetry(context, waiting, counter);
    return 'cleared';
  }

  // Pushed back so that the next sweep leaves it alone while its task is on the way. Should
  // the task wait in the queue longer than that (a hub that hangs holds every worker), the
  // next sweep queues another with a later `retryAt`, and the older one finds itself stale.
  const pushedBack = new Date(context.now().getTime() + context.settings.verifyWaitMs);
  await context.store.transition(record.id, { set: { retryAt: pushedBack } });
  // A hub found by discovery that keeps failing may be one the publisher has left (hubs shut
  // down): the topic is looked at again, and a move to the hub it names now is followed.
  const hubFailing = status === 'connerror' || status === 'huberror';
  const name = unsubscribing
    ? JOBS.unsubscribe
    : record.hubDiscovered && hubFailing
      ? JOBS.rediscover
      : JOBS.subscribe;
  return { name, retryAt: pushedBack };
}

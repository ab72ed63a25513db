import type { Subscriber, SubscriberEvents, SubscriberListener } from '@websubsub/core';

/** What part of a subscription's life a history entry is about. */
export type HistoryKind =
  'request' | 'hub' | 'verification' | 'delivery' | 'handler' | 'lease' | 'retry' | 'action';

/** One thing that happened to a subscription, as the dashboard shows it. */
export interface HistoryEntry {
  /** When it happened. */
  at: Date;
  /** The subscription, or `null` for content sent to a callback nobody knows. */
  subscriptionId: string | null;
  kind: HistoryKind;
  /** How it went: shown as a word and a colour. */
  level: 'success' | 'info' | 'error';
  /** What happened, in a sentence; may quote hubs and handlers verbatim (escape it). */
  message: string;
  /** For content sent to a callback: taken for its handler or not. */
  delivery?: 'accepted' | 'rejected';
}

/** Deliveries per time bucket, oldest first, for the chart. */
export interface DeliverySeries {
  /** Length of one bucket, in milliseconds. */
  bucketMs: number;
  buckets: Array<{ start: Date; accepted: number; rejected: number }>;
}

/**
 * Where the dashboard keeps what happened to each subscription. The store of subscriptions
 * keeps their state; this keeps their story. Every method is async so that an implementation
 * may share it between instances (the default keeps it in this process).
 */
export interface HistoryStore {
  /** Remember one entry. */
  append(entry: HistoryEntry): Promise<void>;
  /** The latest entries of one subscription, newest first. */
  recent(subscriptionId: string, limit: number): Promise<HistoryEntry[]>;
  /** Deliveries over the recent buckets, for one subscription or (with `null`) for all. */
  deliveries(subscriptionId: string | null, now: Date): Promise<DeliverySeries>;
}

/** Options of the in-process history. */
export interface MemoryHistoryOptions {
  /** Entries kept per subscription; older ones are dropped. @default 50 */
  entriesPerSubscription?: number;
  /**
   * Subscriptions whose history is kept; the one that has been quiet longest is forgotten
   * first. Bounds memory whatever the number of subscriptions. @default 5000
   */
  maxSubscriptions?: number;
  /** Length of one delivery bucket of the chart, in milliseconds. @default 3600000 (1 hour) */
  bucketMs?: number;
  /** Buckets kept and charted. @default 24 */
  buckets?: number;
}

interface Counts {
  accepted: number;
  rejected: number;
}

const ALL = '';

/**
 * History kept in this process only: lost on restart, not shared between instances, and
 * bounded (entries per subscription, subscriptions remembered, buckets of deliveries).
 */
export class MemoryHistory implements HistoryStore {
  private readonly journals = new Map<string, HistoryEntry[]>();
  private readonly series = new Map<string, Map<number, Counts>>();
  private readonly entriesPerSubscription: number;
  private readonly maxSubscriptions: number;
  private readonly bucketMs: number;
  private readonly buckets: number;

  constructor(options: MemoryHistoryOptions = {}) {
    this.entriesPerSubscription = options.entriesPerSubscription ?? 50;
    this.maxSubscriptions = options.maxSubscriptions ?? 5000;
    this.bucketMs = options.bucketMs ?? 3_600_000;
    this.buckets = options.buckets ?? 24;
  }

  async append(entry: HistoryEntry): Promise<void> {
    const id = entry.subscriptionId;
    if (entry.delivery) {
      this.count(ALL, entry.at, entry.delivery);
      if (id !== null) this.count(id, entry.at, entry.delivery);
    }
    if (id === null) return;

    // Re-inserting moves the subscription to the end: the map's order is least recent first.
    const journal = this.journals.get(id) ?? [];
    this.journals.delete(id);
    journal.push({ ...entry });
    if (journal.length > this.entriesPerSubscription) journal.shift();
    this.journals.set(id, journal);
    this.forgetQuietest();
  }

  async recent(subscriptionId: string, limit: number): Promise<HistoryEntry[]> {
    const journal = this.journals.get(subscriptionId) ?? [];
    return journal
      .slice(-limit)
      .reverse()
      .map((entry) => ({ ...entry }));
  }

  async deliveries(subscriptionId: string | null, now: Date): Promise<DeliverySeries> {
    const counts = this.series.get(subscriptionId ?? ALL);
    const last = Math.floor(now.getTime() / this.bucketMs);
    const buckets: DeliverySeries['buckets'] = [];
    for (let index = last - this.buckets + 1; index <= last; index++) {
      const found = counts?.get(index);
      buckets.push({
        start: new Date(index * this.bucketMs),
        accepted: found?.accepted ?? 0,
        rejected: found?.rejected ?? 0,
      });
    }
    return { bucketMs: this.bucketMs, buckets };
  }

  private count(key: string, at: Date, outcome: 'accepted' | 'rejected'): void {
    const index = Math.floor(at.getTime() / this.bucketMs);
    const counts = this.series.get(key) ?? new Map<number, Counts>();
    this.series.delete(key);
    this.series.set(key, counts);

    const bucket = counts.get(index) ?? { accepted: 0, rejected: 0 };
    bucket[outcome]++;
    counts.set(index, bucket);
    for (const old of counts.keys()) if (old <= index - this.buckets) counts.delete(old);
  }

  private forgetQuietest(): void {
    while (this.journals.size > this.maxSubscriptions) {
      const oldest = this.journals.keys().next().value as string;
      this.journals.delete(oldest);
    }
    // The totals are kept under their own key, which is never forgotten.
    while (this.series.size > this.maxSubscriptions + 1) {
      for (const key of this.series.keys()) {
        if (key === ALL) continue;
        this.series.delete(key);
        break;
      }
    }
  }
}

/** Create the in-process history. */
export function createMemoryHistory(options?: MemoryHistoryOptions): MemoryHistory {
  return new MemoryHistory(options);
}

const REJECTION_TEXT: Record<string, string> = {
  unknown_subscription: 'no such subscription',
  ended: 'the subscription has ended (answered 410)',
  too_large: 'the body was too large (answered 413)',
  duplicate: 'the same content was already accepted',
  queue_unavailable: 'the queue was unavailable (answered 503, the hub will retry)',
  missing: 'X-Hub-Signature was missing (answered 403)',
  malformed: 'X-Hub-Signature was malformed',
  unsupported_algorithm: 'X-Hub-Signature used an unsupported algorithm',
  mismatch: 'X-Hub-Signature did not match the body',
};

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/**
 * Write a subscriber's lifecycle events into a history store, until the returned function is
 * called. A failing store is reported to `onError` and never reaches the subscriber.
 */
export function recordHistory(
  subscriber: Subscriber,
  history: HistoryStore,
  options: { now?: () => Date; onError?: (error: unknown) => void } = {},
): () => void {
  const now = options.now ?? (() => new Date());
  const onError = options.onError ?? (() => undefined);
  const stops: Array<() => void> = [];

  const write = (entry: Omit<HistoryEntry, 'at'>) => {
    history.append({ ...entry, at: now() }).catch(onError);
  };
  const listen = <K extends keyof SubscriberEvents>(name: K, listener: SubscriberListener<K>) => {
    subscriber.on(name, listener);
    stops.push(() => subscriber.off(name, listener));
  };

  listen('request:sent', ({ subscription, mode }) =>
    write({
      subscriptionId: subscription.id,
      kind: 'request',
      level: 'info',
      message: `Sent a ${mode} request to the hub`,
    }),
  );
  listen('hub:answered', ({ subscription, mode, status, error }) =>
    write({
      subscriptionId: subscription.id,
      kind: 'hub',
      level: error === null ? 'success' : 'error',
      message:
        error === null
          ? `The hub accepted the ${mode} request (${status})`
          : `The ${mode} request failed: ${error}`,
    }),
  );
  listen('verified', ({ subscription, mode, leaseSeconds }) =>
    write({
      subscriptionId: subscription.id,
      kind: 'verification',
      level: 'success',
      message:
        mode === 'subscribe'
          ? `The hub verified the subscription (lease ${leaseSeconds ?? 'unknown'} s)`
          : 'The hub verified the unsubscription',
    }),
  );
  listen('verification:refused', ({ subscriptionId, mode, reason }) =>
    write({
      subscriptionId,
      kind: 'verification',
      level: 'error',
      message: `Refused a verification${mode ? ` (hub.mode ${mode})` : ''}: ${reason}`,
    }),
  );
  listen('denied', ({ subscription, reason }) =>
    write({
      subscriptionId: subscription.id,
      kind: 'verification',
      level: 'error',
      message: `The hub denied the subscription${reason ? `: ${reason}` : ' (no reason given)'}`,
    }),
  );
  listen('delivery:accepted', ({ subscription, bytes }) =>
    write({
      subscriptionId: subscription.id,
      kind: 'delivery',
      level: 'success',
      message: `Accepted content (${bytes} bytes)`,
      delivery: 'accepted',
    }),
  );
  listen('delivery:rejected', ({ subscriptionId, reason }) =>
    write({
      // Anyone may post to an unknown id: count it, but keep no history for it.
      subscriptionId: reason === 'unknown_subscription' ? null : subscriptionId,
      kind: 'delivery',
      level: 'error',
      message: `Refused content: ${REJECTION_TEXT[reason] ?? reason}`,
      delivery: 'rejected',
    }),
  );
  listen('delivery:handled', ({ subscription, durationMs }) =>
    write({
      subscriptionId: subscription.id,
      kind: 'handler',
      level: 'success',
      message: `Handler ${subscription.handler} finished in ${Math.round(durationMs)} ms`,
    }),
  );
  listen('handler:failed', ({ subscriptionId, error, final }) =>
    write({
      subscriptionId,
      kind: 'handler',
      level: 'error',
      message: `The handler failed${final ? ' for the last time' : ''}: ${errorText(error)}`,
    }),
  );
  listen('lease:renewing', ({ subscription }) =>
    write({
      subscriptionId: subscription.id,
      kind: 'lease',
      level: 'info',
      message: 'Renewing the lease before it ends',
    }),
  );
  listen('subscription:moved', ({ from, to }) => {
    const moved = { kind: 'lease', level: 'info' } as const;
    const away = `The topic moved to ${to.hub}; unsubscribing here`;
    write({ ...moved, subscriptionId: from.id, message: away });
    write({ ...moved, subscriptionId: to.id, message: `Moved here from ${from.hub}` });
  });
  listen('retry:scheduled', ({ subscription, retryAt }) =>
    write({
      subscriptionId: subscription.id,
      kind: 'retry',
      level: 'info',
      message: `Retry scheduled for ${retryAt.toISOString()}`,
    }),
  );
  listen('retry:gave-up', ({ subscription, reason }) =>
    write({ subscriptionId: subscription.id, kind: 'retry', level: 'error', message: reason }),
  );

  return () => {
    for (const stop of stops.splice(0)) stop();
  };
}

import {
  InvalidInputError,
  silentLogger,
  SUBSCRIBE_STATUSES,
  type DeliveryRejection,
  type Logger,
  type Subscriber,
  type SubscriberEvents,
  type SubscriberListener,
  type SubscriptionFilter,
} from '@websubsub/core';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import { findEarliestLeaseEnd } from './earliest-lease.js';

/** Options of `createMetrics`. */
export interface MetricsOptions {
  /** The subscriber whose events and store the metrics describe. */
  subscriber: Subscriber;
  /** Where the metrics are registered. @default a new `Registry` */
  registry?: Registry;
  /** Put before every metric name. @default 'websubsub_' */
  prefix?: string;
  /**
   * How long the gauges read from the store (subscriptions by status, earliest lease end) are
   * reused before the store is asked again; scrapes in between cost nothing. @default 15000
   */
  storeCacheMs?: number;
  /** Bucket bounds of the handler duration histogram, in seconds. @default 0.005 … 30 */
  handlerDurationBuckets?: number[];
  /** Also register prom-client's default process and Node.js metrics (no prefix). @default false */
  defaultMetrics?: boolean;
  /** Told when the store cannot be read for the gauges. @default silent */
  logger?: Logger;
  /** The clock. @default () => new Date() */
  now?: () => Date;
}

/** The metrics of one subscriber, registered on `registry`. */
export interface SubscriberMetrics {
  /** The registry the metrics are on: serve `registry.metrics()` at `/metrics`. */
  readonly registry: Registry;
  /** Read the store now for the store gauges, whatever the cache says. */
  refresh(): Promise<void>;
  /** Stop listening to the subscriber and remove these metrics from the registry. */
  close(): void;
}

/** The status label of `subscriptions`: a subscribe status, or where an unsubscribe stands. */
export type SubscriptionStatusLabel =
  (typeof SUBSCRIBE_STATUSES)[number] | 'unsubscribing' | 'unsubscribed';

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const REJECTIONS: DeliveryRejection[] = [
  'unknown_subscription',
  'ended',
  'too_large',
  'duplicate',
  'queue_unavailable',
  'missing',
  'malformed',
  'unsupported_algorithm',
  'mismatch',
];

/** One filter per status label; together they count every record exactly once. */
const STATUS_FILTERS: Array<[SubscriptionStatusLabel, SubscriptionFilter]> = [
  ...SUBSCRIBE_STATUSES.map((status): [SubscriptionStatusLabel, SubscriptionFilter] => [
    status,
    { subscribeStatus: status, unsubscribeStatus: null },
  ]),
  [
    'unsubscribing',
    { unsubscribeStatus: ['requesting', 'connerror', 'huberror', 'verifying', 'verifyerror'] },
  ],
  ['unsubscribed', { unsubscribeStatus: 'verified' }],
];

interface StoreSnapshot {
  counts: Map<SubscriptionStatusLabel, number>;
  earliestLeaseEnd: number | null;
  takenAt: number;
}

/**
 * Register Prometheus metrics for a subscriber: counters and a histogram fed by its lifecycle
 * events, and gauges read from its store when scraped (cached for `storeCacheMs`). Throws
 * `InvalidInputError` for bad options; prom-client throws when the registry already holds a
 * metric of the same name (use another `prefix` for a second subscriber).
 */
export function createMetrics(options: MetricsOptions): SubscriberMetrics {
  const { subscriber } = options;
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'websubsub_';
  const storeCacheMs = options.storeCacheMs ?? 15_000;
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? (() => new Date());
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) {
    throw new InvalidInputError(`Metric prefix ${prefix} is not a valid Prometheus name start`);
  }
  if (!Number.isFinite(storeCacheMs) || storeCacheMs < 0) {
    throw new InvalidInputError('storeCacheMs must be zero or a positive number');
  }

  const registers = [registry];
  const names: string[] = [];
  const named = (suffix: string): string => {
    names.push(`${prefix}${suffix}`);
    return `${prefix}${suffix}`;
  };

  const deliveries = new Counter({
    name: named('deliveries_total'),
    help: 'Content sent to callbacks, by outcome: accepted, or why it was refused or ignored',
    labelNames: ['outcome'] as const,
    registers,
  });
  const hubRequests = new Counter({
    name: named('hub_requests_total'),
    help:
      'Subscribe and unsubscribe requests answered by hubs, by HTTP status ' +
      '(connection_error when none came)',
    labelNames: ['mode', 'status'] as const,
    registers,
  });
  const verifications = new Counter({
    name: named('verifications_total'),
    help:
      'Intent verifications and denials received from hubs, by mode and outcome ' +
      '(verified, refused, denied)',
    labelNames: ['mode', 'outcome'] as const,
    registers,
  });
  const handlerDuration = new Histogram({
    name: named('handler_duration_seconds'),
    help: 'Time handlers took with content they finished, by handler',
    labelNames: ['handler'] as const,
    buckets: options.handlerDurationBuckets ?? DEFAULT_BUCKETS,
    registers,
  });
  const handlerFailures = new Counter({
    name: named('handler_failures_total'),
    help:
      'Handler failures reported by the subscriber; ' +
      'final="true" when the queue gave the content up',
    labelNames: ['final'] as const,
    registers,
  });
  const leaseRenewals = new Counter({
    name: named('lease_renewals_total'),
    help: 'Verified subscriptions renewed before their lease ended',
    registers,
  });
  const retriesScheduled = new Counter({
    name: named('retries_scheduled_total'),
    help: 'Failed hub requests scheduled to be retried',
    registers,
  });
  const gaveUp = new Counter({
    name: named('retries_given_up_total'),
    help: 'Subscriptions that reached a maximum of retries and are no longer retried by themselves',
    registers,
  });
  const refreshFailures = new Counter({
    name: named('store_read_failures_total'),
    help: 'Scrapes whose store gauges could not be read; the previous values were kept',
    registers,
    // Read (or reuse) the store first, so that a failure of this very scrape is counted in it.
    async collect() {
      await currentSnapshot(false);
    },
  });

  // Every known label value starts at zero, so that rates and alerts work before the first event.
  deliveries.labels('accepted').inc(0);
  for (const reason of REJECTIONS) deliveries.labels(reason).inc(0);
  for (const mode of ['subscribe', 'unsubscribe']) {
    verifications.labels(mode, 'verified').inc(0);
    verifications.labels(mode, 'refused').inc(0);
  }
  verifications.labels('subscribe', 'denied').inc(0);
  handlerFailures.labels('true').inc(0);
  for (const handler of subscriber.settings.handlers.keys()) handlerDuration.zero({ handler });

  let snapshot: StoreSnapshot | null = null;
  let reading: Promise<StoreSnapshot | null> | null = null;

  const readStore = async (): Promise<StoreSnapshot | null> => {
    try {
      const counts = await Promise.all(
        STATUS_FILTERS.map(
          async ([label, filter]) => [label, await subscriber.store.count(filter)] as const,
        ),
      );
      const takenAt = now().getTime();
      const earliestLeaseEnd = await findEarliestLeaseEnd(subscriber.store, takenAt);
      snapshot = { counts: new Map(counts), earliestLeaseEnd, takenAt };
    } catch (error) {
      refreshFailures.inc();
      logger.warn({ error }, 'Could not read the store for the subscription gauges');
    }
    return snapshot;
  };

  // Concurrent scrapes share one read; a fresh enough snapshot is served as it is.
  const currentSnapshot = (force: boolean): Promise<StoreSnapshot | null> => {
    const fresh = snapshot !== null && now().getTime() - snapshot.takenAt < storeCacheMs;
    if (fresh && !force) return Promise.resolve(snapshot);
    reading ??= readStore().finally(() => {
      reading = null;
    });
    return reading;
  };

  const subscriptions = new Gauge({
    name: named('subscriptions'),
    help: 'Subscriptions in the store, by status (read from the store when scraped, cached)',
    labelNames: ['status'] as const,
    registers,
    async collect() {
      const current = await currentSnapshot(false);
      if (!current) return;
      for (const [label, count] of current.counts) this.labels(label).set(count);
    },
  });
  const earliestLease = new Gauge({
    name: named('earliest_lease_remaining_seconds'),
    help:
      'Seconds until the earliest lease of a verified subscription ends; ' +
      'negative once past, +Inf when none',
    registers,
    async collect() {
      const current = await currentSnapshot(false);
      if (!current) return;
      const end = current.earliestLeaseEnd;
      this.set(end === null ? Infinity : (end - now().getTime()) / 1000);
    },
  });

  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });

  const listeners: Array<() => void> = [];
  const listen = <K extends keyof SubscriberEvents>(name: K, listener: SubscriberListener<K>) => {
    subscriber.on(name, listener);
    listeners.push(() => subscriber.off(name, listener));
  };

  listen('delivery:accepted', () => deliveries.labels('accepted').inc());
  listen('delivery:rejected', ({ reason }) => deliveries.labels(reason).inc());
  listen('hub:answered', ({ mode, status }) =>
    hubRequests.labels(mode, status === null ? 'connection_error' : String(status)).inc(),
  );
  listen('verified', ({ mode }) => verifications.labels(mode, 'verified').inc());
  // The mode of a refused verification is whatever the request said: keep the label bounded.
  listen('verification:refused', ({ mode }) =>
    verifications
      .labels(mode === 'subscribe' || mode === 'unsubscribe' ? mode : 'other', 'refused')
      .inc(),
  );
  listen('denied', () => verifications.labels('subscribe', 'denied').inc());
  listen('delivery:handled', ({ subscription, durationMs }) =>
    handlerDuration.labels(subscription.handler).observe(durationMs / 1000),
  );
  listen('handler:failed', ({ final }) => handlerFailures.labels(String(final)).inc());
  listen('lease:renewing', () => leaseRenewals.inc());
  listen('retry:scheduled', () => retriesScheduled.inc());
  listen('retry:gave-up', () => gaveUp.inc());

  return {
    registry,
    async refresh() {
      await currentSnapshot(true);
    },
    close() {
      for (const stop of listeners.splice(0)) stop();
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}

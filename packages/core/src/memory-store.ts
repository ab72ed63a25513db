import { DuplicateSubscriptionError, InvalidInputError } from './errors.js';
import type {
  Page,
  PageOptions,
  SubscriptionFilter,
  SubscriptionStore,
  Transition,
  TransitionCondition,
} from './store.js';
import { matches } from './store.js';
import type { Subscription, SubscriptionCounter } from './subscription.js';
import { TimeIndex } from './time-index.js';

const DEFAULT_PAGE = 100;
const COUNTERS = new Set<string>([
  'connectionErrors',
  'hubErrors',
  'verifyTimeouts',
  'verifyErrors',
]);

/** Options of the in-process store. */
export interface MemoryStoreOptions {
  /** Records to start with, e.g. restored from a snapshot. @default [] */
  initial?: Subscription[];
}

/**
 * A copy sharing nothing with the original: every field is a primitive but the dates. Each date
 * is named, not looked up from a list of names: this runs twice per delivery.
 */
function copy(subscription: Subscription): Subscription {
  return {
    ...subscription,
    createdAt: new Date(subscription.createdAt.getTime()),
    leaseExpiresAt: copyDate(subscription.leaseExpiresAt),
    lastSubscribeAt: copyDate(subscription.lastSubscribeAt),
    lastUnsubscribeAt: copyDate(subscription.lastUnsubscribeAt),
    lastDeliveryAt: copyDate(subscription.lastDeliveryAt),
    retryAt: copyDate(subscription.retryAt),
  };
}

const copyDate = (date: Date | null): Date | null =>
  date === null ? null : new Date(date.getTime());

const keyOf = (hub: string, topic: string, handler: string): string =>
  JSON.stringify([hub, topic, handler]);

function holds(record: Subscription, when: TransitionCondition | undefined): boolean {
  if (!when) return true;
  return (
    matches(record.subscribeStatus, when.subscribeStatus) &&
    matches(record.unsubscribeStatus, when.unsubscribeStatus) &&
    matches(record.topic, when.topic) &&
    matches(record.handler, when.handler)
  );
}

function passes(record: Subscription, filter: SubscriptionFilter): boolean {
  return (
    matches(record.handler, filter.handler) &&
    matches(record.hub, filter.hub) &&
    matches(record.topic, filter.topic) &&
    matches(record.subscribeStatus, filter.subscribeStatus) &&
    matches(record.unsubscribeStatus, filter.unsubscribeStatus) &&
    matches(record.static, filter.static)
  );
}

/**
 * The embedded store: records in a `Map`, kept for the life of the process. Every method copies
 * what goes in and out, so callers never share objects with the store. Lookups by key and
 * the sorted id index keep paging cheap for hundreds of thousands of records.
 */
export class MemoryStore implements SubscriptionStore {
  private readonly records = new Map<string, Subscription>();
  private readonly byKey = new Map<string, string>();
  private sortedIds: string[] | null = null;
  private readonly leases = new TimeIndex();
  private readonly retries = new TimeIndex();
  private dueCache: { index: TimeIndex; limit: number; ids: string[] } | null = null;

  constructor(options: MemoryStoreOptions = {}) {
    for (const record of options.initial ?? []) {
      this.records.set(record.id, copy(record));
      this.byKey.set(keyOf(record.hub, record.topic, record.handler), record.id);
      this.index(record);
    }
  }

  async create(subscription: Subscription): Promise<Subscription> {
    const key = keyOf(subscription.hub, subscription.topic, subscription.handler);
    if (this.byKey.has(key) || this.records.has(subscription.id)) {
      throw new DuplicateSubscriptionError(
        subscription.hub,
        subscription.topic,
        subscription.handler,
      );
    }

    this.records.set(subscription.id, copy(subscription));
    this.byKey.set(key, subscription.id);
    this.index(subscription);
    this.sortedIds = null;
    return copy(subscription);
  }

  async get(id: string): Promise<Subscription | null> {
    const record = this.records.get(id);
    return record ? copy(record) : null;
  }

  async findByKey(hub: string, topic: string, handler: string): Promise<Subscription | null> {
    const id = this.byKey.get(keyOf(hub, topic, handler));
    return id === undefined ? null : this.get(id);
  }

  async transition(id: string, transition: Transition): Promise<Subscription | null> {
    const record = this.records.get(id);
    if (!record || !holds(record, transition.when)) return null;

    const changes = Object.entries(transition.set ?? {}).filter(([, value]) => value !== undefined);
    const next: Subscription = { ...record };
    for (const [field, value] of changes) {
      (next as unknown as Record<string, unknown>)[field] =
        value instanceof Date ? new Date(value.getTime()) : value;
    }
    const increments = Object.entries(transition.increment ?? {}) as Array<
      [SubscriptionCounter, number]
    >;
    for (const [counter, by] of increments) {
      if (!COUNTERS.has(counter) || !Number.isFinite(by)) {
        throw new InvalidInputError(`Cannot increment ${counter} by ${by}`);
      }
      next[counter] = record[counter] + by;
    }
    next.id = record.id;
    next.createdAt = record.createdAt;

    const oldKey = keyOf(record.hub, record.topic, record.handler);
    const newKey = keyOf(next.hub, next.topic, next.handler);
    if (oldKey !== newKey) {
      if (this.byKey.has(newKey))
        throw new DuplicateSubscriptionError(next.hub, next.topic, next.handler);
      this.byKey.delete(oldKey);
      this.byKey.set(newKey, id);
    }

    this.records.set(id, next);
    this.index(next);
    return copy(next);
  }

  async delete(id: string): Promise<boolean> {
    const record = this.records.get(id);
    if (!record) return false;

    this.records.delete(id);
    this.byKey.delete(keyOf(record.hub, record.topic, record.handler));
    this.leases.delete(id);
    this.retries.delete(id);
    this.sortedIds = null;
    return true;
  }

  async list(filter: SubscriptionFilter = {}, page: PageOptions = {}): Promise<Page> {
    return this.scan((record) => passes(record, filter), page);
  }

  async findLeasesEndingBefore(before: Date, page: PageOptions = {}): Promise<Page> {
    return this.duePage(this.leases, before.getTime(), false, page);
  }

  async findDueForRetry(now: Date, page: PageOptions = {}): Promise<Page> {
    return this.duePage(this.retries, now.getTime(), true, page);
  }

  async count(filter: SubscriptionFilter = {}): Promise<number> {
    let total = 0;
    for (const record of this.records.values()) if (passes(record, filter)) total++;
    return total;
  }

  /** Keep the upkeep indexes in step with a record. */
  private index(record: Subscription): void {
    const renewable =
      record.subscribeStatus === 'verified' &&
      record.unsubscribeStatus === null &&
      record.leaseExpiresAt !== null;
    this.leases.set(record.id, renewable ? (record.leaseExpiresAt as Date).getTime() : null);
    this.retries.set(record.id, record.retryAt === null ? null : record.retryAt.getTime());
  }

  /**
   * One page, in id order, of the ids an index finds due. The first page sorts the due ids and
   * keeps them; the pages after it continue from the cursor in that list, skipping ids that
   * stopped being due meanwhile. A sweep thus costs about its due records, not the total.
   */
  private duePage(index: TimeIndex, limit: number, inclusive: boolean, page: PageOptions): Page {
    const size = checkLimit(page.limit);
    const cached = this.dueCache;
    const reuse = page.after !== undefined && cached?.index === index && cached.limit === limit;
    const sorted = reuse ? cached.ids : index.due(limit, inclusive).sort();
    if (!reuse) this.dueCache = { index, limit, ids: sorted };

    const items: Subscription[] = [];
    let position = page.after === undefined ? 0 : firstAfter(sorted, page.after);
    for (; position < sorted.length && items.length < size; position++) {
      const id = sorted[position] as string;
      if (!index.isDue(id, limit, inclusive)) continue;
      items.push(copy(this.records.get(id) as Subscription));
    }

    const more = items.length === size && position < sorted.length;
    return { items, next: more ? (items[items.length - 1] as Subscription).id : null };
  }

  /** Walks ids in order from the cursor, so a page costs its own size plus the records skipped. */
  private scan(accept: (record: Subscription) => boolean, page: PageOptions): Page {
    const limit = checkLimit(page.limit);
    const ids = this.ids();
    const items: Subscription[] = [];
    let index = page.after === undefined ? 0 : firstAfter(ids, page.after);

    for (; index < ids.length && items.length < limit; index++) {
      const record = this.records.get(ids[index] as string) as Subscription;
      if (accept(record)) items.push(copy(record));
    }

    const more = items.length === limit && index < ids.length;
    return { items, next: more ? (items[items.length - 1] as Subscription).id : null };
  }

  private ids(): string[] {
    this.sortedIds ??= [...this.records.keys()].sort();
    return this.sortedIds;
  }
}

function checkLimit(limit: number | undefined): number {
  const value = limit ?? DEFAULT_PAGE;
  if (!Number.isInteger(value) || value <= 0) {
    throw new InvalidInputError(`Page limit must be a positive whole number, got ${value}`);
  }
  return value;
}

function firstAfter(sorted: string[], after: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] as string) <= after) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Create the embedded in-process store. */
export function createMemoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options);
}

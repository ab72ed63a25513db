import {
  AdapterError,
  DuplicateSubscriptionError,
  InvalidInputError,
  silentLogger,
  type Logger,
  type Match,
  type Page,
  type PageOptions,
  type Subscription,
  type SubscriptionChanges,
  type SubscriptionCounter,
  type SubscriptionFilter,
  type SubscriptionStore,
  type Transition,
} from '@websubsub/core';
import type {
  Collection,
  Db,
  Filter,
  IndexDescription,
  MatchKeysAndValues,
  MongoClient,
  UpdateFilter,
} from 'mongodb';

import {
  DOCUMENT_FIELDS,
  fromDocument,
  toDocument,
  type SubscriptionDocument,
} from './documents.js';

/** The collection a store uses when given none. */
export const DEFAULT_COLLECTION = 'websubsub_subscriptions';

/** Options of `createMongoStore`. Give `db` or `client`. */
export interface MongoStoreOptions {
  /** A database handle of the application's connected client. */
  db?: Db;
  /** The application's client, connected or not; the store never closes it. */
  client?: MongoClient;
  /**
   * The database to use on `client`. @default the database named in the client's connection string
   */
  database?: string;
  /** The collection that holds the subscriptions. @default 'websubsub_subscriptions' */
  collection?: string;
  /**
   * Create the indexes before the first operation. Turn off when a deploy step calls
   * `ensureIndexes`. @default true
   */
  ensureIndexes?: boolean;
  /** Where the store reports the indexes it created. @default silentLogger */
  logger?: Logger;
}

/** The indexes the store needs; `createIndexes` leaves those already there alone. */
const INDEXES: readonly IndexDescription[] = [
  { name: 'websubsub_key', key: { hub: 1, topic: 1, handler: 1 }, unique: true },
  {
    name: 'websubsub_lease',
    key: { subscribeStatus: 1, unsubscribeStatus: 1, leaseExpiresAt: 1 },
  },
  { name: 'websubsub_retry', key: { retryAt: 1 } },
  { name: 'websubsub_handler', key: { handler: 1, _id: 1 } },
];

const DEFAULT_PAGE = 100;
const WRITABLE = new Set<string>(DOCUMENT_FIELDS.filter((field) => field !== 'createdAt'));
const COUNTERS = new Set<string>([
  'connectionErrors',
  'hubErrors',
  'verifyTimeouts',
  'verifyErrors',
] satisfies SubscriptionCounter[]);

/** A `Match` as a query value: a list becomes `$in`, in which `null` also matches null. */
function condition<T>(match: Match<T>): T | { $in: T[] } {
  return Array.isArray(match) ? { $in: [...(match as readonly T[])] } : (match as T);
}

function toQuery(filter: SubscriptionFilter): Filter<SubscriptionDocument> {
  const query: Filter<SubscriptionDocument> = {};
  if (filter.handler !== undefined) query.handler = filter.handler;
  if (filter.hub !== undefined) query.hub = filter.hub;
  if (filter.topic !== undefined) query.topic = filter.topic;
  if (filter.subscribeStatus !== undefined) {
    query.subscribeStatus = condition(filter.subscribeStatus);
  }
  if (filter.unsubscribeStatus !== undefined) {
    query.unsubscribeStatus = condition(filter.unsubscribeStatus);
  }
  if (filter.static !== undefined) query.static = filter.static;
  return query;
}

/** `$set` for the fields given; `id`, `createdAt` and `undefined` values are left alone. */
function toSet(changes: SubscriptionChanges): MatchKeysAndValues<SubscriptionDocument> | null {
  const set: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(changes)) {
    if (value !== undefined && WRITABLE.has(field)) set[field] = value;
  }
  return Object.keys(set).length === 0 ? null : (set as MatchKeysAndValues<SubscriptionDocument>);
}

function toIncrement(increment: Transition['increment']): Record<string, number> | null {
  const inc: Record<string, number> = {};
  for (const [counter, by] of Object.entries(increment ?? {})) {
    if (by === undefined) continue;
    if (!COUNTERS.has(counter)) {
      throw new InvalidInputError(`Unknown counter ${JSON.stringify(counter)}`);
    }
    if (!Number.isSafeInteger(by)) {
      throw new InvalidInputError(`Counter ${counter} must be incremented by an integer`);
    }
    inc[counter] = by;
  }
  return Object.keys(inc).length === 0 ? null : inc;
}

function pageLimit(page: PageOptions): number {
  const limit = page.limit ?? DEFAULT_PAGE;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new InvalidInputError(`A page limit must be a positive integer, not ${limit}`);
  }
  return limit;
}

/** E11000, from `MongoServerError` and `MongoBulkWriteError` alike. */
const isDuplicateKey = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message || error.name : String(error);

/**
 * A `SubscriptionStore` in one MongoDB collection. Each change is one `findOneAndUpdate` whose
 * filter carries the transition's condition, so concurrent transitions of a record apply only
 * while it still holds: MongoDB updates a single document atomically. Create it with
 * `createMongoStore`.
 */
export class MongoStore implements SubscriptionStore {
  /** The collection, for queries of the application's own. */
  readonly collection: Collection<SubscriptionDocument>;
  private readonly autoIndex: boolean;
  private readonly logger: Logger;
  private indexed = false;
  private indexing: Promise<void> | null = null;

  constructor(options: MongoStoreOptions) {
    if (options.db && options.client) {
      throw new InvalidInputError('Give the MongoDB store a db or a client, not both');
    }
    const db = options.db ?? options.client?.db(options.database);
    if (!db) throw new InvalidInputError('The MongoDB store needs a db or a client');

    this.collection = db.collection<SubscriptionDocument>(options.collection ?? DEFAULT_COLLECTION);
    this.autoIndex = options.ensureIndexes ?? true;
    this.logger = options.logger ?? silentLogger;
  }

  /** Create the unique key and the indexes of the upkeep queries, where missing. */
  async ensureIndexes(): Promise<void> {
    try {
      const names = await this.collection.createIndexes(structuredClone([...INDEXES]));
      this.logger.debug(
        { collection: this.collection.collectionName, indexes: names },
        'subscription indexes in place',
      );
    } catch (error) {
      throw new AdapterError(
        'mongodb',
        `creating the indexes of ${this.collection.collectionName} failed: ${messageOf(error)}`,
        error,
      );
    }
    this.indexed = true;
  }

  async create(subscription: Subscription): Promise<Subscription> {
    const document = toDocument(subscription);

    await this.execute(
      'create',
      () => this.collection.insertOne(document),
      async () =>
        new DuplicateSubscriptionError(subscription.hub, subscription.topic, subscription.handler),
    );

    return fromDocument(document);
  }

  async get(id: string): Promise<Subscription | null> {
    const document = await this.execute('get', () => this.collection.findOne({ _id: id }));
    return document ? fromDocument(document) : null;
  }

  async findByKey(hub: string, topic: string, handler: string): Promise<Subscription | null> {
    const document = await this.execute('findByKey', () =>
      this.collection.findOne({ hub, topic, handler }),
    );
    return document ? fromDocument(document) : null;
  }

  async transition(id: string, transition: Transition): Promise<Subscription | null> {
    const query: Filter<SubscriptionDocument> = { ...toQuery(transition.when ?? {}), _id: id };
    const set = toSet(transition.set ?? {});
    const inc = toIncrement(transition.increment);

    // MongoDB refuses an update without operators: with nothing to change, read instead.
    const update: UpdateFilter<SubscriptionDocument> = {};
    if (set) update.$set = set;
    if (inc) update.$inc = inc;
    const document = await this.execute(
      'transition',
      () =>
        set || inc
          ? this.collection.findOneAndUpdate(query, update, {
              returnDocument: 'after',
              includeResultMetadata: false,
            })
          : this.collection.findOne(query),
      () => this.duplicateOf(id, transition.set ?? {}),
    );

    return document ? fromDocument(document) : null;
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.execute('delete', () => this.collection.deleteOne({ _id: id }));
    return result.deletedCount > 0;
  }

  async list(filter: SubscriptionFilter = {}, page: PageOptions = {}): Promise<Page> {
    return this.page('list', toQuery(filter), page);
  }

  async findLeasesEndingBefore(before: Date, page: PageOptions = {}): Promise<Page> {
    // `$lt` against a date matches dates only, so records without a lease expiry stay out.
    const query: Filter<SubscriptionDocument> = {
      subscribeStatus: 'verified',
      unsubscribeStatus: null,
      leaseExpiresAt: { $lt: before },
    };
    return this.page('findLeasesEndingBefore', query, page);
  }

  async findDueForRetry(now: Date, page: PageOptions = {}): Promise<Page> {
    return this.page('findDueForRetry', { retryAt: { $lte: now } }, page);
  }

  async count(filter: SubscriptionFilter = {}): Promise<number> {
    return this.execute('count', () => this.collection.countDocuments(toQuery(filter)));
  }

  /** Nothing to release: the client belongs to the application, which closes it. */
  async close(): Promise<void> {}

  /**
   * One page in `_id` order; asks for one document more than the page to know whether another
   * follows.
   */
  private async page(
    operation: string,
    query: Filter<SubscriptionDocument>,
    page: PageOptions,
  ): Promise<Page> {
    const limit = pageLimit(page);
    const paged: Filter<SubscriptionDocument> =
      page.after === undefined ? query : { ...query, _id: { $gt: page.after } };

    const documents = await this.execute(operation, () =>
      this.collection
        .find(paged)
        .sort({ _id: 1 })
        .limit(limit + 1)
        .toArray(),
    );

    const items = documents.slice(0, limit).map(fromDocument);
    const last = items[items.length - 1];
    return { items, next: documents.length > limit && last ? last.id : null };
  }

  /** Names the key a transition collided on, from the changes and the record as it stands. */
  private async duplicateOf(
    id: string,
    changes: SubscriptionChanges,
  ): Promise<DuplicateSubscriptionError> {
    const current = await this.get(id).catch(() => null);
    return new DuplicateSubscriptionError(
      changes.hub ?? current?.hub ?? '',
      changes.topic ?? current?.topic ?? '',
      changes.handler ?? current?.handler ?? '',
    );
  }

  /** Run one operation after the indexes; E11000 becomes `duplicate()`, the rest `AdapterError`. */
  private async execute<T>(
    operation: string,
    work: () => Promise<T>,
    duplicate?: () => Promise<DuplicateSubscriptionError>,
  ): Promise<T> {
    await this.ready();

    try {
      return await work();
    } catch (error) {
      if (duplicate && isDuplicateKey(error)) throw await duplicate();
      throw new AdapterError('mongodb', `${operation} failed: ${messageOf(error)}`, error);
    }
  }

  /** Creates the indexes once, before the first operation; a failure is tried again next time. */
  private async ready(): Promise<void> {
    if (this.indexed || !this.autoIndex) return;

    this.indexing ??= this.ensureIndexes().finally(() => {
      this.indexing = null;
    });
    await this.indexing;
  }
}

/** Create a subscription store over MongoDB, on the application's own client or database. */
export function createMongoStore(options: MongoStoreOptions): MongoStore {
  return new MongoStore(options);
}

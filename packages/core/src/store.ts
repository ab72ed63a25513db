import type {
  Subscription,
  SubscribeStatus,
  SubscriptionCounter,
  UnsubscribeStatus,
} from './subscription.js';

/** A condition on one field: the value itself, or any of several values. */
export type Match<T> = T | readonly T[];

/**
 * What a compare-and-set requires of the stored record. Every field given must match;
 * `unsubscribeStatus: null` matches a record that has no unsubscribe request.
 */
export interface TransitionCondition {
  subscribeStatus?: Match<SubscribeStatus>;
  unsubscribeStatus?: Match<UnsubscribeStatus | null>;
  topic?: string;
  handler?: string;
}

/** Fields a transition may write. `id` and `createdAt` never change. */
export type SubscriptionChanges = Partial<Omit<Subscription, 'id' | 'createdAt'>>;

/** One atomic change to one record: set fields and add to counters when the condition holds. */
export interface Transition {
  /** Must hold on the stored record for the change to apply. Omitted: always applies. */
  when?: TransitionCondition;
  /** Fields to set. */
  set?: SubscriptionChanges;
  /** Counters to add to (usually by 1). */
  increment?: Partial<Record<SubscriptionCounter, number>>;
}

/** Filters for listing; every field given must match. */
export interface SubscriptionFilter {
  handler?: string;
  hub?: string;
  topic?: string;
  subscribeStatus?: Match<SubscribeStatus>;
  unsubscribeStatus?: Match<UnsubscribeStatus | null>;
  static?: boolean;
}

/** Paging by id: records come in ascending id order, starting after `after`. */
export interface PageOptions {
  /** Return records whose id sorts after this one. */
  after?: string;
  /** Largest page size. @default 100 */
  limit?: number;
}

/** One page of records and the cursor for the next, `null` after the last page. */
export interface Page {
  items: Subscription[];
  next: string | null;
}

/**
 * Where subscriptions live. Every method is async and answers `null` for "not there".
 * Every change goes through `transition`, an atomic compare-and-set, so that verifications,
 * denials and tasks racing each other on one record end in the right state.
 */
export interface SubscriptionStore {
  /** Store a new record. Throws `DuplicateSubscriptionError` when (hub, topic, handler) exists. */
  create(subscription: Subscription): Promise<Subscription>;
  /** The record with this id, or `null`. */
  get(id: string): Promise<Subscription | null>;
  /** The record for this (hub, topic, handler), or `null`. */
  findByKey(hub: string, topic: string, handler: string): Promise<Subscription | null>;
  /** Apply one atomic change; the updated record, or `null` when absent or the condition failed. */
  transition(id: string, transition: Transition): Promise<Subscription | null>;
  /** Remove a record; `true` when it existed. */
  delete(id: string): Promise<boolean>;
  /** Records matching the filter, one page at a time in ascending id order. */
  list(filter?: SubscriptionFilter, page?: PageOptions): Promise<Page>;
  /**
   * Verified, not unsubscribing records whose lease ends before `before` (already expired ones
   * included), in ascending id order. Records without a known lease expiry are not returned.
   */
  findLeasesEndingBefore(before: Date, page?: PageOptions): Promise<Page>;
  /** Records whose `retryAt` is at or before `now`, in ascending id order. */
  findDueForRetry(now: Date, page?: PageOptions): Promise<Page>;
  /** Count records matching the filter. */
  count(filter?: SubscriptionFilter): Promise<number>;
  /** Release what the store opened itself (never a client the user passed in). */
  close?(): Promise<void>;
}

/** Does a value satisfy a `Match`? Shared by stores that filter in JavaScript. */
export function matches<T>(value: T, match: Match<T> | undefined): boolean {
  if (match === undefined) return true;
  if (Array.isArray(match)) return (match as readonly T[]).includes(value);
  return value === match;
}

/** A lock held by this process, until it expires or is released. */
export interface HeldLock {
  /** The key it locks. */
  readonly key: string;
  /** Push the expiry to `ttlMs` from now; throws `LockLostError` if the lock was lost. */
  extend(ttlMs: number): Promise<void>;
  /** Let go; releasing an expired or already released lock does nothing. */
  release(): Promise<void>;
}

/**
 * Mutual exclusion across every process that shares the provider, so that no two workers send
 * the same hub request or apply the same change at once. Locks expire after their time to
 * live, so that a crashed holder never blocks a subscription for good.
 */
export interface LockProvider {
  /** Take the lock on `key` for `ttlMs`, or resolve `null` at once when someone else holds it. */
  acquire(key: string, ttlMs: number): Promise<HeldLock | null>;
  /** Release what the provider opened itself. */
  close?(): Promise<void>;
}

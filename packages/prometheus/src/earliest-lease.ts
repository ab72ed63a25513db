import type { SubscriptionStore } from '@websubsub/core';

/** How far either side of now the search looks, in milliseconds: ten years. */
export const LEASE_SEARCH_HORIZON_MS = 10 * 365 * 86_400_000;

/** The search stops once the earliest lease end is known to within this many milliseconds. */
const RESOLUTION_MS = 1000;

/**
 * When the earliest lease of a verified, not unsubscribing subscription ends, to within a
 * second, or `null` when no such lease is known. Stores can only say which leases end before a
 * date (in id order), so this bisects time with `findLeasesEndingBefore(date, { limit: 1 })`:
 * each answer either proves nothing ends before the date or names a record whose end is a new
 * upper bound. About 30 one-record queries, whatever the number of subscriptions; a lease
 * that ended more than the horizon ago is reported as ending at the horizon.
 */
export async function findEarliestLeaseEnd(
  store: SubscriptionStore,
  now: number,
  horizonMs: number = LEASE_SEARCH_HORIZON_MS,
): Promise<number | null> {
  const firstEndingBefore = async (time: number): Promise<number | null> => {
    const page = await store.findLeasesEndingBefore(new Date(time), { limit: 1 });
    const record = page.items[0];
    return record?.leaseExpiresAt ? record.leaseExpiresAt.getTime() : null;
  };

  const any = await firstEndingBefore(now + horizonMs);
  if (any === null) return null;
  let low = now - horizonMs;
  if ((await firstEndingBefore(low)) !== null) return low;

  // Nothing ends before `low`; the record at `high` ends at `high`, so the earliest is in between.
  let high = any;
  while (high - low > RESOLUTION_MS) {
    const middle = Math.floor((low + high) / 2);
    const found = await firstEndingBefore(middle);
    if (found === null) low = middle;
    else high = found;
  }
  return high;
}

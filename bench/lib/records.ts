import type { Subscription } from '@websubsub/core';

import { HANDLER, HUB, SECRET, TOPIC } from './delivery.js';

const BASE_URL = 'http://127.0.0.1';

/** The callback base URL the benchmark subscribers are configured with. */
export const baseUrl = BASE_URL;

/**
 * A stored subscription as a verified one looks after a lease was granted: a secret, a lease
 * ending ten days from `now`, nothing to retry.
 */
export function verifiedRecord(
  id: string,
  now: Date,
  overrides: Partial<Subscription> = {},
): Subscription {
  return {
    id,
    topic: TOPIC,
    hub: HUB,
    handler: HANDLER,
    callbackUrl: `${BASE_URL}/websub/${HANDLER}/${id}`,
    retiredCallbackUrl: null,
    secret: SECRET,
    previousSecret: null,
    leaseSeconds: 864_000,
    leaseExpiresAt: new Date(now.getTime() + 10 * 86_400_000),
    subscribeStatus: 'verified',
    unsubscribeStatus: null,
    connectionErrors: 0,
    hubErrors: 0,
    verifyTimeouts: 0,
    verifyErrors: 0,
    lastSubscribeAt: now,
    lastUnsubscribeAt: null,
    createdAt: now,
    lastDeliveryAt: null,
    deniedReason: null,
    lastError: null,
    retryAt: null,
    static: false,
    discoveredFrom: null,
    hubDiscovered: false,
    ...overrides,
  };
}

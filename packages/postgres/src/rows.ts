import type { Subscription, SubscriptionCounter } from '@websubsub/core';

/** The column of each subscription field. */
export const COLUMNS = {
  id: 'id',
  topic: 'topic',
  hub: 'hub',
  handler: 'handler',
  callbackUrl: 'callback_url',
  retiredCallbackUrl: 'retired_callback_url',
  secret: 'secret',
  previousSecret: 'previous_secret',
  leaseSeconds: 'lease_seconds',
  leaseExpiresAt: 'lease_expires_at',
  subscribeStatus: 'subscribe_status',
  unsubscribeStatus: 'unsubscribe_status',
  connectionErrors: 'connection_errors',
  hubErrors: 'hub_errors',
  verifyTimeouts: 'verify_timeouts',
  verifyErrors: 'verify_errors',
  lastSubscribeAt: 'last_subscribe_at',
  lastUnsubscribeAt: 'last_unsubscribe_at',
  createdAt: 'created_at',
  lastDeliveryAt: 'last_delivery_at',
  deniedReason: 'denied_reason',
  lastError: 'last_error',
  retryAt: 'retry_at',
  static: 'static',
  discoveredFrom: 'discovered_from',
  hubDiscovered: 'hub_discovered',
} as const satisfies Record<keyof Subscription, string>;

/** The counters a transition may add to, by column. */
export const COUNTER_COLUMNS = {
  connectionErrors: 'connection_errors',
  hubErrors: 'hub_errors',
  verifyTimeouts: 'verify_timeouts',
  verifyErrors: 'verify_errors',
} as const satisfies Record<SubscriptionCounter, string>;

/** A subscription as `pg` returns its row. */
export type SubscriptionRow = {
  [Field in keyof Subscription as (typeof COLUMNS)[Field]]: Subscription[Field];
};

/** Every field, in the order of `COLUMNS`. */
export const FIELDS = Object.keys(COLUMNS) as Array<keyof Subscription>;

/** The column list every query selects, so that rows never carry columns a later version adds. */
export const SELECT_LIST = Object.values(COLUMNS).join(', ');

// pg parses timestamptz into Date unless the application changed its type parsers globally;
// accept the string form too rather than hand such an application strings typed as dates.
function date(value: Date | string): Date;
function date(value: Date | string | null): Date | null;
function date(value: Date | string | null): Date | null {
  if (value === null || value instanceof Date) return value;
  return new Date(value);
}

/** Turn a row into a record. */
export function fromRow(row: SubscriptionRow): Subscription {
  return {
    id: row.id,
    topic: row.topic,
    hub: row.hub,
    handler: row.handler,
    callbackUrl: row.callback_url,
    retiredCallbackUrl: row.retired_callback_url,
    secret: row.secret,
    previousSecret: row.previous_secret,
    leaseSeconds: row.lease_seconds,
    leaseExpiresAt: date(row.lease_expires_at),
    subscribeStatus: row.subscribe_status,
    unsubscribeStatus: row.unsubscribe_status,
    connectionErrors: row.connection_errors,
    hubErrors: row.hub_errors,
    verifyTimeouts: row.verify_timeouts,
    verifyErrors: row.verify_errors,
    lastSubscribeAt: date(row.last_subscribe_at),
    lastUnsubscribeAt: date(row.last_unsubscribe_at),
    createdAt: date(row.created_at),
    lastDeliveryAt: date(row.last_delivery_at),
    deniedReason: row.denied_reason,
    lastError: row.last_error,
    retryAt: date(row.retry_at),
    static: row.static,
    discoveredFrom: row.discovered_from,
    hubDiscovered: row.hub_discovered,
  };
}

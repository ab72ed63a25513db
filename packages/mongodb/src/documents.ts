import type { Subscription } from '@websubsub/core';

/** A subscription as the collection holds it: the id is `_id`, dates are BSON dates. */
export type SubscriptionDocument = Omit<Subscription, 'id'> & { _id: string };

/** The fields a record has besides its id, so that writes and reads name each one. */
export const DOCUMENT_FIELDS = [
  'topic',
  'hub',
  'handler',
  'callbackUrl',
  'retiredCallbackUrl',
  'secret',
  'previousSecret',
  'leaseSeconds',
  'leaseExpiresAt',
  'subscribeStatus',
  'unsubscribeStatus',
  'connectionErrors',
  'hubErrors',
  'verifyTimeouts',
  'verifyErrors',
  'lastSubscribeAt',
  'lastUnsubscribeAt',
  'createdAt',
  'lastDeliveryAt',
  'deniedReason',
  'lastError',
  'retryAt',
  'static',
  'discoveredFrom',
  'hubDiscovered',
] as const satisfies ReadonlyArray<keyof SubscriptionDocument>;

// Records handed out must not share Date objects with anything the caller may still hold.
function date(value: Date): Date;
function date(value: Date | null): Date | null;
function date(value: Date | null): Date | null {
  return value === null ? null : new Date(value.getTime());
}

/** The document that stores a record. */
export function toDocument(subscription: Subscription): SubscriptionDocument {
  return {
    _id: subscription.id,
    topic: subscription.topic,
    hub: subscription.hub,
    handler: subscription.handler,
    callbackUrl: subscription.callbackUrl,
    retiredCallbackUrl: subscription.retiredCallbackUrl,
    secret: subscription.secret,
    previousSecret: subscription.previousSecret,
    leaseSeconds: subscription.leaseSeconds,
    leaseExpiresAt: subscription.leaseExpiresAt,
    subscribeStatus: subscription.subscribeStatus,
    unsubscribeStatus: subscription.unsubscribeStatus,
    connectionErrors: subscription.connectionErrors,
    hubErrors: subscription.hubErrors,
    verifyTimeouts: subscription.verifyTimeouts,
    verifyErrors: subscription.verifyErrors,
    lastSubscribeAt: subscription.lastSubscribeAt,
    lastUnsubscribeAt: subscription.lastUnsubscribeAt,
    createdAt: subscription.createdAt,
    lastDeliveryAt: subscription.lastDeliveryAt,
    deniedReason: subscription.deniedReason,
    lastError: subscription.lastError,
    retryAt: subscription.retryAt,
    static: subscription.static,
    discoveredFrom: subscription.discoveredFrom,
    hubDiscovered: subscription.hubDiscovered,
  };
}

/** The record a document stores; fields the document may carry beyond these are left out. */
export function fromDocument(document: SubscriptionDocument): Subscription {
  return {
    id: document._id,
    topic: document.topic,
    hub: document.hub,
    handler: document.handler,
    callbackUrl: document.callbackUrl,
    retiredCallbackUrl: document.retiredCallbackUrl ?? null,
    secret: document.secret,
    // Documents written before the field existed: no secret change is pending.
    previousSecret: document.previousSecret ?? null,
    leaseSeconds: document.leaseSeconds,
    leaseExpiresAt: date(document.leaseExpiresAt),
    subscribeStatus: document.subscribeStatus,
    unsubscribeStatus: document.unsubscribeStatus,
    connectionErrors: document.connectionErrors,
    hubErrors: document.hubErrors,
    verifyTimeouts: document.verifyTimeouts,
    verifyErrors: document.verifyErrors,
    lastSubscribeAt: date(document.lastSubscribeAt),
    lastUnsubscribeAt: date(document.lastUnsubscribeAt),
    createdAt: date(document.createdAt),
    lastDeliveryAt: date(document.lastDeliveryAt),
    deniedReason: document.deniedReason,
    lastError: document.lastError,
    retryAt: date(document.retryAt),
    static: document.static,
    discoveredFrom: document.discoveredFrom,
    // Documents written before the field existed: their hub is treated as given.
    hubDiscovered: document.hubDiscovered ?? false,
  };
}

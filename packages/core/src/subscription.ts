/** Where a subscribe request stands, in the vocabulary of the original Django `websubsub`. */
export type SubscribeStatus =
  'requesting' | 'connerror' | 'huberror' | 'verifying' | 'verifyerror' | 'verified' | 'denied';

/** Where an unsubscribe request stands; `null` on the record while none was made. */
export type UnsubscribeStatus = Exclude<SubscribeStatus, 'denied'>;

/** Every subscribe status, in lifecycle order. */
export const SUBSCRIBE_STATUSES: readonly SubscribeStatus[] = [
  'requesting',
  'connerror',
  'huberror',
  'verifying',
  'verifyerror',
  'verified',
  'denied',
];

/** Every unsubscribe status, in lifecycle order. */
export const UNSUBSCRIBE_STATUSES: readonly UnsubscribeStatus[] = [
  'requesting',
  'connerror',
  'huberror',
  'verifying',
  'verifyerror',
  'verified',
];

/** The counters a subscription keeps of what went wrong, each incremented atomically. */
export type SubscriptionCounter =
  'connectionErrors' | 'hubErrors' | 'verifyTimeouts' | 'verifyErrors';

/** One subscription of one callback to one topic at one hub, as the store keeps it. */
export interface Subscription {
  /** Random UUID; the last segment of the callback URL. */
  id: string;
  /** The topic URL sent as `hub.topic` (the `rel="self"` URL when it was discovered). */
  topic: string;
  /** The hub URL, query string included. */
  hub: string;
  /** Name of the handler that receives this subscription's content. */
  handler: string;
  /** Absolute callback URL sent as `hub.callback`. */
  callbackUrl: string;
  /**
   * The callback URL the hub still knows the subscription by after `callbackUrl` changed (a
   * new base URL): an unsubscribe for it is sent once the new one is verified, and its
   * verification confirmed. `null` when there is none to end.
   */
  retiredCallbackUrl: string | null;
  /** The `hub.secret` used to sign content, or `null` for none. */
  secret: string | null;
  /**
   * The secret the hub may still sign with after a request changed `secret`: content signed
   * with it (or unsigned, when it is the empty string, as the subscription had no secret before)
   * is still taken, until content signed with `secret` shows the hub switched. `null` when there
   * is none to honour.
   */
  previousSecret: string | null;
  /** Lease asked for in `hub.lease_seconds`, or `null` to let the hub choose. */
  leaseSeconds: number | null;
  /** When the lease granted at the last verification ends, or `null` when unknown. */
  leaseExpiresAt: Date | null;
  /** State of the subscribe request. */
  subscribeStatus: SubscribeStatus;
  /** State of the unsubscribe request, `null` when none was made. */
  unsubscribeStatus: UnsubscribeStatus | null;
  /** Network failures and timeouts reaching the hub. */
  connectionErrors: number;
  /** Non-2xx answers from the hub. */
  hubErrors: number;
  /** Requests the hub accepted but never verified in time. */
  verifyTimeouts: number;
  /** Verifications refused because they were malformed. */
  verifyErrors: number;
  /** When the last subscribe request was sent. */
  lastSubscribeAt: Date | null;
  /** When the last unsubscribe request was sent. */
  lastUnsubscribeAt: Date | null;
  /** When the record was created. */
  createdAt: Date;
  /** When content was last accepted for this subscription. */
  lastDeliveryAt: Date | null;
  /** The hub's `hub.reason` when it denied the subscription. */
  deniedReason: string | null;
  /** Text of the last error (hub answer, network failure, malformed verification). */
  lastError: string | null;
  /** When upkeep should look at this record again if nothing else happens first. */
  retryAt: Date | null;
  /** Declared in configuration rather than created at run time. */
  static: boolean;
  /** The URL the topic was discovered from, when it differs from `topic`. */
  discoveredFrom: string | null;
  /**
   * The hub came from discovery rather than being given: each renewal discovers the topic
   * again (from `discoveredFrom`, else `topic`) and follows a publisher that moved to another hub.
   */
  hubDiscovered: boolean;
}

/** Has this subscription ended, so that content for it is answered 410 Gone? */
export function isEnded(subscription: Subscription): boolean {
  return subscription.unsubscribeStatus === 'verified' || subscription.subscribeStatus === 'denied';
}

/**
 * Text from outside (a hub's reason, an error) made fit for any store: NUL and other control
 * characters but tab and newline become U+FFFD, and it is cut to `max` characters.
 */
export function storableText(text: string, max = 1000): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '\uFFFD');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

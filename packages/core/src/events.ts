import type { SignatureFailure } from './signature.js';
import type { Subscription } from './subscription.js';

/** Why content sent to a callback was not handed to the application. */
export type DeliveryRejection =
  | 'unknown_subscription'
  | 'ended'
  | 'too_large'
  | 'duplicate'
  | 'queue_unavailable'
  | SignatureFailure;

/** Every lifecycle event the subscriber emits, with what each listener receives. */
export interface SubscriberEvents {
  /** `subscribe()`/`unsubscribe()` (or upkeep) stored a request that is about to be queued. */
  'subscription:requested': { subscription: Subscription; mode: 'subscribe' | 'unsubscribe' };
  /** A subscribe or unsubscribe request is about to be sent to the hub. */
  'request:sent': { subscription: Subscription; mode: 'subscribe' | 'unsubscribe' };
  /** The hub answered a request (or could not be reached: `status` is `null`). */
  'hub:answered': {
    subscription: Subscription;
    mode: 'subscribe' | 'unsubscribe';
    status: number | null;
    error: string | null;
  };
  /** The hub verified intent and the subscriber confirmed it. */
  verified: {
    subscription: Subscription;
    mode: 'subscribe' | 'unsubscribe';
    leaseSeconds: number | null;
  };
  /** A verification was refused (wrong topic, nothing pending, malformed). */
  'verification:refused': {
    subscriptionId: string;
    handler: string;
    mode: string | null;
    reason: string;
  };
  /** The hub denied a subscription. */
  denied: { subscription: Subscription; reason: string | null };
  /** Content was accepted and queued for its handler. */
  'delivery:accepted': { subscription: Subscription; bytes: number };
  /** Content was refused or ignored. */
  'delivery:rejected': { subscriptionId: string; handler: string; reason: DeliveryRejection };
  /** A handler finished with content. */
  'delivery:handled': { subscription: Subscription; durationMs: number };
  /**
   * A handler threw: `final: false` for each failed attempt (the queue retries it), then once
   * `final: true` when the queue gave up on the delivery.
   */
  'handler:failed': { subscriptionId: string; handler: string; error: unknown; final: boolean };
  /** A verified subscription is being renewed before its lease ends. */
  'lease:renewing': { subscription: Subscription };
  /**
   * Discovered again at renewal, the topic names other hubs (or another topic): `to` is being
   * subscribed and `from` unsubscribed.
   */
  'subscription:moved': { from: Subscription; to: Subscription };
  /** A failed request will be retried at `retryAt`. */
  'retry:scheduled': { subscription: Subscription; retryAt: Date };
  /** A subscription reached a maximum of retries and will not be retried by itself. */
  'retry:gave-up': { subscription: Subscription; reason: string };
}

/** A listener of one subscriber event. */
export type SubscriberListener<K extends keyof SubscriberEvents> = (
  event: SubscriberEvents[K],
) => void;

/**
 * A typed event emitter; a throwing listener is logged by the subscriber, never rethrown. Each
 * event's listeners are kept in an array replaced on every change, so that emitting (once or
 * more per delivery) neither copies it nor is disturbed by a listener that adds or removes one.
 */
export class SubscriberEventEmitter {
  private readonly listeners = new Map<string, ReadonlyArray<(event: never) => void>>();

  constructor(private readonly onListenerError: (error: unknown) => void) {}

  /** Listen to an event (a listener added twice is called twice, as with `EventEmitter`). */
  on<K extends keyof SubscriberEvents>(name: K, listener: SubscriberListener<K>): this {
    if (typeof listener !== 'function') {
      throw new TypeError(`The listener of ${name} must be a function, not ${typeof listener}`);
    }
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
    return this;
  }

  /** Stop listening (the listener's latest addition, if it was added more than once). */
  off<K extends keyof SubscriberEvents>(name: K, listener: SubscriberListener<K>): this {
    const current = this.listeners.get(name);
    const index = current ? current.lastIndexOf(listener) : -1;
    if (!current || index < 0) return this;
    const rest = current.filter((_, position) => position !== index);
    if (rest.length > 0) this.listeners.set(name, rest);
    else this.listeners.delete(name);
    return this;
  }

  /** Emit to every listener; listener failures never reach the caller. */
  emit<K extends keyof SubscriberEvents>(name: K, event: SubscriberEvents[K]): void {
    const current = this.listeners.get(name);
    if (current === undefined) return;
    for (const listener of current as ReadonlyArray<SubscriberListener<K>>) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}

import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';

/** An HMAC algorithm a hub may sign content distribution requests with (WebSub §8). */
export type SignatureAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/**
 * Header fields to send. Use the array form to repeat a name (several `Link` fields): each
 * pair becomes its own field, in order.
 */
export type HeaderFields = Array<[string, string]> | Record<string, string>;

/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** A logger in pino's shape (fields first, then the message); the hub logs at debug level. */
export interface TestHubLogger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

/** Options of {@link startTestHub}. */
export interface TestHubOptions {
  /**
   * Port to listen on; 0 picks a free one.
   * @default 0
   */
  port?: number;

  /**
   * Address to listen on. Keep it on loopback: the hub sends requests to any callback it is given.
   * @default '127.0.0.1'
   */
  host?: string;

  /**
   * Path of the hub endpoint. It may carry a query string, to test subscribers that must keep
   * the hub URL's query; requests are routed on the path alone.
   * @default '/hub'
   */
  hubPath?: string;

  /**
   * When intent is verified. `'async'`: answer the subscription request, then verify (what
   * most hubs do; the verification can arrive before the subscriber has read the answer).
   * `'sync'`: verify inside the subscription request and answer only afterwards, with
   * `acceptStatus` when the subscriber confirmed and 409 when it did not.
   * @default 'async'
   */
  verification?: 'sync' | 'async';

  /**
   * Status of the answer to an accepted subscription request. Real hubs answer 202; some
   * answer 204 or 200.
   * @default 202
   */
  acceptStatus?: 200 | 202 | 204;

  /**
   * Lease granted when the subscriber asks for none (clamped like an asked lease).
   * @default 86400 (one day)
   */
  leaseSeconds?: number;

  /**
   * Shortest lease granted; a shorter asked lease is raised to this.
   * @default 1
   */
  minLeaseSeconds?: number;

  /**
   * Longest lease granted; a longer asked lease is lowered to this.
   * @default 315360000 (ten years)
   */
  maxLeaseSeconds?: number;

  /**
   * Algorithm of `X-Hub-Signature` on content distribution, unless `publish` names another.
   * @default 'sha256'
   */
  signatureAlgorithm?: SignatureAlgorithm;

  /**
   * How long a callback may take to answer a verification, denial or content distribution.
   * @default 5000
   */
  requestTimeoutMs?: number;

  /**
   * Where the hub logs what it receives and sends, at debug level.
   * @default a logger that writes nothing
   */
  logger?: TestHubLogger;
}

/** A topic document the hub serves at a path, for discovery. */
export interface TopicDocument {
  /**
   * Status of the response.
   * @default 200
   */
  status?: number;

  /** Header fields of the response, sent as given (use the array form to repeat `Link`). */
  headers?: HeaderFields;

  /**
   * The exact body bytes; a string is sent as UTF-8. A `HEAD` request gets the headers only.
   * @default empty
   */
  body?: string | Buffer;
}

/** A feed served by {@link TestHub.serveFeed}. */
export interface FeedDocument {
  /**
   * The exact body bytes; a string is sent as UTF-8.
   * @default a minimal Atom feed with `<link rel="hub">` and `<link rel="self">`
   */
  body?: string | Buffer;

  /**
   * Content-Type of the response.
   * @default 'application/atom+xml; charset=utf-8'
   */
  contentType?: string;

  /**
   * Send the `Link` header fields `rel="hub"` (this hub) and `rel="self"` (the topic URL).
   * Turn off to test discovery from the document alone.
   * @default true
   */
  linkHeaders?: boolean;
}

/** Content for {@link TestHub.publish}, sent to every active subscription of the topic. */
export interface PublishContent {
  /**
   * The exact body bytes; a string is sent as UTF-8. Empty is a light ping.
   * @default empty
   */
  body?: string | Buffer;

  /**
   * Content-Type of the distribution request.
   * @default 'application/octet-stream'
   */
  contentType?: string;

  /**
   * Extra header fields, sent after the hub's own. A name given here replaces the hub's field
   * of that name (`Content-Type`, `Link`, even `X-Hub-Signature`); framing fields
   * (`Content-Length`, `Transfer-Encoding`, `Host`) are ignored, the hub computes them.
   */
  headers?: HeaderFields;

  /**
   * `'valid'`: sign with the subscription's secret when it has one. `'invalid'`: send a
   * signature that does not match (same algorithm and length; also to subscriptions without
   * a secret). `'none'`: send no `X-Hub-Signature`, even when the subscription has a secret.
   * @default 'valid'
   */
  signature?: 'valid' | 'invalid' | 'none';

  /**
   * Algorithm of the signature.
   * @default the hub's `signatureAlgorithm`
   */
  algorithm?: SignatureAlgorithm;
}

/** The state of a subscription as the hub sees it. */
export type SubscriptionState =
  /** Requested; intent not verified yet. */
  | 'verifying'
  /** Verified and within its lease: content is distributed to it. */
  | 'active'
  /** The subscriber did not confirm the intent of a new subscription. */
  | 'refused'
  /** Removed by a verified unsubscription. */
  | 'unsubscribed'
  /** The hub denied it (`deny` or `denyNext`). */
  | 'denied'
  /** Its lease ran out without renewal. */
  | 'expired';

/** A subscription held by the hub, one per (topic, callback). */
export interface HubSubscription {
  topic: string;
  callback: string;
  state: SubscriptionState;
  /** The secret content is signed with; absent when the subscriber gave none. */
  secret?: string;
  /** The lease granted at the last verification (or asked, while verifying). */
  leaseSeconds: number;
  /** When the last verification of a subscribe succeeded; null before. */
  verifiedAt: Date | null;
  /** When the lease ends; null before the first verification. */
  expiresAt: Date | null;
}

/** A request a subscriber sent to the hub endpoint, as received and as answered. */
export interface SubscriptionRequest {
  /** `hub.mode` as sent (recorded even when invalid or missing). */
  mode?: string;
  /** `hub.topic` as sent. */
  topic?: string;
  /** `hub.callback` as sent. */
  callback?: string;
  /** `hub.lease_seconds` as sent, when it was a whole number. */
  leaseSeconds?: number;
  /** `hub.secret` as sent. */
  secret?: string;
  /** Every form field (the first value of a repeated one). */
  params: Record<string, string>;
  /** The raw request body. */
  body: string;
  /** The request target as received: path and query string. */
  url: string;
  /** The request header fields. */
  headers: IncomingHttpHeaders;
  receivedAt: Date;
  /**
   * The status the hub answered; null while it has not, and for ever when `failNext` dropped it.
   */
  status: number | null;
  /** The plain-text reason of a refusal. */
  reason?: string;
}

/** One verification of intent the hub sent to a callback, and what the callback answered. */
export interface Verification {
  mode: 'subscribe' | 'unsubscribe';
  topic: string;
  callback: string;
  challenge: string;
  /** The lease sent; only for subscribe. */
  leaseSeconds?: number;
  /** The full URL requested (the callback with the hub's parameters added to its query). */
  url: string;
  /** The callback's status; null when it did not answer. */
  status: number | null;
  /** The callback's body, as UTF-8. */
  body: string;
  /** True when the callback answered 2xx with exactly the challenge. */
  confirmed: boolean;
  /** Why it was not confirmed. */
  reason?: string;
  at: Date;
}

/** A denial the hub sent to a callback (`hub.mode=denied`). */
export interface Denial {
  topic: string;
  callback: string;
  reason?: string;
  /** The callback's status; null when it did not answer. */
  status: number | null;
  /** The callback's body, as UTF-8. */
  body: string;
}

/** The outcome of one content distribution request. */
export interface DeliveryResult {
  topic: string;
  callback: string;
  /** The callback's status; null when it did not answer (then `error` says why). */
  status: number | null;
  /** The callback's body, as UTF-8. */
  body: string;
  /** The callback's response header fields. */
  headers: IncomingHttpHeaders;
  /** The `X-Hub-Signature` value sent, if any. */
  signature?: string;
  /** Why no answer came (connection refused, timeout). */
  error?: string;
}

/** The answer to a request the test sent by hand to a callback. */
export interface CallbackAnswer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** How `failNext` answers a subscription request. */
export type HubFailure =
  | {
      /**
       * Status of the answer.
       * @default 503
       */
      status?: number;
      /**
       * Plain-text body of the answer.
       * @default 'Service Unavailable'-style text for the status
       */
      body?: string;
      /** Seconds to send in `Retry-After`. */
      retryAfter?: number;
    }
  /** Close the connection without answering. */
  | 'drop';

/** The events a test hub emits; listen with `hub.on` or await with `events.once(hub, name)`. */
export interface TestHubEvents {
  /** A subscription request arrived at the hub endpoint (before it is answered). */
  'subscription-request': [request: SubscriptionRequest];
  /** A callback confirmed a verification of intent; the hub state is already updated. */
  verified: [verification: Verification];
  /** A callback did not confirm a verification of intent. */
  'verification-failed': [verification: Verification];
  /** The hub sent a denial to a callback. */
  denied: [denial: Denial];
  /** A content distribution request was answered (or failed). */
  delivered: [result: DeliveryResult];
}

/** A running WebSub hub and publisher on a real port. */
export interface TestHub extends EventEmitter<TestHubEvents> {
  /** The hub endpoint, e.g. `http://127.0.0.1:PORT/hub`. */
  readonly url: string;

  /** Scheme, host and port, e.g. `http://127.0.0.1:PORT`. */
  readonly origin: string;

  /** Every request received at the hub endpoint, oldest first. */
  readonly requests: readonly SubscriptionRequest[];

  /** Every verification of intent sent by the hub (not those sent with `verify`), oldest first. */
  readonly verifications: readonly Verification[];

  /** The absolute URL of a path on this server (`/feed` → `http://127.0.0.1:PORT/feed`). */
  topicUrl(path: string): string;

  /** Serve a document at a path for GET and HEAD (any topic, any headers, exact bytes). */
  serveTopic(path: string, document: TopicDocument): string;

  /** Serve a feed advertising this hub in `Link` headers; returns the topic URL. */
  serveFeed(path: string, feed?: FeedDocument): string;

  /** Answer every request to a path with a redirect to `location`. */
  redirect(path: string, location: string, status?: 301 | 302 | 303 | 307 | 308): void;

  /** Distribute content to every active subscription of the topic, signed per subscription. */
  publish(topic: string, content?: PublishContent): Promise<DeliveryResult[]>;

  /** Send a denial (`hub.mode=denied`) to a callback and mark its subscription denied. */
  deny(topic: string, callback: string, reason?: string): Promise<Denial>;

  /** Answer the next n subscribe requests as accepted, then deny them instead of verifying. */
  denyNext(n: number, reason?: string): void;

  /** Send a GET with any parameters to a callback, changing nothing in the hub. */
  verify(callback: string, params: Record<string, string>): Promise<CallbackAnswer>;

  /** Answer the next n POSTs to the hub endpoint with a failure, before any validation. */
  failNext(n: number, failure: HubFailure): void;

  /** A snapshot of every subscription the hub knows, in creation order. */
  subscriptions(): HubSubscription[];

  /** Resolve once the predicate holds; reject with a `timeout` TestHubError otherwise. */
  waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;

  /** Forget subscriptions, logs, served paths and pending failures; keep the port. */
  reset(): void;

  /** Stop listening, abort requests in flight and wait for them. */
  close(): Promise<void>;
}

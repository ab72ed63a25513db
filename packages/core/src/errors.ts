/** Base class of every error websubsub throws; `code` is stable and safe to branch on. */
export class WebSubError extends Error {
  /** A stable machine-readable code. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Thrown when options or arguments are invalid (bad URL, secret too long, unknown handler). */
export class InvalidInputError extends WebSubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_input', message, options);
  }
}

/** Thrown by discovery when the topic could not be fetched or advertises no hub. */
export class DiscoveryError extends WebSubError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Thrown when a URL resolves to an address the subscriber was told to refuse. */
export class BlockedAddressError extends WebSubError {
  constructor(message: string) {
    super('blocked_address', message);
  }
}

/** Thrown by `create` when a subscription with the same (hub, topic, handler) exists. */
export class DuplicateSubscriptionError extends WebSubError {
  constructor(hub: string, topic: string, handler: string) {
    super('duplicate_subscription', `A subscription to ${topic} at ${hub} for ${handler} exists`);
  }
}

/** Thrown when a subscription id is unknown. */
export class SubscriptionNotFoundError extends WebSubError {
  constructor(id: string) {
    const shown = id.length > 64 ? `${id.slice(0, 64)}…` : id;
    super('not_found', `No subscription with id ${shown}`);
  }
}

/** Thrown when a lock expired or was taken by someone else while its work still ran. */
export class LockLostError extends WebSubError {
  constructor(key: string) {
    super('lock_lost', `Lost the lock on ${key} before the work finished`);
  }
}

/** Wraps a failure of a store, queue or lock adapter, with the original as `cause`. */
export class AdapterError extends WebSubError {
  constructor(adapter: string, message: string, cause: unknown) {
    super('adapter_error', `${adapter}: ${message}`, { cause });
  }
}

/** A content handler that did not settle within `handlerTimeoutMs`: the delivery is retried. */
export class HandlerTimeoutError extends WebSubError {
  constructor(handler: string, timeoutMs: number) {
    super(
      'handler_timeout',
      `The handler ${handler} did not finish within ${timeoutMs} ms; the delivery will be retried`,
    );
  }
}

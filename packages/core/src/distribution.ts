import { JOBS, type Notification, type SubscriberContext } from './context.js';
import type { CallbackRequest, CallbackResponse } from './http-handler.js';
import { verifySignature, type SignatureFailure } from './signature.js';
import { isEnded, type Subscription } from './subscription.js';

/**
 * A delivery as the queue carries it: JSON, the body in base64 and the time as an ISO string;
 * or, on a queue that keeps its jobs in this process, the body's `Buffer` and a `Date`.
 */
export interface DeliveryJob {
  [key: string]: unknown;
  subscriptionId: string;
  /** The handler's name when the content was accepted, for reports if the job fails. */
  handler: string;
  contentType: string | null;
  headers: Record<string, string>;
  body: string | Buffer;
  receivedAt: string | Date;
  /** How many times the job was put back because the store could not be read. */
  storeWaits?: number;
}

/** The first wait for a store that could not be read, doubling up to `STORE_WAIT_MAX_MS`. */
const STORE_WAIT_FIRST_MS = 1000;
const STORE_WAIT_MAX_MS = 60_000;

/** `lastDeliveryAt` is kept to this resolution, saving a store write per delivery. */
const LAST_DELIVERY_RESOLUTION_MS = 1000;

/** Headers about the transfer rather than the content: not passed on to handlers. */
const FRAMING = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'host',
]);

const text = (status: number, body: string, headers: Record<string, string> = {}) => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8', ...headers },
  body,
});

/**
 * The acknowledgement of content, taken or dropped alike so that a forger learns nothing: an
 * empty 202, the least a hub and the connection have to carry. Frozen, as it is shared.
 */
export const ACCEPTED: CallbackResponse = Object.freeze({
  status: 202,
  headers: Object.freeze({}) as Record<string, string>,
  body: '',
});

/**
 * Check content against the subscription's secret (`current`), then, while the hub has not
 * been seen signing with it since it changed, against the secret it may still sign with
 * (`previous`; none at all when that is the empty string). Otherwise, why it fails.
 */
function signedWith(
  header: string | undefined,
  body: Buffer,
  secret: string,
  previousSecret: string | null,
): 'current' | 'previous' | SignatureFailure {
  const check = verifySignature(header, body, secret);
  if (check.valid) return 'current';
  if (previousSecret === null) return check.reason;
  if (previousSecret === '') return check.reason === 'missing' ? 'previous' : check.reason;
  return verifySignature(header, body, previousSecret).valid ? 'previous' : check.reason;
}

/** The hub signs with the new secret: the one it signed with before is no longer taken. */
async function forgetPreviousSecret(context: SubscriberContext, record: Subscription) {
  try {
    await context.store.transition(record.id, { set: { previousSecret: null } });
    context.logger.info({ subscriptionId: record.id }, 'The hub signs with the new secret now');
  } catch (error) {
    // Tried again with the next delivery signed with the new secret.
    context.logger.warn({ subscriptionId: record.id, error }, 'Could not forget the old secret');
  }
}

/**
 * Take content the hub POSTed to a callback: check the signature over the raw bytes, queue the
 * content for its handler, answer 2xx at once. Content with a wrong signature is acknowledged
 * but dropped (as the Recommendation allows, so a forger learns nothing); content without a
 * signature for a subscription that has a secret is refused with 403.
 */
export async function acceptDelivery(
  context: SubscriberContext,
  record: Subscription,
  request: CallbackRequest,
  body: Buffer,
): Promise<CallbackResponse> {
  // Ended, or being ended: the application asked to unsubscribe, so its content is not wanted,
  // and 410 lets the hub drop the subscription should the unsubscribe request not get through.
  if (isEnded(record) || record.unsubscribeStatus !== null) {
    context.events.emit('delivery:rejected', {
      subscriptionId: record.id,
      handler: record.handler,
      reason: 'ended',
    });
    return text(410, 'Subscription has ended');
  }

  if (record.secret !== null) {
    const header = firstHeader(request.headers['x-hub-signature']);
    const signer = signedWith(header, body, record.secret, record.previousSecret);
    if (signer === 'current' && record.previousSecret !== null) {
      await forgetPreviousSecret(context, record);
    } else if (signer !== 'current' && signer !== 'previous') {
      const failure = signer;
      context.events.emit('delivery:rejected', {
        subscriptionId: record.id,
        handler: record.handler,
        reason: failure,
      });
      context.logger.warn(
        { subscriptionId: record.id, handler: record.handler, reason: failure },
        'Content refused: signature does not hold',
      );
      return failure === 'missing' ? text(403, 'X-Hub-Signature is required') : ACCEPTED;
    }
  }

  const receivedAt = context.now();
  const duplicates = context.recentDeliveries;
  if (duplicates && duplicates.isDuplicate(record.id, body, receivedAt.getTime())) {
    context.events.emit('delivery:rejected', {
      subscriptionId: record.id,
      handler: record.handler,
      reason: 'duplicate',
    });
    context.logger.debug({ subscriptionId: record.id }, 'Duplicate content dropped');
    return ACCEPTED;
  }

  const inProcess = context.queue.inProcess;
  const job: DeliveryJob = {
    subscriptionId: record.id,
    handler: record.handler,
    contentType: firstHeader(request.headers['content-type']) ?? null,
    headers: passedHeaders(request.headers),
    body: inProcess ? body : body.toString('base64'),
    receivedAt: inProcess ? receivedAt : receivedAt.toISOString(),
  };
  try {
    await context.queue.enqueue(JOBS.deliver, job);
  } catch (error) {
    // Not acknowledged, so the hub keeps the content and sends it again later.
    context.events.emit('delivery:rejected', {
      subscriptionId: record.id,
      handler: record.handler,
      reason: 'queue_unavailable',
    });
    context.logger.error({ subscriptionId: record.id, error }, 'Could not queue content');
    return text(503, 'Try again later', { 'retry-after': '30' });
  }

  context.events.emit('delivery:accepted', { subscription: record, bytes: body.length });
  return ACCEPTED;
}

/** Run a queued delivery: hand it to the subscription's handler, then note when it arrived. */
export async function runDelivery(context: SubscriberContext, job: DeliveryJob): Promise<void> {
  let record: Subscription | null;
  try {
    record = await context.store.get(job.subscriptionId);
  } catch (error) {
    await waitForStore(context, job, error);
    return;
  }
  if (!record) {
    context.logger.warn(
      { subscriptionId: job.subscriptionId },
      'Content for a deleted subscription',
    );
    return;
  }
  const handler = context.settings.handlers.get(record.handler);
  if (!handler) throw new Error(`No handler named ${record.handler} is configured`);

  // A new Date either way: a retried job hands its handler a fresh one.
  const receivedAt = new Date(
    typeof job.receivedAt === 'string' ? job.receivedAt : job.receivedAt.getTime(),
  );
  const notification: Notification = {
    subscription: record,
    topic: record.topic,
    hub: record.hub,
    contentType: job.contentType,
    headers: job.headers,
    body: typeof job.body === 'string' ? Buffer.from(job.body, 'base64') : job.body,
    receivedAt,
  };

  const started = performance.now();
  try {
    await context.handlerRuns.watch(
      handler.handle(notification),
      record.handler,
      context.settings.handlerTimeoutMs,
    );
  } catch (error) {
    const subscriptionId = record.id;
    context.events.emit('handler:failed', {
      subscriptionId,
      handler: record.handler,
      error,
      final: false,
    });
    throw error;
  }
  context.events.emit('delivery:handled', {
    subscription: record,
    durationMs: performance.now() - started,
  });

  // The handler has run: a failure to note the time must not make the queue run it again.
  // Under a stream of content the time is written at most once a second, not once per item.
  const noted = record.lastDeliveryAt?.getTime() ?? 0;
  if (receivedAt.getTime() - noted < LAST_DELIVERY_RESOLUTION_MS) return;
  try {
    await context.store.transition(record.id, { set: { lastDeliveryAt: receivedAt } });
  } catch (error) {
    context.logger.warn({ subscriptionId: record.id, error }, 'Could not record delivery time');
  }
}

/**
 * Put a delivery back in the queue for later when its subscription could not be read: an
 * acknowledged delivery waits out a store outage of any length instead of spending the
 * handler's attempts on it (five attempts took about 30 s, and then it was gone). Should the
 * queue refuse too, the error counts as a failed attempt.
 */
async function waitForStore(
  context: SubscriberContext,
  job: DeliveryJob,
  error: unknown,
): Promise<void> {
  const waits = typeof job.storeWaits === 'number' ? job.storeWaits : 0;
  const delayMs = Math.min(
    STORE_WAIT_FIRST_MS * 2 ** Math.min(waits, 16),
    STORE_WAIT_MAX_MS,
    Math.max(context.settings.retryBackoffMaxMs, 1),
  );
  await context.queue.enqueue(JOBS.deliver, { ...job, storeWaits: waits + 1 }, { delayMs });
  context.logger.warn(
    { subscriptionId: job.subscriptionId, error, waits: waits + 1, delayMs },
    'The store could not be read: the delivery waits in the queue',
  );
}

/** The first value of a header that may have been sent more than once. */
export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function passedHeaders(headers: CallbackRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    // Node gives names in lower case already (V8 then returns the same string); others may not.
    const lower = name.toLowerCase();
    if (FRAMING.has(lower)) continue;
    out[lower] = typeof value === 'string' ? value : value.join(', ');
  }
  return out;
}

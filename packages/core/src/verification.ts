import type { CallbackResponse } from './http-handler.js';
import { JOBS, type SubscriberContext } from './context.js';
import type { QueryValue } from './query.js';
import type { TransitionCondition } from './store.js';
import { scheduleLeaseRenewal } from './upkeep.js';
import {
  storableText,
  type SubscribeStatus,
  type Subscription,
  type UnsubscribeStatus,
} from './subscription.js';

/**
 * Subscribe states in which a request of ours may still await the hub's verification: also
 * after a timeout or an error answer, since the hub may have taken the request all the same.
 * A verified subscription has no request pending, so a verification for it is refused (nobody
 * can move its lease by replaying or forging one), save those still owed for requests sent
 * again after a verification timeout (`answersRequestSentAgain`).
 */
const SUBSCRIBE_PENDING: SubscribeStatus[] = [
  'requesting',
  'connerror',
  'huberror',
  'verifying',
  'verifyerror',
];
const UNSUBSCRIBE_PENDING: UnsubscribeStatus[] = [
  'requesting',
  'connerror',
  'huberror',
  'verifying',
  'verifyerror',
];

const plain = (status: number, body: string | Buffer): CallbackResponse => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' },
  body,
});

/** The condition under which a verification of `mode` confirms a request we made. */
function pendingCondition(mode: 'subscribe' | 'unsubscribe', topic: string): TransitionCondition {
  return mode === 'subscribe'
    ? { topic, unsubscribeStatus: null, subscribeStatus: SUBSCRIBE_PENDING }
    : { topic, unsubscribeStatus: UNSUBSCRIBE_PENDING };
}

function isPending(record: Subscription, mode: 'subscribe' | 'unsubscribe'): boolean {
  return mode === 'subscribe'
    ? record.unsubscribeStatus === null && SUBSCRIBE_PENDING.includes(record.subscribeStatus)
    : record.unsubscribeStatus !== null && UNSUBSCRIBE_PENDING.includes(record.unsubscribeStatus);
}

/**
 * Answer a hub's GET to a callback: intent verification (subscribe or unsubscribe) or denial.
 * Only a request we made, of that mode, for exactly that topic is confirmed, by echoing the
 * challenge bytes; anything else is 404, and malformed requests 400.
 */
export async function answerVerification(
  context: SubscriberContext,
  record: Subscription,
  params: Map<string, QueryValue[]>,
  reached: ReachedAt = {},
): Promise<CallbackResponse> {
  const single = (name: string): QueryValue | null | 'repeated' => {
    const values = params.get(name);
    if (!values) return null;
    return values.length === 1 ? (values[0] as QueryValue) : 'repeated';
  };
  for (const name of params.keys()) {
    if (name.startsWith('hub.') && single(name) === 'repeated') {
      return refuse(context, record, null, 400, `Repeated ${name}`);
    }
  }

  const modeValue = single('hub.mode') as QueryValue | null;
  const topicValue = single('hub.topic') as QueryValue | null;
  const mode = modeValue?.text ?? null;
  if (mode === null || mode === '') return refuse(context, record, mode, 400, 'Missing hub.mode');
  if (topicValue === null || topicValue.text === null || topicValue.text === '') {
    return refuse(context, record, mode, 400, 'Missing hub.topic');
  }
  const topic = unencodedTopic(topicValue.text, record.topic, reached.query) ?? topicValue.text;

  if (mode === 'denied') return recordDenial(context, record, topic, single('hub.reason'));
  if (mode !== 'subscribe' && mode !== 'unsubscribe') {
    return refuse(context, record, mode, 400, `Unknown hub.mode ${mode}`);
  }
  if (topic !== record.topic) return refuse(context, record, mode, 404, 'Topic does not match');
  const challenge = single('hub.challenge') as QueryValue | null;
  const late = mode === 'subscribe' && answersRequestSentAgain(record);
  if (!isPending(record, mode) && !late) {
    if (mode === 'unsubscribe' && isForRetired(record, reached)) {
      return endRetiredCallback(context, record, topic, challenge);
    }
    return refuse(context, record, mode, 404, `No ${mode} request is pending`);
  }

  if (challenge === null || challenge.bytes.length === 0) {
    return verifyError(context, record, mode, 'Missing hub.challenge');
  }
  if (challenge.bytes.length > context.settings.maxChallengeBytes) {
    return verifyError(context, record, mode, 'hub.challenge is too long');
  }

  let leaseSeconds: number | null = null;
  if (mode === 'subscribe') {
    const lease = (single('hub.lease_seconds') as QueryValue | null)?.text ?? null;
    if (lease === null || lease === '') {
      return verifyError(context, record, mode, 'Missing hub.lease_seconds');
    }
    if (!/^\d{1,15}$/.test(lease)) {
      return verifyError(context, record, mode, `Invalid hub.lease_seconds ${lease.slice(0, 40)}`);
    }
    leaseSeconds = Number(lease);
  }

  const confirmed = late
    ? await confirmAgain(context, record, topic, leaseSeconds as number)
    : await confirm(context, record, mode, topic, leaseSeconds);
  if (!confirmed) return refuse(context, record, mode, 404, `No ${mode} request is pending`);
  if (mode === 'subscribe') {
    await scheduleLeaseRenewal(context, confirmed);
    if (confirmed.retiredCallbackUrl !== null) await queueRetirement(context, confirmed);
  }

  context.events.emit('verified', { subscription: confirmed, mode, leaseSeconds });
  context.logger.info(
    { subscriptionId: record.id, mode, topic, leaseSeconds },
    `Hub verified ${mode} intent`,
  );
  return plain(200, challenge.bytes);
}

/** Where a verification arrived: `Host`, path and raw query string, as far as they are known. */
export interface ReachedAt {
  host?: string | undefined;
  path?: string;
  query?: string;
}

/**
 * A hub that puts the topic into the query string unencoded splits a topic with a query of its
 * own at its first `&` (`hub.topic=https://x/feed?a=1&b=2` reads as `https://x/feed?a=1`), and
 * has its `%XX` and `+` decoded. The record's topic, when the raw query carries it verbatim as
 * the value of `hub.topic`.
 */
function unencodedTopic(parsed: string, expected: string, query: string | undefined) {
  if (query === undefined || parsed === expected) return null;
  const pair = `hub.topic=${expected}`;
  for (let at = query.indexOf(pair); at !== -1; at = query.indexOf(pair, at + 1)) {
    const end = at + pair.length;
    if ((at === 0 || query[at - 1] === '&') && (end === query.length || query[end] === '&')) {
      return expected;
    }
  }
  return null;
}

/**
 * May an unsubscribe verification be the end of the record's retired callback URL? Only while
 * there is one and the new URL is verified, and not when the request plainly reached the
 * current URL instead (its host or path is the current one's and not the retired one's).
 * Behind a proxy that rewrites `Host` neither matches, and the host cannot tell the two apart.
 */
function isForRetired(record: Subscription, reached: ReachedAt): boolean {
  // Not before the new URL works: only then is the old one's end asked for.
  if (record.retiredCallbackUrl === null || record.subscribeStatus !== 'verified') return false;
  const current = new URL(record.callbackUrl);
  const retired = new URL(record.retiredCallbackUrl);
  // `example.org.` names the same host as `example.org`.
  const host = reached.host?.toLowerCase().replace(/\.(?=:\d+$|$)/, '');
  if (host !== undefined && host === current.host && host !== retired.host) return false;
  const path = reached.path;
  return !(path !== undefined && path === current.pathname && path !== retired.pathname);
}

/** The new callback URL works: ask the hub to end the old one (see `retireCallback`). */
async function queueRetirement(context: SubscriberContext, record: Subscription): Promise<void> {
  try {
    await context.queue.enqueue(JOBS.retire, { subscriptionId: record.id });
  } catch (error) {
    // Not worth failing the verification: the old subscription ends with its lease.
    const fields = { subscriptionId: record.id, error };
    context.logger.warn(fields, 'Could not queue ending the old callback URL');
  }
}

/**
 * The hub verifies the unsubscribe of a retired callback URL (`retireCallback` asked for it):
 * confirmed while the record still has one, leaving the subscription itself as it is.
 */
async function endRetiredCallback(
  context: SubscriberContext,
  record: Subscription,
  topic: string,
  challenge: QueryValue | null,
): Promise<CallbackResponse> {
  if (challenge === null || challenge.bytes.length === 0) {
    return refuse(context, record, 'unsubscribe', 400, 'Missing hub.challenge');
  }
  if (challenge.bytes.length > context.settings.maxChallengeBytes) {
    return refuse(context, record, 'unsubscribe', 400, 'hub.challenge is too long');
  }
  const ended = await context.store.transition(record.id, {
    when: { topic },
    set: { retiredCallbackUrl: null },
  });
  if (!ended) return refuse(context, record, 'unsubscribe', 404, 'Subscription is gone');
  context.logger.info(
    { subscriptionId: record.id, callbackUrl: record.retiredCallbackUrl },
    'Hub verified ending the old callback URL',
  );
  return plain(200, challenge.bytes);
}

async function confirm(
  context: SubscriberContext,
  record: Subscription,
  mode: 'subscribe' | 'unsubscribe',
  topic: string,
  leaseSeconds: number | null,
): Promise<Subscription | null> {
  const when = pendingCondition(mode, topic);
  if (mode === 'unsubscribe') {
    return context.store.transition(record.id, {
      when,
      // Content for an old callback URL is answered 410 Gone from now on, which ends it too.
      set: {
        unsubscribeStatus: 'verified',
        retryAt: null,
        lastError: null,
        retiredCallbackUrl: null,
      },
    });
  }

  return context.store.transition(record.id, {
    when,
    set: {
      subscribeStatus: 'verified',
      leaseExpiresAt: leaseEnd(context, leaseSeconds as number),
      retryAt: null,
      lastError: null,
      deniedReason: null,
    },
  });
}

/**
 * Is this verified subscription still owed a verification? Each time the hub did not verify in
 * time the request was sent again (counted in `verifyTimeouts`); a slow hub then verifies
 * every one of them, and the first confirmed the subscription. The others verify requests we
 * did make, so they are confirmed too, one per request sent again: refused, a hub that
 * queues its verifications takes the 404 as a failed verification and denies the
 * subscription it still holds.
 */
function answersRequestSentAgain(record: Subscription): boolean {
  return (
    record.subscribeStatus === 'verified' &&
    record.unsubscribeStatus === null &&
    record.verifyTimeouts > 0
  );
}

/**
 * When a lease the hub granted ends. A lease of 0 says nothing useful (one hub always sends
 * it): a default is assumed so the subscription is still renewed; very long leases are clamped
 * so that renewal is never years away.
 */
function leaseEnd(context: SubscriberContext, leaseSeconds: number): Date {
  const { assumedLeaseSeconds, maxLeaseSeconds } = context.settings;
  const granted = leaseSeconds === 0 ? assumedLeaseSeconds : leaseSeconds;
  return new Date(context.now().getTime() + Math.min(granted, maxLeaseSeconds) * 1000);
}

/**
 * Confirm the verification of a request sent again. The lease end only ever comes sooner: the
 * renewal is then a little early at worst, and a verification replayed later cannot push it
 * past the hub's real lease.
 */
async function confirmAgain(
  context: SubscriberContext,
  record: Subscription,
  topic: string,
  leaseSeconds: number,
): Promise<Subscription | null> {
  const granted = leaseEnd(context, leaseSeconds);
  const known = record.leaseExpiresAt;
  return context.store.transition(record.id, {
    when: { topic, unsubscribeStatus: null, subscribeStatus: 'verified' },
    set: {
      leaseExpiresAt: known !== null && known < granted ? known : granted,
      verifyTimeouts: Math.max(0, record.verifyTimeouts - 1),
    },
  });
}

/** A malformed verification of a request we did make: refused, counted, and recorded. */
async function verifyError(
  context: SubscriberContext,
  record: Subscription,
  mode: 'subscribe' | 'unsubscribe',
  reason: string,
): Promise<CallbackResponse> {
  const statusField = mode === 'subscribe' ? 'subscribeStatus' : 'unsubscribeStatus';
  const when = pendingCondition(mode, record.topic);
  const failed = await context.store.transition(record.id, {
    when: { ...when, [statusField]: ['requesting', 'verifying'] },
    set: {
      [statusField]: 'verifyerror',
      lastError: storableText(`Verification refused: ${reason}`),
    },
    increment: { verifyErrors: 1 },
  });
  if (!failed) {
    await context.store.transition(record.id, {
      when,
      set: { lastError: storableText(`Verification refused: ${reason}`) },
      increment: { verifyErrors: 1 },
    });
  }
  return refuse(context, record, mode, 400, reason);
}

async function recordDenial(
  context: SubscriberContext,
  record: Subscription,
  topic: string,
  reasonValue: QueryValue | null | 'repeated',
): Promise<CallbackResponse> {
  if (topic !== record.topic) return refuse(context, record, 'denied', 404, 'Topic does not match');

  const reason =
    reasonValue && reasonValue !== 'repeated' ? storableText(reasonValue.text ?? '') : null;
  const denied = await context.store.transition(record.id, {
    when: { topic },
    set: { subscribeStatus: 'denied', deniedReason: reason, retryAt: null, previousSecret: null },
  });
  if (!denied) return refuse(context, record, 'denied', 404, 'Subscription is gone');

  context.events.emit('denied', { subscription: denied, reason });
  context.logger.warn({ subscriptionId: record.id, topic, reason }, 'Hub denied the subscription');
  return plain(200, '');
}

function refuse(
  context: SubscriberContext,
  record: Subscription,
  mode: string | null,
  status: number,
  reason: string,
): CallbackResponse {
  const subscriptionId = record.id;
  context.events.emit('verification:refused', {
    subscriptionId,
    handler: record.handler,
    mode,
    reason,
  });
  context.logger.info({ subscriptionId, mode, status, reason }, 'Verification refused');
  return plain(status, reason);
}

import { HttpRequestError, httpRequest, type HttpOptions } from './http-client.js';
import { storableText, type Subscription } from './subscription.js';

/** The mode of a request to the hub. */
export type HubMode = 'subscribe' | 'unsubscribe';

/** What came of one subscription request to a hub. */
export type HubOutcome =
  | { kind: 'accepted'; status: number }
  | { kind: 'hub_error'; status: number; reason: string; retryAfterMs: number | null }
  | { kind: 'connection_error'; reason: string };

const MAX_REASON = 500;

/**
 * Send `hub.mode` for a subscription to its hub: a form POST to the hub URL as stored (its own
 * query string kept), following 307/308 with the same request. Never throws: every failure is
 * an outcome the lifecycle records.
 */
export async function sendHubRequest(
  subscription: Subscription,
  mode: HubMode,
  http: HttpOptions,
): Promise<HubOutcome> {
  const form = new URLSearchParams();
  form.set('hub.mode', mode);
  form.set('hub.topic', subscription.topic);
  form.set('hub.callback', subscription.callbackUrl);
  if (mode === 'subscribe' && subscription.leaseSeconds !== null) {
    form.set('hub.lease_seconds', String(subscription.leaseSeconds));
  }
  if (mode === 'subscribe' && subscription.secret !== null) {
    form.set('hub.secret', subscription.secret);
  }

  try {
    const response = await httpRequest(
      subscription.hub,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        redirect: 'same-method',
        secretBody: form.has('hub.secret'),
      },
      http,
    );

    if (response.status >= 200 && response.status < 300) {
      return { kind: 'accepted', status: response.status };
    }
    const text = response.body.toString('utf8').trim().slice(0, MAX_REASON);
    const reason = storableText(`Hub answered ${response.status}${text ? `: ${text}` : ''}`);
    const retryAfter = headerValue(response.headers['retry-after']);
    return {
      kind: 'hub_error',
      status: response.status,
      reason,
      retryAfterMs: parseRetryAfter(retryAfter),
    };
  } catch (error) {
    const reason =
      error instanceof HttpRequestError || error instanceof Error ? error.message : String(error);
    return { kind: 'connection_error', reason: storableText(reason) };
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** `Retry-After` as milliseconds from now: delay-seconds or an HTTP date; `null` if absent. */
export function parseRetryAfter(value: string | undefined, now: Date = new Date()): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();

  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now.getTime());
}

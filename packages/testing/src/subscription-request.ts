/** A subscription request that passed validation: what the hub will verify. */
export interface Intent {
  mode: 'subscribe' | 'unsubscribe';
  topic: string;
  callback: string;
  /** The lease the hub grants (the asked one, clamped); only for subscribe. */
  leaseSeconds?: number;
  secret?: string;
}

/** The hub's lease policy. */
export interface LeasePolicy {
  leaseSeconds: number;
  minLeaseSeconds: number;
  maxLeaseSeconds: number;
}

const FIELDS = ['hub.mode', 'hub.topic', 'hub.callback', 'hub.lease_seconds', 'hub.secret'];

// WebSub §5.1: the secret MUST be less than 200 bytes.
const MAX_SECRET_BYTES = 199;

function isHttpUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;

  const { protocol } = new URL(value);
  return protocol === 'http:' || protocol === 'https:';
}

/**
 * Validate the form fields of a subscription request (WebSub §5.1) and decide the lease.
 * Answers a plain-text problem, worded for the developer whose subscriber sent the request.
 */
export function parseSubscriptionRequest(
  form: URLSearchParams,
  policy: LeasePolicy,
): { intent: Intent } | { problem: string } {
  for (const name of FIELDS) {
    if (form.getAll(name).length > 1) return { problem: `${name} is given more than once` };
  }

  const mode = form.get('hub.mode');
  const topic = form.get('hub.topic');
  const callback = form.get('hub.callback');
  if (!mode) return { problem: 'hub.mode is missing' };
  if (mode !== 'subscribe' && mode !== 'unsubscribe') {
    return { problem: `hub.mode must be subscribe or unsubscribe, not ${mode}` };
  }
  if (!topic) return { problem: 'hub.topic is missing' };
  if (!isHttpUrl(topic)) return { problem: 'hub.topic must be an absolute http(s) URL' };
  if (!callback) return { problem: 'hub.callback is missing' };
  if (!isHttpUrl(callback)) return { problem: 'hub.callback must be an absolute http(s) URL' };

  // Lease and secret belong to subscribe only; an unsubscribe carrying them is not wrong.
  if (mode === 'unsubscribe') return { intent: { mode, topic, callback } };

  const asked = form.get('hub.lease_seconds');
  if (asked !== null && !/^\d+$/.test(asked)) {
    return { problem: 'hub.lease_seconds must be a whole number of seconds' };
  }

  const secret = form.get('hub.secret');
  if (secret === '')
    return { problem: 'hub.secret is empty; leave it out to subscribe without one' };
  if (secret !== null && Buffer.byteLength(secret, 'utf8') > MAX_SECRET_BYTES) {
    return { problem: 'hub.secret must be shorter than 200 bytes' };
  }

  const wanted = asked === null ? policy.leaseSeconds : Number(asked);
  const leaseSeconds = Math.min(Math.max(wanted, policy.minLeaseSeconds), policy.maxLeaseSeconds);
  return { intent: { mode, topic, callback, leaseSeconds, secret: secret ?? undefined } };
}

import { createHmac, randomBytes } from 'node:crypto';

import type { SignatureAlgorithm } from './types.js';

/** The hex HMAC of the raw body bytes, keyed with the secret's UTF-8 bytes (WebSub §8). */
export function hmacHex(
  algorithm: SignatureAlgorithm,
  secret: string | Buffer,
  body: Buffer,
): string {
  return createHmac(algorithm, secret).update(body).digest('hex');
}

/**
 * The `X-Hub-Signature` value to send, or undefined for none. An invalid signature keeps the
 * algorithm and the length of a real one, so the subscriber's comparison itself is exercised,
 * not only its length check.
 */
export function signatureFor(
  mode: 'valid' | 'invalid' | 'none',
  algorithm: SignatureAlgorithm,
  secret: string | undefined,
  body: Buffer,
): string | undefined {
  if (mode === 'none') return undefined;

  if (mode === 'valid') {
    return secret === undefined ? undefined : `${algorithm}=${hmacHex(algorithm, secret, body)}`;
  }

  const digest = hmacHex(algorithm, secret ?? randomBytes(32), body);
  const wrongFirstDigit = digest.startsWith('0') ? '1' : '0';
  return `${algorithm}=${wrongFirstDigit}${digest.slice(1)}`;
}

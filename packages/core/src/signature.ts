import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

/** The HMAC algorithms WebSub allows in `X-Hub-Signature`. */
export type SignatureAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** Every algorithm WebSub allows, weakest first. */
export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithm[] = [
  'sha1',
  'sha256',
  'sha384',
  'sha512',
];

const HEX_LENGTH: Record<SignatureAlgorithm, number> = {
  sha1: 40,
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

const HEX = /^[0-9a-fA-F]+$/;

/** Why a signature was not accepted. */
export type SignatureFailure = 'missing' | 'malformed' | 'unsupported_algorithm' | 'mismatch';

/** The outcome of checking `X-Hub-Signature` against a body. */
export type SignatureCheck =
  { valid: true; algorithm: SignatureAlgorithm } | { valid: false; reason: SignatureFailure };

/** `X-Hub-Signature` value for a body: `method=hex digest` of its HMAC under the secret. */
export function signBody(
  body: Uint8Array | string,
  secret: string,
  algorithm: SignatureAlgorithm = 'sha256',
): string {
  return `${algorithm}=${createHmac(algorithm, secret).update(body).digest('hex')}`;
}

/**
 * Check an `X-Hub-Signature` header against the raw body bytes as received. Hex digits may be
 * in either case; the comparison takes the same time whatever the digest holds.
 */
export function verifySignature(
  header: string | undefined,
  body: Uint8Array,
  secret: string,
): SignatureCheck {
  if (header === undefined || header.trim() === '') return { valid: false, reason: 'missing' };

  const separator = header.indexOf('=');
  if (separator <= 0) return { valid: false, reason: 'malformed' };
  const method = header.slice(0, separator).trim().toLowerCase();
  const hex = header.slice(separator + 1).trim();

  if (!(method in HEX_LENGTH)) return { valid: false, reason: 'unsupported_algorithm' };
  const algorithm = method as SignatureAlgorithm;
  // Checked before decoding: Node's hex decoder reads only the low byte of each character.
  if (hex.length !== HEX_LENGTH[algorithm] || !HEX.test(hex)) {
    return { valid: false, reason: 'malformed' };
  }

  const given = Buffer.from(hex, 'hex');
  const expected = createHmac(algorithm, keyOf(secret)).update(body).digest();
  return timingSafeEqual(expected, given)
    ? { valid: true, algorithm }
    : { valid: false, reason: 'mismatch' };
}

/** Secrets already imported as keys: importing one costs about as much as hashing 2 KB. */
const keys = new Map<string, KeyObject | string>();
const KEYS_KEPT = 1024;

function keyOf(secret: string): KeyObject | string {
  let key = keys.get(secret);
  if (key === undefined) {
    if (keys.size >= KEYS_KEPT) keys.clear();
    // Node refuses a key object of no bytes; the string is the same key for HMAC.
    key = secret === '' ? secret : createSecretKey(Buffer.from(secret, 'utf8'));
    keys.set(secret, key);
  }
  return key;
}

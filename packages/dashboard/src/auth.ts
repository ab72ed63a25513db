import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import type { CallbackRequest } from '@websubsub/core';
import { parseCookie } from 'cookie';

/** Name of the cookie that keeps a token sign-in. */
export const SESSION_COOKIE = 'websubsub_dashboard_session';

/** Name of the cookie that ties the forms of one browser to its requests. */
export const CSRF_COOKIE = 'websubsub_dashboard_csrf';

const digest = (key: string | Buffer, text: string): Buffer =>
  createHmac('sha256', key).update(text).digest();

/** Compare two secrets in constant time, whatever their lengths. */
function sameSecret(key: Buffer, given: string, expected: string): boolean {
  return timingSafeEqual(digest(key, given), digest(key, expected));
}

/** The request's cookies by name (the first of a repeated name). */
export function cookiesOf(request: CallbackRequest): Record<string, string> {
  const header = request.headers['cookie'];
  const raw = Array.isArray(header) ? header.join('; ') : header;
  if (!raw) return {};

  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(parseCookie(raw))) {
    if (value !== undefined && !(name in out)) out[name] = value;
  }
  return out;
}

/** The token of an `Authorization: Bearer` header, or `null`. */
export function bearerToken(request: CallbackRequest): string | null {
  const header = request.headers['authorization'];
  const value = Array.isArray(header) ? header[0] : header;
  const match = value ? /^Bearer\s+(\S+)\s*$/i.exec(value) : null;
  return match ? (match[1] as string) : null;
}

/**
 * A shared token that opens the dashboard: sent as `Authorization: Bearer`, or once in a
 * sign-in (form or `?token=`) that leaves a session cookie. A session is its end time and a
 * random nonce, signed with a key derived from the token: the token itself is never stored in
 * the browser, every instance sharing the token accepts the session, it ends at its time
 * (`sessionSeconds` after sign-in), and changing the token ends every session at once.
 */
export class TokenCheck {
  private readonly key = randomBytes(32);
  private readonly sessionKey: Buffer;

  constructor(
    private readonly token: string,
    /** How long a session lasts after its sign-in. */
    readonly sessionSeconds: number,
    private readonly now: () => Date,
  ) {
    this.sessionKey = digest(token, 'websubsub dashboard session');
  }

  /** Is this the token? */
  matches(candidate: string): boolean {
    return sameSecret(this.key, candidate, this.token);
  }

  /** The cookie value of a new session, starting now. */
  newSession(): string {
    const ends = this.now().getTime() + this.sessionSeconds * 1000;
    const body = `${ends}.${randomBytes(16).toString('base64url')}`;
    return `${body}.${digest(this.sessionKey, body).toString('base64url')}`;
  }

  /** Does the request carry the token or a session made with it that has not ended? */
  allows(request: CallbackRequest): boolean {
    const bearer = bearerToken(request);
    if (bearer !== null && this.matches(bearer)) return true;

    const session = cookiesOf(request)[SESSION_COOKIE];
    const signed = session === undefined ? -1 : session.lastIndexOf('.');
    if (session === undefined || signed <= 0) return false;
    const body = session.slice(0, signed);
    const expected = digest(this.sessionKey, body).toString('base64url');
    if (!sameSecret(this.key, session.slice(signed + 1), expected)) return false;
    const ends = Number(body.slice(0, body.indexOf('.')));
    return Number.isFinite(ends) && ends > this.now().getTime();
  }
}

/**
 * Protection of the action forms against cross-site requests (signed double submit): each
 * browser gets a random cookie, and each form carries an HMAC of that cookie which only this
 * server can compute. A site that makes a browser post here can neither read the cookie nor
 * forge the form field.
 */
export class CsrfGuard {
  constructor(private readonly secret: Buffer) {}

  /** A fresh value for the cookie. */
  static newCookieValue(): string {
    return randomBytes(24).toString('base64url');
  }

  /** The form field that goes with a cookie value. */
  tokenFor(cookieValue: string): string {
    return digest(this.secret, `csrf:${cookieValue}`).toString('base64url');
  }

  /** Does the form field go with the cookie? */
  check(cookieValue: string | undefined, formToken: string | null): boolean {
    if (!cookieValue || !formToken) return false;
    return sameSecret(this.secret, formToken, this.tokenFor(cookieValue));
  }
}

import { lookup } from 'node:dns/promises';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector, request as undiciRequest, type Dispatcher } from 'undici';
import { BlockedAddressError, WebSubError } from './errors.js';
import { USER_AGENT } from './version.js';

/** How every outbound request of the library is bounded and guarded. */
export interface HttpOptions {
  /**
   * Milliseconds the whole exchange may take: connecting, every redirect hop and reading the
   * body. @default 15000
   */
  timeoutMs?: number;
  /** A response body larger than this many bytes is an error. @default 5242880 (5 MiB) */
  maxResponseBytes?: number;
  /** Redirects followed before giving up. @default 5 */
  maxRedirects?: number;
  /**
   * Refuse to connect to private, loopback, link-local, unique-local, unspecified and other
   * non-public addresses. Checked on the addresses a hostname resolves to (the connection uses
   * the address that was checked, so DNS rebinding cannot slip past) and on every redirect hop.
   * Turn it on when topic or hub URLs come from people you do not trust. @default false
   */
  blockPrivateAddresses?: boolean;
  /**
   * Decides which addresses `blockPrivateAddresses` refuses, e.g. to admit one hub on a private
   * network. Gets an IPv4 or IPv6 address without brackets. @default isPrivateAddress
   */
  isBlockedAddress?: (address: string) => boolean;
  /**
   * The `User-Agent` header.
   * @default `websubsub/<version> (+https://github.com/websubsub/websubsub)`
   */
  userAgent?: string;
}

/** One outbound request. */
export interface HttpRequest {
  /** The HTTP method. */
  method: 'GET' | 'HEAD' | 'POST';
  /** Request headers; names are case-insensitive and override the defaults (`User-Agent`). */
  headers?: Record<string, string>;
  /** The request body, sent as it is. */
  body?: string | Buffer;
  /**
   * `'follow'`: follow 301/302/303/307/308 as fetch does (303, and 301/302 after a POST, go on
   * as a GET without body); `'same-method'`: follow 301/302/307/308 sending the same method and
   * body again (what a hub POST needs: a hub moved to https often answers 301), not 303;
   * `'manual'`: return the redirect as it is.
   * @default 'follow'
   */
  redirect?: 'follow' | 'same-method' | 'manual';
  /**
   * Asked of each redirect before it is followed, with the URL that answered it and its headers:
   * `true` returns that redirect as the response (discovery stops at one that names a hub).
   */
  endsAtRedirect?: (url: string, headers: Record<string, string | string[]>) => boolean;
  /**
   * The body holds a secret: once the request went over https, a redirect to plain http is
   * refused (`insecure_redirect`) rather than sending the body again in clear.
   */
  secretBody?: boolean;
}

/** One redirect that was followed. */
export interface HttpRedirect {
  /** The redirect status (301, 302, 303, 307 or 308). */
  status: number;
  /** The URL that answered with the redirect. */
  from: string;
  /** The absolute URL it pointed to. */
  to: string;
}

/** The final response, body read in full. */
export interface HttpResponse {
  /** The status of the last response. */
  status: number;
  /** The URL of the last response, after redirects. */
  url: string;
  /** Response headers with lower-case names; a repeated header is an array, in order. */
  headers: Record<string, string | string[]>;
  /** The raw body bytes. */
  body: Buffer;
  /** The redirects followed, in order. */
  redirects: HttpRedirect[];
}

/** Why an outbound request failed. */
export type HttpRequestErrorCode =
  | 'timeout'
  | 'network'
  | 'too_many_redirects'
  | 'redirect_loop'
  | 'invalid_redirect'
  | 'insecure_redirect'
  | 'response_too_large'
  | 'invalid_url'
  | 'blocked_address'
  | 'unsupported_protocol';

/**
 * Thrown by `httpRequest` when no response could be had: the URL is invalid or not http(s),
 * the address is refused, the network failed, time ran out, the body was too large, or the
 * redirects went wrong (a loop, too many hops, a missing or invalid `Location`, a secret sent
 * towards plain http). A non-2xx status is not an error: it is returned.
 */
export class HttpRequestError extends WebSubError {
  /** Why the request failed. */
  declare readonly code: HttpRequestErrorCode;

  /** The URL of the request (or redirect hop) that failed. */
  readonly url: string;

  constructor(
    code: HttpRequestErrorCode,
    message: string,
    options: { url: string; cause?: unknown },
  ) {
    super(code, message, { cause: options.cause });
    this.url = options.url;
  }
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_MAX_RESPONSE_BYTES = 5 * 1024 * 1024;
const DEFAULT_MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

// Fetch drops these when a redirect turns a request into a GET without body.
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language'];

// Credentials meant for one origin must not travel to another one a redirect names.
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie'];

/**
 * Whether an address is anything but public unicast: private (RFC 1918), loopback, link-local,
 * unique-local, unspecified, carrier-grade NAT, multicast, broadcast, documentation, reserved,
 * and IPv6 transition ranges (6to4, Teredo, NAT64). IPv4-mapped IPv6 addresses are judged as
 * the IPv4 address they carry. A string that is not an IP address counts as private, so a
 * check fails closed.
 */
export function isPrivateAddress(ip: string): boolean {
  if (!ipaddr.isValid(ip)) return true;
  const address = ipaddr.process(ip);
  // The deprecated IPv4-compatible form (::/96) as URLs write it (`[::7f00:1]` for
  // `[::127.0.0.1]`), which ipaddr.js does not take for the IPv4 address it names.
  if (
    address.kind() === 'ipv6' &&
    address
      .toByteArray()
      .slice(0, 12)
      .every((byte) => byte === 0)
  ) {
    return true;
  }
  return address.range() !== 'unicast';
}

/**
 * Refuse, before any request, a URL whose host is or resolves to a blocked address when
 * `blockPrivateAddresses` is on (used to refuse a private hub when a subscription is made,
 * rather than when its first request fails). Does nothing when blocking is off.
 *
 * @throws HttpRequestError `blocked_address` or `invalid_url`.
 */
export async function assertAddressAllowed(url: string, options: HttpOptions = {}): Promise<void> {
  if (!options.blockPrivateAddresses) return;
  const isBlocked = failClosed(options.isBlockedAddress ?? isPrivateAddress);

  const parsed = parseHttpUrl(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (ipaddr.isValid(host)) {
    addresses = [host];
  } else {
    try {
      addresses = (await lookup(host, { all: true })).map((entry) => entry.address);
    } catch (error) {
      throw new HttpRequestError('network', `Cannot resolve ${host}`, { url, cause: error });
    }
  }
  const refused = addresses.find((address) => isBlocked(address));
  if (refused !== undefined) {
    throw new HttpRequestError(
      'blocked_address',
      `${parsed.host} resolves to ${refused}, a private or reserved address, which is refused`,
      { url, cause: new BlockedAddressError(`${refused} is refused`) },
    );
  }
}

/**
 * Send one request and read its response, following redirects as `request.redirect` says.
 * Every outbound request of websubsub goes through here, so the limits in `options` hold for
 * all of them. Resolves with any status, 4xx and 5xx included.
 *
 * @throws HttpRequestError when no response could be had.
 */
export async function httpRequest(
  url: string,
  request: HttpRequest,
  options: HttpOptions = {},
): Promise<HttpResponse> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const redirectMode = request.redirect ?? 'follow';
  const isBlocked = options.blockPrivateAddresses
    ? failClosed(options.isBlockedAddress ?? isPrivateAddress)
    : null;

  let current = parseHttpUrl(url);
  let method: HttpRequest['method'] = request.method;
  let body = request.body;
  let headers = lowerCaseKeys({
    'user-agent': options.userAgent ?? USER_AGENT,
    ...request.headers,
  });
  const redirects: HttpRedirect[] = [];
  const visited = new Set([`${method} ${withoutHash(current)}`]);

  // One agent per call: its connector carries this call's address policy, and nothing pooled
  // by one caller can be reused under another caller's options.
  const agent = createAgent(timeoutMs, isBlocked);
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);

  try {
    for (;;) {
      const response = await undiciRequest(current, {
        dispatcher: agent,
        method,
        headers,
        body,
        signal: deadline.signal,
      });
      const status = response.statusCode;

      const responseHeaders = normaliseHeaders(response.headers);
      if (
        !followsRedirect(status, redirectMode) ||
        request.endsAtRedirect?.(current.href, responseHeaders) === true
      ) {
        return {
          status,
          url: current.href,
          headers: responseHeaders,
          body: await readBody(response, method, maxResponseBytes, current.href),
          redirects,
        };
      }

      // A redirect's own body is of no use; drain it so the connection can be reused.
      await response.body.dump();

      const next = redirectTarget(status, response.headers.location, current);
      if (request.secretBody && current.protocol === 'https:' && next.protocol === 'http:') {
        throw new HttpRequestError(
          'insecure_redirect',
          `Redirected from https to plain http (${next.href}); a secret is not sent in clear`,
          { url: current.href },
        );
      }
      redirects.push({ status, from: current.href, to: next.href });
      ({ method, body, headers } = redirectedRequest(
        status,
        { method, body, headers },
        current,
        next,
        redirectMode === 'same-method',
      ));

      // The same request to the same URL again can only end in the same place.
      const key = `${method} ${withoutHash(next)}`;
      if (visited.has(key)) {
        throw new HttpRequestError('redirect_loop', `Redirect loop back to ${next.href}`, {
          url: current.href,
        });
      }
      if (redirects.length > maxRedirects) {
        throw new HttpRequestError(
          'too_many_redirects',
          `More than ${maxRedirects} redirects, starting at ${url}`,
          { url: current.href },
        );
      }

      visited.add(key);
      current = next;
    }
  } catch (error) {
    throw classifyError(error, current.href, deadline.signal.aborted, timeoutMs);
  } finally {
    clearTimeout(timer);
    agent.destroy().catch(() => {});
  }
}

function followsRedirect(status: number, mode: NonNullable<HttpRequest['redirect']>): boolean {
  if (!REDIRECT_STATUSES.has(status)) return false;
  if (mode === 'same-method') return status !== 303;
  return mode === 'follow';
}

interface PendingRequest {
  method: HttpRequest['method'];
  body: string | Buffer | undefined;
  headers: Record<string, string>;
}

/**
 * The request to send to the redirect target, changed the way fetch changes it unless
 * `sameMethod` keeps the method and body.
 */
function redirectedRequest(
  status: number,
  request: PendingRequest,
  from: URL,
  to: URL,
  sameMethod: boolean,
): PendingRequest {
  let { method, body, headers } = request;

  const becomesGet =
    !sameMethod &&
    ((status === 303 && method !== 'GET' && method !== 'HEAD') ||
      ((status === 301 || status === 302) && method === 'POST'));
  if (becomesGet) {
    method = 'GET';
    body = undefined;
    headers = withoutKeys(headers, BODY_HEADERS);
  }

  if (to.origin !== from.origin) headers = withoutKeys(headers, CREDENTIAL_HEADERS);
  return { method, body, headers };
}

function parseHttpUrl(url: string, base?: URL): URL {
  let parsed: URL;
  try {
    parsed = new URL(url, base);
  } catch (error) {
    throw new HttpRequestError('invalid_url', `Not a valid URL: ${url}`, { url, cause: error });
  }

  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new HttpRequestError(
      'unsupported_protocol',
      `Only http: and https: URLs can be requested, not ${parsed.protocol} (${parsed.href})`,
      { url: parsed.href },
    );
  }
  return parsed;
}

function redirectTarget(status: number, location: string | string[] | undefined, from: URL): URL {
  const value = Array.isArray(location) ? location[0] : location;
  if (value === undefined || value.trim() === '') {
    const message = `${from.href} answered ${status} without a Location`;
    throw new HttpRequestError('invalid_redirect', message, { url: from.href });
  }

  try {
    return parseHttpUrl(value, from);
  } catch (error) {
    if (error instanceof HttpRequestError && error.code === 'unsupported_protocol') throw error;
    throw new HttpRequestError(
      'invalid_redirect',
      `${from.href} answered ${status} with an invalid Location: ${value}`,
      { url: from.href, cause: error },
    );
  }
}

async function readBody(
  response: Dispatcher.ResponseData,
  method: HttpRequest['method'],
  limit: number,
  url: string,
): Promise<Buffer> {
  // A HEAD response announces the length of a body it does not carry.
  if (method === 'HEAD') {
    await response.body.dump();
    return Buffer.alloc(0);
  }

  const message = `The response from ${url} exceeds ${limit} bytes`;
  const tooLarge = (): HttpRequestError =>
    new HttpRequestError('response_too_large', message, { url });

  // Refuse an announced oversize body before reading any of it.
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    response.body.on('error', () => {}).destroy();
    throw tooLarge();
  }

  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    // Leaving the loop by a throw destroys the stream, so nothing more is read.
    if (size > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/** A policy that throws refuses the address: it runs inside DNS and socket callbacks. */
function failClosed(policy: (address: string) => boolean): (address: string) => boolean {
  return (address) => {
    try {
      return policy(address);
    } catch {
      return true;
    }
  };
}

function createAgent(timeoutMs: number, isBlocked: ((address: string) => boolean) | null): Agent {
  const connectOptions = { timeout: timeoutMs };
  if (isBlocked === null) {
    return new Agent({
      connect: connectOptions,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  const connect = buildConnector({ ...connectOptions, lookup: guardedLookup(isBlocked) });
  const guardedConnect: buildConnector.connector = (target, callback) => {
    // Node skips the lookup for an IP literal, so judge the literal here.
    const literal = target.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(literal) !== 0 && isBlocked(literal)) {
      callback(new BlockedAddressError(`Refusing to connect to ${literal}`), null);
      return;
    }

    connect(target, (error, socket) => {
      if (error !== null) {
        callback(error, null);
        return;
      }
      // The last word goes to the address actually connected to, whatever resolved it.
      const remote = (socket as Socket).remoteAddress;
      if (remote !== undefined && isBlocked(remote)) {
        socket.destroy();
        callback(
          new BlockedAddressError(`Refusing to talk to ${remote} (${target.hostname})`),
          null,
        );
        return;
      }
      callback(null, socket);
    });
  };

  return new Agent({ connect: guardedConnect, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
}

/**
 * A DNS lookup that hands the connection only addresses the policy admits, so the socket
 * connects to exactly what was checked.
 */
function guardedLookup(isBlocked: (address: string) => boolean): LookupFunction {
  return (hostname, options: LookupOptions, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) {
        callback(error, '');
        return;
      }

      const allowed = addresses.filter((entry) => !isBlocked(entry.address));
      const first = allowed[0];
      if (first === undefined) {
        const found = addresses.map((entry) => entry.address).join(', ');
        callback(
          new BlockedAddressError(`${hostname} resolves only to refused addresses (${found})`),
          '',
        );
        return;
      }

      if (options.all) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };
}

function classifyError(
  error: unknown,
  url: string,
  timedOut: boolean,
  timeoutMs: number,
): HttpRequestError {
  if (error instanceof HttpRequestError) return error;

  const blocked = findCause(error, (cause) => cause instanceof BlockedAddressError);
  if (blocked instanceof BlockedAddressError) {
    return new HttpRequestError('blocked_address', blocked.message, { url, cause: blocked });
  }

  const undiciTimeout = findCause(error, (cause) =>
    ['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'].includes(
      (cause as { code?: string }).code ?? '',
    ),
  );
  if (timedOut || undiciTimeout !== undefined) {
    return new HttpRequestError(
      'timeout',
      `The request to ${url} took longer than ${timeoutMs} ms`,
      {
        url,
        cause: error,
      },
    );
  }

  const reason = error instanceof Error ? error.message : String(error);
  return new HttpRequestError('network', `The request to ${url} failed: ${reason}`, {
    url,
    cause: error,
  });
}

function findCause(error: unknown, test: (cause: object) => boolean): object | undefined {
  let cause = error;
  for (let depth = 0; depth < 8 && typeof cause === 'object' && cause !== null; depth++) {
    if (test(cause)) return cause;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

function normaliseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) result[name.toLowerCase()] = value;
  }
  return result;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) result[name.toLowerCase()] = value;
  return result;
}

function withoutKeys(headers: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !names.includes(name)));
}

function withoutHash(url: URL): string {
  return url.href.replace(/#.*$/, '');
}

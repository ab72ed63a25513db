import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

import type { SubscriberContext, SubscriberSettings } from './context.js';
import { acceptDelivery, firstHeader } from './distribution.js';
import { WebSubError } from './errors.js';
import { parseQuery } from './query.js';
import { answerVerification } from './verification.js';

/** A request to a callback, as any HTTP framework can give it. */
export interface CallbackRequest {
  /** HTTP method, any case. */
  method: string;
  /** The request target as received: path and raw query string. */
  url: string;
  /** Request headers; names in lower case, as Node gives them. */
  headers: Record<string, string | string[] | undefined>;
  /** The raw body bytes, before any parser touched them. */
  body?: Uint8Array;
}

/** The answer to a callback request, for the framework to send as it is. */
export interface CallbackResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

/** Which handler and subscription a callback path names. */
export interface CallbackRoute {
  handler: string;
  id: string;
}

/** Thrown by `readRequestBody` when a body exceeds the limit. */
export class PayloadTooLargeError extends WebSubError {
  constructor(limit: number) {
    super('payload_too_large', `Request body exceeds ${limit} bytes`);
  }
}

/**
 * Thrown by `readRequestBody` when the bodies being read at once, in this process, would hold
 * more than their budget: answered 503, so that the hub sends the content again later.
 */
export class TooManyBodiesError extends WebSubError {
  constructor(budget: number) {
    super('too_busy', `Request bodies being read would exceed ${budget} bytes`);
  }
}

/** The most bytes of callback bodies read at once in a process, by default. */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/** Bytes of the request bodies being read right now, across the process. */
let bufferedBytes = 0;

const EMPTY = Buffer.alloc(0);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const text = (status: number, body: string, headers: Record<string, string> = {}) => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8', ...headers },
  body,
});

/** Each handler's callback path, and the routes of the paths looked up lately. */
interface RouteTable {
  paths: Array<[handler: string, path: string]>;
  /** The path of `baseUrl`, where a handler at the root path is also reached. */
  basePath: string;
  /** Every request's path is looked up twice (adapter, then handler): the second is a hit. */
  seen: Map<string, CallbackRoute | null>;
}

/** Paths remembered per table (past that the memory starts over), and the longest one kept. */
const ROUTES_KEPT = 4096;
const ROUTE_KEPT_LENGTH = 512;

const routeTables = new WeakMap<SubscriberSettings['handlers'], RouteTable>();

function routeTable(settings: SubscriberSettings): RouteTable {
  const { handlers } = settings;
  let table = routeTables.get(handlers);
  if (!table) {
    const paths = [...handlers].map(([handler, { path }]): [string, string] => [handler, path]);
    const basePath = new URL(settings.baseUrl).pathname.replace(/\/$/, '');
    table = { paths, basePath, seen: new Map() };
    routeTables.set(handlers, table);
  }
  return table;
}

/** Find the handler and subscription id a path names, or `null` when it is no callback of ours. */
export function matchCallback(
  context: SubscriberContext,
  pathname: string,
): Readonly<CallbackRoute> | null {
  const table = routeTable(context.settings);
  const known = table.seen.get(pathname);
  if (known !== undefined) return known;

  const route = findRoute(table, pathname);
  if (pathname.length <= ROUTE_KEPT_LENGTH) {
    if (table.seen.size >= ROUTES_KEPT) table.seen.clear();
    table.seen.set(pathname, route);
  }
  return route;
}

function findRoute({ paths, basePath }: RouteTable, pathname: string): CallbackRoute | null {
  const trimmed = pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
  const slash = trimmed.lastIndexOf('/');
  if (slash < 0) return null;

  const id = trimmed.slice(slash + 1);
  const prefix = trimmed.slice(0, slash);
  if (!UUID.test(id)) return null;
  const route = (handler: string) => Object.freeze({ handler, id: id.toLowerCase() });

  // The callback URL as built, `<baseUrl path><handler path>/<id>`, names its handler exactly.
  const underBase =
    basePath !== '' && (prefix === basePath || prefix.startsWith(`${basePath}/`))
      ? prefix.slice(basePath.length)
      : null;
  const built = underBase === null ? undefined : paths.find(([, path]) => path === underBase);
  if (built) return route(built[0]);

  // Else (a proxy that strips or adds a prefix) the longest handler path ending the prefix:
  // `/v2/hooks` is not taken for `/hooks` of another. The root path only ends an empty one.
  let found: string | null = null;
  let longest = -1;
  for (const [handler, path] of paths) {
    const ends = path === '' ? prefix === '' : prefix.endsWith(path);
    if (ends && path.length > longest) {
      found = handler;
      longest = path.length;
    }
  }
  return found === null ? null : route(found);
}

/**
 * The framework-neutral callback handler: intent verification and denial on GET, content
 * distribution on POST, 405 for anything else. It never throws: a failing store answers 503
 * so that the hub tries again.
 */
export async function handleCallback(
  context: SubscriberContext,
  request: CallbackRequest,
): Promise<CallbackResponse> {
  const queryStart = request.url.indexOf('?');
  const pathname = queryStart === -1 ? request.url : request.url.slice(0, queryStart);
  const route = matchCallback(context, pathname);
  if (!route) return text(404, 'Not found');

  const method = request.method === 'POST' ? 'POST' : request.method.toUpperCase();
  if (method !== 'GET' && method !== 'POST')
    return text(405, 'Method not allowed', { allow: 'GET, POST' });

  const raw = request.body ?? EMPTY;
  const body = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (method === 'POST' && body.length > context.settings.maxBodyBytes) {
    return refuseOversized(context, request);
  }

  try {
    const record = await context.store.get(route.id);
    if (!record || record.handler !== route.handler) {
      if (method === 'POST') {
        context.events.emit('delivery:rejected', {
          subscriptionId: route.id,
          handler: route.handler,
          reason: 'unknown_subscription',
        });
      }
      return text(404, 'Unknown subscription');
    }

    if (method === 'POST') return await acceptDelivery(context, record, request, body);

    const raw = queryStart === -1 ? '' : request.url.slice(queryStart + 1);
    const query = parseQuery(raw);
    if (!query.ok) return text(400, query.reason);
    const path = queryStart === -1 ? request.url : request.url.slice(0, queryStart);
    const reached = { host: firstHeader(request.headers['host']), path, query: raw };
    return await answerVerification(context, record, query.params, reached);
  } catch (error) {
    context.logger.error({ error, subscriptionId: route.id }, 'Callback failed');
    return text(503, 'Try again later', { 'retry-after': '30' });
  }
}

/** Refuse content over the size limit, counted as a rejected delivery of its subscription. */
export function refuseOversized(
  context: SubscriberContext,
  request: Omit<CallbackRequest, 'body'>,
): CallbackResponse {
  const queryStart = request.url.indexOf('?');
  const route = matchCallback(
    context,
    queryStart === -1 ? request.url : request.url.slice(0, queryStart),
  );
  if (route) {
    context.events.emit('delivery:rejected', {
      subscriptionId: route.id,
      handler: route.handler,
      reason: 'too_large',
    });
  }
  return text(413, 'Payload too large');
}

/**
 * Read a Node request body up to `limit` bytes; rejects with `PayloadTooLargeError` beyond, and
 * with `TooManyBodiesError` when the bodies being read at once in this process would hold more
 * than `maxBuffered` bytes (clients that send large bodies slowly, or never finish them, cannot
 * make the process hold more than that).
 */
export function readRequestBody(
  request: IncomingMessage,
  limit: number,
  maxBuffered: number = DEFAULT_MAX_BUFFERED_BYTES,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new PayloadTooLargeError(limit));
      return;
    }
    if (Number.isFinite(declared) && bufferedBytes + declared > maxBuffered) {
      reject(new TooManyBodiesError(maxBuffered));
      return;
    }

    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    /** Give the bytes back to the budget, once: `false` when it was done already. */
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      bufferedBytes -= size;
      return true;
    };
    const fail = (error: Error) => {
      if (!settle()) return;
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', fail);
      request.off('close', onClose);
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      bufferedBytes += chunk.length;
      if (size > limit) fail(new PayloadTooLargeError(limit));
      else if (bufferedBytes > maxBuffered) fail(new TooManyBodiesError(maxBuffered));
      else chunks.push(chunk);
    };
    // Nothing but 'close' follows 'end', so the listeners are left on the finished request.
    const onEnd = () => {
      if (settle())
        resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onClose = () => fail(new Error('The request was closed before its body ended'));

    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', fail);
    request.on('close', onClose);
  });
}

let turnEnd: Promise<void> | null = null;

/**
 * The real `setImmediate`, taken when this module loads: fake timers installed later (sinon,
 * Jest, Vitest) replace the global, and an end of turn scheduled through a fake one would never
 * come, holding every answer after it.
 */
const immediate = setImmediate;

/**
 * Resolves at the end of this turn of the event loop, once every socket found ready in it was
 * read: the callback adapters wait for it before writing an answer, so that the answers of a
 * turn go out together. Each write to a connection whose client sleeps has the kernel wake that
 * client; written together, one wake-up serves many answers. On two cores with the load
 * generator beside the server this made core's mount on `node:http` 20–30 % faster (see
 * BENCHMARKS.md); an answer waits for the rest of its turn, well under a millisecond.
 */
export function endOfTurn(): Promise<void> {
  turnEnd ??= new Promise((resolve) =>
    immediate(() => {
      turnEnd = null;
      resolve();
    }),
  );
  return turnEnd;
}

/** The head of an answer with neither headers nor body (content acknowledged). */
const EMPTY_HEAD: Readonly<Record<string, string>> = Object.freeze({ 'content-length': '0' });

/** Write a neutral response to a Node response. */
export function sendResponse(response: ServerResponse, answer: CallbackResponse): void {
  const { body, headers } = answer;
  if (body.length === 0 && !hasAny(headers)) {
    // The length said outright: Node adds it by itself only to some heads (not to HTTP/1.0
    // answers, nor once a middleware such as compression has written the head).
    response.writeHead(answer.status, EMPTY_HEAD);
    response.end();
    return;
  }
  // A string body goes out in one write with the head; a Buffer would take a second chunk.
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  response.writeHead(answer.status, { ...headers, 'content-length': String(length) });
  response.end(body);
}

function hasAny(headers: Record<string, string>): boolean {
  for (const _ in headers) return true;
  return false;
}

/** What an adapter needs from a subscriber to serve its callbacks. */
export interface CallbackEndpoint {
  /** Does this path belong to one of the subscriber's callbacks? */
  isCallbackPath(pathname: string): boolean;
  /** Every callback path prefix, one per handler (for mounting on routers). */
  readonly callbackPaths: string[];
  /** The largest content body accepted, in bytes. */
  readonly maxBodyBytes: number;
  /** The most bytes of bodies read at once in the process. @default 64 MiB */
  readonly maxBufferedBytes?: number;
  /** Answer one callback request. */
  handle(request: CallbackRequest): Promise<CallbackResponse>;
  /**
   * Answer a request whose body was refused while it streamed in, being over `maxBodyBytes`
   * (so it is counted like any other refusal). Without it adapters answer a plain 413.
   */
  refuseOversized?(request: Omit<CallbackRequest, 'body'>): CallbackResponse;
}

/**
 * The answer to a body that could not be read: 413 over the size limit (the endpoint's own, as
 * `oversizedAnswer`), 503 when too many bodies are being read at once, else 400.
 */
export function unreadBodyAnswer(
  endpoint: CallbackEndpoint,
  request: Omit<CallbackRequest, 'body'>,
  error: unknown,
): CallbackResponse {
  if (error instanceof PayloadTooLargeError) return oversizedAnswer(endpoint, request);
  if (error instanceof TooManyBodiesError) {
    return text(503, 'Try again later', { 'retry-after': '30' });
  }
  return text(400, 'Bad request');
}

/** The answer to a body refused while reading it: the endpoint's own, or a plain 413. */
export function oversizedAnswer(
  endpoint: CallbackEndpoint,
  request: Omit<CallbackRequest, 'body'>,
): CallbackResponse {
  return endpoint.refuseOversized?.(request) ?? text(413, 'Payload too large');
}

/**
 * Serve callbacks straight from `node:http`, with no framework: callback paths are answered,
 * anything else goes to `fallback` (404 by default).
 */
export function createNodeListener(
  endpoint: CallbackEndpoint,
  fallback?: RequestListener,
): RequestListener {
  return (request, response) => {
    const url = request.url ?? '/';
    const queryStart = url.indexOf('?');
    const pathname = queryStart === -1 ? url : url.slice(0, queryStart);
    if (!endpoint.isCallbackPath(pathname)) {
      if (fallback) fallback(request, response);
      else sendResponse(response, text(404, 'Not found'));
      return;
    }
    void serveNode(endpoint, request, response);
  };
}

/** Read, answer and write one callback request on Node's own request and response. */
export async function serveNode(
  endpoint: CallbackEndpoint,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  let body: Buffer | undefined;
  if (request.method === 'POST') {
    try {
      body = await readRequestBody(request, endpoint.maxBodyBytes, endpoint.maxBufferedBytes);
    } catch (error) {
      const target = { method: 'POST', url: request.url ?? '/', headers: request.headers };
      // The rest of the body is not read: the connection cannot carry another request.
      response.setHeader('connection', 'close');
      sendResponse(response, unreadBodyAnswer(endpoint, target, error));
      return;
    }
  } else {
    request.resume();
  }

  const answer = await endpoint.handle({
    method: request.method ?? 'GET',
    url: request.url ?? '/',
    headers: request.headers,
    ...(body ? { body } : {}),
  });
  await endOfTurn();
  sendResponse(response, answer);
}

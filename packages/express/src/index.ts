import type { IncomingMessage, ServerResponse } from 'node:http';

import {
  endOfTurn,
  readRequestBody,
  sendResponse,
  silentLogger,
  unreadBodyAnswer,
  type CallbackEndpoint,
  type CallbackResponse,
  type Logger,
} from '@websubsub/core';
import type { IRouter, NextFunction, Request, RequestHandler, Response } from 'express';

/** Options of the Express adapter. */
export interface ExpressAdapterOptions {
  /**
   * When a body parser mounted earlier has consumed the request stream, use the bytes it kept:
   * those `captureRawBody` saved, a `Buffer` in `req.rawBody`, or the `Buffer` `express.raw()`
   * left in `req.body`. Parsed JSON or text is never used: re-encoding changes the signed bytes.
   * @default true
   */
  useParsedRawBody?: boolean;
  /** Told (`error`) of each delivery whose body was consumed with nothing kept. @default silent */
  logger?: Logger;
}

// Symbol.for, not a module-private symbol: the ESM and CJS builds of this package may both be
// loaded in one process, and the bytes one saves must be found by the other.
const RAW_BODY = Symbol.for('websubsub.rawBody');

type WithKeptBody = IncomingMessage & {
  [RAW_BODY]?: Buffer;
  rawBody?: unknown;
  body?: unknown;
};

const plain = (status: number, body: string): CallbackResponse => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8' },
  body,
});

const CONSUMED =
  'The request body was read by a body parser mounted before the WebSub callback and its ' +
  'bytes were not kept: mount the callback middleware before body parsers, or pass ' +
  'captureRawBody as their verify option.';

/**
 * A `verify` hook for `express.json()`, `express.text()`, `express.raw()` and
 * `express.urlencoded()` that keeps the exact body bytes on the request, so that a callback
 * mounted after the parser can still check the hub's signature over them:
 * `app.use(express.json({ verify: captureRawBody }))`.
 */
export function captureRawBody(
  request: IncomingMessage,
  _response: ServerResponse,
  body: Buffer,
): void {
  (request as WithKeptBody)[RAW_BODY] = body;
}

/** The bytes a body parser kept for this request, or `null` when it kept none. */
function keptBody(request: WithKeptBody): Buffer | null {
  const candidates = [request[RAW_BODY], request.rawBody, request.body];
  for (const candidate of candidates) {
    if (Buffer.isBuffer(candidate)) return candidate;
  }
  return null;
}

/** The request target as it arrived; a router mounted on a prefix strips it from `req.url`. */
function requestTarget(request: Request): string {
  return request.originalUrl || request.url;
}

function pathOf(target: string): string {
  const queryStart = target.indexOf('?');
  return queryStart === -1 ? target : target.slice(0, queryStart);
}

function callbackHandler(endpoint: CallbackEndpoint, options: ExpressAdapterOptions) {
  const logger = options.logger ?? silentLogger;

  return async (request: Request, response: Response): Promise<void> => {
    const target = requestTarget(request);
    let body: Buffer | undefined;

    if (request.method === 'POST') {
      const consumed = request.readableEnded || request.readableDidRead;
      if (consumed) {
        const kept = options.useParsedRawBody === false ? null : keptBody(request);
        if (kept === null) {
          // A 5xx, so that the hub keeps the content and sends it again once this is fixed.
          logger.error({ url: target }, CONSUMED);
          sendResponse(response, plain(500, CONSUMED));
          return;
        }
        body = kept;
      } else {
        try {
          body = await readRequestBody(request, endpoint.maxBodyBytes, endpoint.maxBufferedBytes);
        } catch (error) {
          // The rest of the body was never read: close the connection rather than parse it.
          response.setHeader('connection', 'close');
          sendResponse(
            response,
            unreadBodyAnswer(
              endpoint,
              { method: 'POST', url: target, headers: request.headers },
              error,
            ),
          );
          return;
        }
      }
    } else {
      request.resume();
    }

    const answer = await endpoint.handle({
      method: request.method,
      url: target,
      headers: request.headers,
      ...(body ? { body } : {}),
    });
    await endOfTurn();
    sendResponse(response, answer);
  };
}

/**
 * Pass requests that are no callback on; run the handler for the others, handing a failure to
 * Express's error handling instead of losing it.
 */
function forCallbacks(
  endpoint: CallbackEndpoint,
  handle: (request: Request, response: Response) => Promise<void>,
): RequestHandler {
  return (request: Request, response: Response, next: NextFunction) => {
    if (!endpoint.isCallbackPath(pathOf(requestTarget(request)))) {
      next();
      return;
    }
    handle(request, response).catch(next);
  };
}

/**
 * Express middleware answering the subscriber's callback routes (intent verification, denial
 * and content distribution) and passing every other request on:
 * `app.use(createExpressMiddleware(subscriber))`. Mount it before body parsers, or give the
 * parsers mounted before it `captureRawBody` as their `verify` option.
 */
export function createExpressMiddleware(
  endpoint: CallbackEndpoint,
  options: ExpressAdapterOptions = {},
): RequestHandler {
  return forCallbacks(endpoint, callbackHandler(endpoint, options));
}

/** A route pattern for one handler path: the path as text, then one segment (the id). */
function routePattern(path: string): RegExp {
  const literal = path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  // A RegExp rather than `${path}/:id`: Express decodes named parameters and answers 400 to a
  // broken escape, where a path that is no callback should reach the app like any other.
  return new RegExp(`^${literal}/[^/]+/?$`);
}

/**
 * Mount the callback routes on an Express app or `express.Router()`: one `all` route per
 * handler path. A prefix the router is mounted on must also be part of the subscriber's
 * `baseUrl`, so that callback URLs reach it.
 */
export function mountExpressRoutes(
  router: IRouter,
  endpoint: CallbackEndpoint & { callbackPaths: string[] },
  options: ExpressAdapterOptions = {},
): void {
  const handle = forCallbacks(endpoint, callbackHandler(endpoint, options));
  for (const path of endpoint.callbackPaths) {
    router.all(routePattern(path), handle);
  }
}

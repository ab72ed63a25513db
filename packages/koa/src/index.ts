import {
  endOfTurn,
  readRequestBody,
  unreadBodyAnswer,
  type CallbackEndpoint,
  type CallbackResponse,
} from '@websubsub/core';
import type { Context, Middleware, Next } from 'koa';

/** Options of the Koa adapter. */
export interface KoaAdapterOptions {
  /**
   * Use `ctx.request.rawBody` when a body parser ran before this middleware and consumed the
   * stream. Byte-exact only for UTF-8 bodies; mounting before body parsers is better. @default true
   */
  useParsedRawBody?: boolean;
}

/** The smallest shape of a router this adapter mounts on (`@koa/router` fits). */
export interface KoaRouterLike {
  all(path: string, middleware: Middleware): unknown;
}

/**
 * The path of a request target, read without Koa's `ctx.path`: that parses the URL with Node's
 * legacy parser, which throws on some malformed targets (a 500 before any route runs).
 */
function pathOf(url: string): string {
  const queryStart = url.indexOf('?');
  return queryStart === -1 ? url : url.slice(0, queryStart);
}

function send(ctx: Context, answer: CallbackResponse): void {
  if (answer.body.length === 0 && Object.keys(answer.headers).length === 0) {
    // An explicit null body, which Koa answers with `Content-Length: 0` and no content type
    // without guessing one first. The type an earlier middleware set goes first (Koa turns a
    // null JSON body into "null"), the status after (Koa turns a null body's status into 204).
    ctx.remove('content-type');
    ctx.body = null;
    ctx.status = answer.status;
    return;
  }
  ctx.status = answer.status;
  for (const [name, value] of Object.entries(answer.headers)) ctx.set(name, value);
  ctx.body = typeof answer.body === 'string' ? answer.body : Buffer.from(answer.body);
  // Koa would guess a content type from the body; the core's answer already names one, or has
  // no body to describe.
  if (answer.headers['content-type']) ctx.type = answer.headers['content-type'];
  else if (answer.body.length === 0) ctx.remove('content-type');
}

/** Thrown when a body parser ran first and left no raw bytes: signatures cannot be checked. */
class BodyConsumedError extends Error {}

async function readBody(
  ctx: Context,
  endpoint: CallbackEndpoint,
  options: KoaAdapterOptions,
): Promise<Buffer> {
  const consumed = ctx.req.readableEnded || ctx.req.readableDidRead;
  if (!consumed) return readRequestBody(ctx.req, endpoint.maxBodyBytes, endpoint.maxBufferedBytes);

  const raw = (ctx.request as { rawBody?: unknown }).rawBody;
  if (options.useParsedRawBody !== false && typeof raw === 'string')
    return Buffer.from(raw, 'utf8');
  throw new BodyConsumedError();
}

function callbackHandler(endpoint: CallbackEndpoint, options: KoaAdapterOptions) {
  return async (ctx: Context): Promise<void> => {
    let body: Buffer | undefined;
    if (ctx.method === 'POST') {
      try {
        body = await readBody(ctx, endpoint, options);
      } catch (error) {
        ctx.type = 'text/plain';
        if (error instanceof BodyConsumedError) {
          // A server-side mistake: 500 makes the hub send the content again once it is fixed.
          ctx.status = 500;
          ctx.body = 'The body was consumed before websubsub read it: mount it before body parsers';
          return;
        }
        ctx.set('connection', 'close');
        const target = { method: 'POST', url: ctx.url, headers: ctx.headers };
        send(ctx, unreadBodyAnswer(endpoint, target, error));
        return;
      }
    }

    const answer = await endpoint.handle({
      method: ctx.method,
      url: ctx.url,
      headers: ctx.headers,
      ...(body ? { body } : {}),
    });
    send(ctx, answer);
    // Koa writes the answer once the middleware chain is done: this turn's answers together.
    await endOfTurn();
  };
}

/**
 * Koa middleware answering the subscriber's callback routes (intent verification, denial and
 * content distribution) and passing every other request on. Mount it before any body parser
 * so the signed body bytes reach it untouched: `app.use(createKoaMiddleware(subscriber))`.
 */
export function createKoaMiddleware(
  endpoint: CallbackEndpoint,
  options: KoaAdapterOptions = {},
): Middleware {
  const handle = callbackHandler(endpoint, options);
  return async (ctx: Context, next: Next) => {
    if (!endpoint.isCallbackPath(pathOf(ctx.url))) return next();
    await handle(ctx);
  };
}

/**
 * Mount the callback routes on a router (e.g. `@koa/router`): one `all` route per handler path.
 * A router prefix must also be part of the subscriber's `baseUrl` so callback URLs reach it.
 */
export function mountKoaRoutes(
  router: KoaRouterLike,
  endpoint: CallbackEndpoint,
  options: KoaAdapterOptions = {},
): void {
  const handle = callbackHandler(endpoint, options);
  for (const path of endpoint.callbackPaths) {
    // path-to-regexp gives meaning to these characters; a handler path means them literally.
    const literal = path.replace(/[()[\]{}?+*!:\\]/g, '\\$&');
    router.all(`${literal}/:id`, async (ctx, next) => {
      if (!endpoint.isCallbackPath(pathOf(ctx.url))) return next();
      await handle(ctx);
    });
  }
}

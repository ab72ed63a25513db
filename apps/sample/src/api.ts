import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type Koa from 'koa';
import {
  DiscoveryError,
  hasGivenUp,
  InvalidInputError,
  SubscriptionNotFoundError,
  WebSubError,
  type Subscriber,
  type Subscription,
} from '@websubsub/core';

import type { NotificationLog } from './notifications.js';

/** A subscription as the JSON API shows it: every field but the secrets, dates in ISO 8601. */
export function subscriptionJson(subscription: Subscription): Record<string, unknown> {
  const { secret, previousSecret: _previous, ...fields } = subscription;
  const out: Record<string, unknown> = {
    hasSecret: secret !== null,
    // Upkeep stopped retrying it after a maximum of failures: a person has to look at it.
    gaveUp: hasGivenUp(subscription),
  };
  for (const [name, value] of Object.entries(fields)) {
    out[name] = value instanceof Date ? value.toISOString() : value;
  }
  return out;
}

const problem = (code: string, message: string) => ({ error: { code, message } });

/**
 * Client errors raised before a route runs (the JSON body parser's: malformed JSON, too large,
 * bad encoding) answered in the API's error shape rather than as plain text.
 */
export async function jsonErrors(ctx: Koa.Context, next: Koa.Next): Promise<void> {
  try {
    await next();
    // Routes nobody answered, and methods a route does not take, in the same shape.
    if (ctx.body === undefined && (ctx.status === 404 || ctx.status === 405)) {
      const allowed = ctx.status === 405;
      ctx.body = problem(
        allowed ? 'method_not_allowed' : 'not_found',
        allowed ? `${ctx.method} is not allowed on ${ctx.path}` : `Nothing at ${ctx.path}`,
      );
      ctx.status = allowed ? 405 : 404;
    }
  } catch (error) {
    if (error instanceof URIError) {
      // Koa's own URL parsing throws on some malformed request targets.
      ctx.status = 400;
      ctx.body = problem('invalid_input', 'The request target is not a valid URL');
      return;
    }
    const status = (error as { status?: unknown }).status;
    if (typeof status !== 'number' || status < 400 || status >= 500) throw error;
    ctx.status = status;
    ctx.body = problem(
      status === 413 ? 'too_large' : 'invalid_input',
      status === 413
        ? 'The request body is too large'
        : status === 415
          ? `Unsupported Content-Encoding ${ctx.get('content-encoding')}: ` +
            'send the body as is, or in gzip, deflate or br'
          : 'Send a JSON object: { "topic", "hub"?, "leaseSeconds"?, "secret"? }',
    );
  }
}

/**
 * The JSON body parser, with a body that does not decompress as its `Content-Encoding` says
 * (the decompressor's own error, without an HTTP status) answered 400 rather than 500.
 */
export function parseJsonBody(): Koa.Middleware {
  const parse = bodyParser({ enableTypes: ['json'], encoding: 'utf-8' });
  return async (ctx, next) => {
    // Content codings are case-insensitive; the decompressor only knows them in lower case.
    const encoding = ctx.request.headers['content-encoding'];
    if (encoding !== undefined) ctx.request.headers['content-encoding'] = encoding.toLowerCase();
    try {
      await parse(ctx, async () => undefined);
    } catch (error) {
      if ((error as { status?: unknown }).status !== undefined) throw error;
      ctx.status = 400;
      const encoding = ctx.get('content-encoding') || 'its Content-Encoding';
      ctx.body = problem('invalid_input', `The request body does not decompress as ${encoding}`);
      return;
    }
    await next();
  };
}

/** The sample's JSON API over subscriptions and received notifications. */
export function createApiRouter(subscriber: Subscriber, notifications: NotificationLog): Router {
  const router = new Router();

  router.post('/subscriptions', async (ctx) => {
    if (!ctx.is('application/json')) {
      ctx.status = 400;
      ctx.body = problem('invalid_input', 'Send the subscription as application/json');
      return;
    }
    const input = ctx.request.body as Record<string, unknown> | undefined;
    if (!input || typeof input !== 'object' || Array.isArray(input)) {
      ctx.status = 400;
      ctx.body = problem(
        'invalid_input',
        'Send a JSON object: { "topic", "hub"?, "leaseSeconds"?, "secret"? }',
      );
      return;
    }
    const { topic, hub, leaseSeconds, secret } = input;
    const wrongType =
      typeof topic !== 'string'
        ? 'topic must be a string'
        : hub !== undefined && hub !== null && typeof hub !== 'string'
          ? 'hub must be a string'
          : leaseSeconds !== undefined && leaseSeconds !== null && typeof leaseSeconds !== 'number'
            ? 'leaseSeconds must be a number'
            : secret !== undefined && secret !== null && typeof secret !== 'string'
              ? 'secret must be a string'
              : null;
    if (wrongType) {
      ctx.status = 400;
      ctx.body = problem('invalid_input', wrongType);
      return;
    }

    try {
      const subscription = await subscriber.subscribe({
        topic: topic as string,
        ...(typeof hub === 'string' && hub !== '' ? { hub } : {}),
        ...(typeof leaseSeconds === 'number' ? { leaseSeconds } : {}),
        ...(typeof secret === 'string' ? { secret } : {}),
      });
      ctx.status = 202;
      ctx.body = subscriptionJson(subscription);
    } catch (error) {
      if (error instanceof InvalidInputError || error instanceof DiscoveryError) {
        ctx.status = 400;
        ctx.body = problem(error.code, error.message);
        return;
      }
      if (error instanceof WebSubError && error.code === 'blocked_address') {
        ctx.status = 400;
        ctx.body = problem(error.code, error.message);
        return;
      }
      throw error;
    }
  });

  router.get('/subscriptions', async (ctx) => {
    const all: Record<string, unknown>[] = [];
    let after: string | undefined;
    do {
      const page = await subscriber.list({}, { limit: 500, ...(after ? { after } : {}) });
      all.push(...page.items.map(subscriptionJson));
      after = page.next ?? undefined;
    } while (after);
    ctx.body = all;
  });

  router.get('/subscriptions/:id', async (ctx) => {
    const subscription = await subscriber.get(ctx.params.id as string);
    if (!subscription) {
      ctx.status = 404;
      ctx.body = problem(
        'not_found',
        new SubscriptionNotFoundError(ctx.params.id as string).message,
      );
      return;
    }
    ctx.body = subscriptionJson(subscription);
  });

  router.delete('/subscriptions/:id', async (ctx) => {
    try {
      const subscription = await subscriber.unsubscribe(ctx.params.id as string);
      ctx.status = 202;
      ctx.body = subscriptionJson(subscription);
    } catch (error) {
      if (!(error instanceof SubscriptionNotFoundError)) throw error;
      ctx.status = 404;
      ctx.body = problem('not_found', error.message);
    }
  });

  router.get('/notifications', async (ctx) => {
    ctx.body = await notifications.newestFirst();
  });

  return router;
}

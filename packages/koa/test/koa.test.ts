import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import {
  createMemoryQueue,
  createSubscriber,
  type MemoryQueue,
  type Notification,
  type Subscriber,
} from '@websubsub/core';
import {
  httpAdapterSuite,
  notificationFixtures,
  type MountedAdapter,
  type NotificationFixture,
} from '@websubsub/core/testing';
import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';
import Koa from 'koa';

import { createKoaMiddleware, mountKoaRoutes } from '../src/index.js';

async function listen(listener: RequestListener): Promise<MountedAdapter> {
  const server: Server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A Koa app that keeps its errors to itself, as a test's output should, and answers 400 to a
 * request target Koa cannot parse (its `ctx.path` throws a URIError on some malformed ones,
 * which @koa/router reads for every request: a 500 of the app's, not of the adapter's).
 */
function quietKoa(): Koa {
  const koa = new Koa();
  koa.silent = true;
  koa.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (!(error instanceof URIError)) throw error;
      ctx.status = 400;
      ctx.body = 'Bad request target';
    }
  });
  return koa;
}

/** The application's own routes: a Node listener behind everything the adapter passes on. */
const fallback =
  (app: RequestListener): Koa.Middleware =>
  (ctx) => {
    ctx.respond = false;
    app(ctx.req, ctx.res);
  };

httpAdapterSuite('koa: createKoaMiddleware', (endpoint, app) => {
  const koa = quietKoa();
  koa.use(createKoaMiddleware(endpoint));
  koa.use(fallback(app));
  return listen(koa.callback());
});

httpAdapterSuite('koa: mountKoaRoutes on @koa/router', (endpoint, app) => {
  const koa = quietKoa();
  const router = new Router();
  mountKoaRoutes(router, endpoint);
  koa.use(router.routes());
  koa.use(fallback(app));
  return listen(koa.callback());
});

describe('koa: body parsers and mount points', function () {
  const fixtures = notificationFixtures();
  const fixture = (name: string) =>
    fixtures.find((entry) => entry.name === name) as NotificationFixture;
  let hub: TestHub;
  let mounted: MountedAdapter;
  let app: RequestListener | null;
  let subscriber: Subscriber;
  let queue: MemoryQueue;
  let received: Notification[];

  beforeEach(async function () {
    app = null;
    received = [];
    hub = await startTestHub();
    mounted = await listen((request, response) => app?.(request, response));
  });

  afterEach(async function () {
    await subscriber?.stop();
    await mounted.close();
    await hub.close();
  });

  /** A subscriber whose callbacks are served by the Koa app `build` makes. */
  async function serve(build: (subscriber: Subscriber) => Koa, basePath = '') {
    queue = createMemoryQueue({ backoffMs: 10 });
    subscriber = createSubscriber({
      baseUrl: `${mounted.origin}${basePath}`,
      handlers: { news: (notification) => void received.push(notification) },
      queue,
      upkeep: false,
    });
    app = build(subscriber).callback();
    await subscriber.start();
  }

  /** Subscribe with the fixture's secret through the hub, then have the hub deliver it. */
  async function deliver(delivery: NotificationFixture) {
    const topic = hub.topicUrl(`/topics/${delivery.name}-${received.length}`);
    await subscriber.subscribe({ topic, hub: hub.url, secret: delivery.secret });
    await hub.waitFor(() =>
      hub.subscriptions().some((entry) => entry.topic === topic && entry.state === 'active'),
    );

    const [result] = await hub.publish(topic, { body: delivery.body, headers: delivery.headers });
    await queue.idle();
    return result!;
  }

  it('@koa/bodyparser before it: the jsonfeed signature holds over rawBody', async function () {
    let parsed: unknown;
    await serve((subscription) => {
      const koa = quietKoa();
      koa.use(bodyParser({ extendTypes: { json: ['application/feed+json'] } }));
      koa.use(async (ctx, next) => {
        parsed = (ctx.request.body as { version?: string } | undefined)?.version;
        await next();
      });
      koa.use(createKoaMiddleware(subscription));
      return koa;
    });

    const result = await deliver(fixture('jsonfeed'));

    expect(parsed).to.equal('https://jsonfeed.org/version/1.1');
    expect(result.status).to.equal(202);
    expect(received).to.have.length(1);
    expect(received[0]!.body.equals(fixture('jsonfeed').body)).to.equal(true);
  });

  it('@koa/bodyparser reading feeds as text before it: UTF-8 fixtures pass', async function () {
    await serve((subscription) => {
      const koa = quietKoa();
      koa.use(
        bodyParser({
          enableTypes: ['json', 'text'],
          extendTypes: { text: ['application/atom+xml', 'application/rss+xml'] },
        }),
      );
      koa.use(createKoaMiddleware(subscription));
      return koa;
    });

    for (const name of ['wordpress-atom-two-entries', 'youtube-new-video', 'rss-item']) {
      const before = received.length;

      const result = await deliver(fixture(name));

      expect(result.status, name).to.equal(202);
      expect(received[before]?.body.equals(fixture(name).body), name).to.equal(true);
    }
  });

  it('a parser before it and useParsedRawBody: false: a prompt 5xx', async function () {
    await serve((subscription) => {
      const koa = quietKoa();
      koa.use(bodyParser({ extendTypes: { json: ['application/feed+json'] } }));
      koa.use(createKoaMiddleware(subscription, { useParsedRawBody: false }));
      return koa;
    });
    const jsonfeed = fixture('jsonfeed');
    const topic = hub.topicUrl('/topics/consumed');
    const record = await subscriber.subscribe({ topic, hub: hub.url, secret: jsonfeed.secret });
    await hub.waitFor(() => hub.subscriptions().some((entry) => entry.state === 'active'));

    // The stream is gone: waiting for it would hold the hub until its own timeout.
    const answer = await fetch(record.callbackUrl, {
      method: 'POST',
      headers: Object.fromEntries(jsonfeed.headers),
      body: jsonfeed.body,
      signal: AbortSignal.timeout(2000),
    }).catch((error: unknown) => error);

    expect(answer, 'no answer within 2 s').to.be.instanceOf(Response);
    expect((answer as Response).status).to.be.at.least(500);
    await queue.idle();
    expect(received).to.have.length(0);
  });

  it('after a middleware that makes every answer JSON: still an empty 202', async function () {
    await serve((subscription) => {
      const koa = quietKoa();
      koa.use(async (ctx, next) => {
        ctx.type = 'application/json';
        await next();
      });
      koa.use(createKoaMiddleware(subscription));
      return koa;
    });

    const result = await deliver(fixture('wordpress-atom-two-entries'));

    expect(result.status).to.equal(202);
    expect(result.body).to.equal('');
    expect(result.headers['content-type']).to.equal(undefined);
    expect(result.headers['content-length']).to.equal('0');
    expect(received).to.have.length(1);
  });

  it('as routes of a @koa/router with a prefix that is part of baseUrl', async function () {
    await serve((subscription) => {
      const koa = quietKoa();
      const router = new Router({ prefix: '/base' });
      mountKoaRoutes(router, subscription);
      koa.use(router.routes());
      return koa;
    }, '/base');

    const result = await deliver(fixture('youtube-deleted-entry'));

    expect(result.status).to.equal(202);
    expect(received).to.have.length(1);
    const { callbackUrl, id } = received[0]!.subscription;
    expect(new URL(callbackUrl).pathname).to.equal(`/base/websub/news/${id}`);
  });
});

import type { Logger } from '@websubsub/core';
import {
  httpAdapterSuite,
  notificationFixtures,
  type NotificationFixture,
} from '@websubsub/core/testing';
import { expect } from 'chai';
import express, { type Request } from 'express';

import { captureRawBody, createExpressMiddleware, mountExpressRoutes } from '../src/index.js';
import { harness, listen, type Harness } from './helpers.js';

httpAdapterSuite('express: createExpressMiddleware', async (endpoint, app) => {
  const server = express();
  server.use(createExpressMiddleware(endpoint));
  server.use((request, response) => app(request, response));
  return listen(server);
});

httpAdapterSuite('express: mountExpressRoutes on express.Router()', async (endpoint, app) => {
  const server = express();
  const router = express.Router();
  mountExpressRoutes(router, endpoint);
  server.use(router);
  server.use((request, response) => app(request, response));
  return listen(server);
});

const JSON_TYPES = ['application/json', 'application/*+json'];

describe('express: body parsers and mount points', function () {
  const fixtures = notificationFixtures();
  const fixture = (name: string) =>
    fixtures.find((entry) => entry.name === name) as NotificationFixture;
  const jsonfeed = fixture('jsonfeed');
  let current: Harness | null = null;

  afterEach(async function () {
    await current?.close();
    current = null;
  });

  /** Publish a fixture to a fresh subscription with its secret; the callback's answer. */
  async function deliver(h: Harness, delivery: NotificationFixture) {
    const subscription = await h.subscribed(delivery.secret);
    const [result] = await h.hub.publish(subscription.topic, {
      body: delivery.body,
      headers: delivery.headers,
    });
    await h.queue.idle();
    return result!;
  }

  it('the jsonfeed fixture changes when parsed and re-serialised', function () {
    const reencoded = Buffer.from(
      JSON.stringify(JSON.parse(jsonfeed.body.toString('utf8')), null, 4),
    );

    expect(reencoded.equals(jsonfeed.body)).to.equal(false);
  });

  it('express.json() after it: raw jsonfeed to the handler, JSON to the app', async function () {
    current = await harness((subscriber) => {
      const app = express();
      app.use(createExpressMiddleware(subscriber));
      app.use(express.json({ type: JSON_TYPES }));
      app.post('/api/echo', (request, response) => void response.json({ parsed: request.body }));
      return app;
    });

    const result = await deliver(current, jsonfeed);

    expect(result.status).to.equal(202);
    expect(current.received).to.have.length(1);
    expect(current.received[0]!.body.equals(jsonfeed.body)).to.equal(true);
    const echo = await fetch(`${current.origin}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":[1,"\\u00e9"]}',
    });
    expect(await echo.json()).to.deep.equal({ parsed: { a: [1, 'é'] } });
  });

  it('express.json({ verify: captureRawBody }) before it: the signature holds', async function () {
    const seen: Array<{ ended: boolean; version: unknown }> = [];
    current = await harness((subscriber) => {
      const app = express();
      app.use(express.json({ type: JSON_TYPES, verify: captureRawBody }));
      app.use((request: Request, _response, next) => {
        seen.push({ ended: request.readableEnded, version: request.body?.version });
        next();
      });
      app.use(createExpressMiddleware(subscriber));
      return app;
    });

    const result = await deliver(current, jsonfeed);

    expect(seen.at(-1)).to.deep.equal({ ended: true, version: 'https://jsonfeed.org/version/1.1' });
    expect(result.status).to.equal(202);
    expect(current.received).to.have.length(1);
    expect(current.received[0]!.body.equals(jsonfeed.body)).to.equal(true);
  });

  it('express.text({ verify: captureRawBody }) before it: every fixture', async function () {
    current = await harness((subscriber) => {
      const app = express();
      app.use(express.text({ type: '*/*', verify: captureRawBody }));
      app.use(createExpressMiddleware(subscriber));
      return app;
    });

    for (const delivery of fixtures) {
      const before = current.received.length;

      const result = await deliver(current, delivery);

      expect(result.status, delivery.name).to.equal(202);
      expect(current.received, delivery.name).to.have.length(before + 1);
      expect(current.received[before]!.body.equals(delivery.body), delivery.name).to.equal(true);
    }
  });

  it('express.raw() before it, no verify hook: uses the Buffer it parsed', async function () {
    current = await harness((subscriber) => {
      const app = express();
      app.use(express.raw({ type: () => true }));
      app.use(createExpressMiddleware(subscriber));
      return app;
    });

    const result = await deliver(current, jsonfeed);

    expect(result.status).to.equal(202);
    expect(current.received[0]?.body.equals(jsonfeed.body)).to.equal(true);
  });

  it('a parser before it kept no bytes: 500 naming the fix, logged', async function () {
    const errors: string[] = [];
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (_fields, message) => void errors.push(message),
    };
    current = await harness((subscriber) => {
      const app = express();
      app.use(express.json({ type: JSON_TYPES }));
      app.use(createExpressMiddleware(subscriber, { logger }));
      return app;
    });

    const result = await deliver(current, jsonfeed);

    expect(result.status).to.equal(500);
    expect(result.body).to.contain('captureRawBody');
    expect(errors).to.have.length(1);
    expect(errors[0]).to.contain('body parser');
    expect(current.received).to.have.length(0);
  });

  it('with useParsedRawBody: false, ignores the bytes a parser kept (500)', async function () {
    current = await harness((subscriber) => {
      const app = express();
      app.use(express.raw({ type: () => true, verify: captureRawBody }));
      app.use(createExpressMiddleware(subscriber, { useParsedRawBody: false }));
      return app;
    });

    const result = await deliver(current, jsonfeed);

    expect(result.status).to.equal(500);
    expect(current.received).to.have.length(0);
  });

  it('answers kept bytes over maxBodyBytes with 413', async function () {
    current = await harness(
      (subscriber) => {
        const app = express();
        app.use(express.raw({ type: () => true, limit: '1mb', verify: captureRawBody }));
        app.use(createExpressMiddleware(subscriber));
        return app;
      },
      { maxBodyBytes: 1024 },
    );
    const subscription = await current.subscribed();

    const [result] = await current.hub.publish(subscription.topic, {
      body: Buffer.alloc(1025, 0x61),
    });

    expect(result?.status).to.equal(413);
    await current.queue.idle();
    expect(current.received).to.have.length(0);
  });

  it('as routes of a router mounted at a prefix that is part of baseUrl', async function () {
    current = await harness(
      (subscriber) => {
        const app = express();
        const router = express.Router();
        mountExpressRoutes(router, subscriber);
        app.use('/base', router);
        return app;
      },
      { basePath: '/base' },
    );

    const result = await deliver(current, fixture('wordpress-atom-two-entries'));

    expect(result.status).to.equal(202);
    expect(current.received).to.have.length(1);
    const subscription = current.received[0]!.subscription;
    expect(new URL(subscription.callbackUrl).pathname).to.equal(
      `/base/websub/news/${subscription.id}`,
    );
    const outside = await fetch(`${current.origin}/websub/news/${subscription.id}`, {
      method: 'POST',
    });
    expect(outside.status).to.equal(404);
    expect(await outside.text()).to.contain('Cannot POST');
  });

  it('as middleware mounted at a prefix that is part of baseUrl', async function () {
    current = await harness(
      (subscriber) => {
        const app = express();
        app.use('/base', createExpressMiddleware(subscriber));
        return app;
      },
      { basePath: '/base' },
    );

    const result = await deliver(current, fixture('rss-item'));

    expect(result.status).to.equal(202);
    expect(current.received[0]?.body.equals(fixture('rss-item').body)).to.equal(true);
  });

  it('as routes for a handler path with characters Express patterns reserve', async function () {
    current = await harness(
      (subscriber) => {
        const app = express();
        const router = express.Router();
        mountExpressRoutes(router, subscriber);
        app.use(router);
        return app;
      },
      { handlerPath: '/hooks/(news)+:x*' },
    );

    const result = await deliver(current, fixture('youtube-new-video'));

    expect(result.status).to.equal(202);
    expect(current.received).to.have.length(1);
  });
});

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createSubscriber, type Subscriber } from '@websubsub/core';
import { createKoaMiddleware } from '@websubsub/koa';
import { expect } from 'chai';
import Koa from 'koa';

import { createMetrics, createMetricsEndpoint, type SubscriberMetrics } from '../src/index.js';
import { sampleValue } from './helpers.js';

describe('createMetricsEndpoint (mounted with @websubsub/koa, over a real socket)', () => {
  let server: Server;
  let origin: string;
  let subscriber: Subscriber;
  let metrics: SubscriberMetrics;

  async function listen(options: Parameters<typeof createMetricsEndpoint>[1] = {}) {
    subscriber = createSubscriber({
      baseUrl: 'http://127.0.0.1:1',
      handlers: { news: () => undefined },
      upkeep: false,
    });
    metrics = createMetrics({ subscriber, storeCacheMs: 0 });
    const app = new Koa();
    app.use(createKoaMiddleware(createMetricsEndpoint(metrics.registry, options)));
    app.use((ctx) => {
      ctx.status = 404;
      ctx.body = 'app route';
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  afterEach(async () => {
    metrics.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('serves the text exposition at /metrics', async () => {
    await listen();
    await subscriber.subscribe({
      topic: 'https://publisher.example.com/feed',
      hub: 'https://hub.example.net/',
    });

    const response = await fetch(`${origin}/metrics`);

    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.equal(
      'text/plain; version=0.0.4; charset=utf-8',
    );
    const text = await response.text();
    expect(text).to.contain('# TYPE websubsub_deliveries_total counter');
    expect(sampleValue(text, 'websubsub_subscriptions', { status: 'requesting' })).to.equal(1);
  });

  it('passes other paths on to the app, and refuses methods other than GET and HEAD', async () => {
    await listen();

    const other = await fetch(`${origin}/metrics/extra`);
    expect(other.status).to.equal(404);
    expect(await other.text()).to.equal('app route');

    const post = await fetch(`${origin}/metrics`, { method: 'POST', body: '' });
    expect(post.status).to.equal(405);
    expect(post.headers.get('allow')).to.equal('GET, HEAD');
  });

  it('serves another path, and refuses a scrape that authorize() turns down', async () => {
    await listen({
      path: '/internal/metrics',
      authorize: (request) => request.headers['authorization'] === 'Bearer scrape-token',
    });

    const refused = await fetch(`${origin}/internal/metrics`);
    expect(refused.status).to.equal(401);
    expect(refused.headers.get('www-authenticate')).to.equal('Bearer');
    expect(await refused.text()).not.to.contain('websubsub_');

    const allowed = await fetch(`${origin}/internal/metrics`, {
      headers: { authorization: 'Bearer scrape-token' },
    });
    expect(allowed.status).to.equal(200);
    expect(await allowed.text()).to.contain('websubsub_subscriptions');
  });

  it('answers 500 without details when authorize() throws', async () => {
    await listen({
      authorize: () => {
        throw new Error('secret detail');
      },
    });

    const response = await fetch(`${origin}/metrics`);

    expect(response.status).to.equal(500);
    expect(await response.text()).to.equal('Metrics are unavailable');
  });
});

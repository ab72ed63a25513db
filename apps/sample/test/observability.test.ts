import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createSubscriber, silentLogger, type Subscriber } from '@websubsub/core';
import { expect } from 'chai';
import Koa from 'koa';

import { ConfigError } from '../src/config.js';
import { mountObservability, type Observability } from '../src/observability.js';

describe('sample observability: /metrics and /dashboard on the Koa app', () => {
  let server: Server;
  let origin: string;
  let subscriber: Subscriber;
  let mounted: Observability;

  async function listen(dashboardToken: string | null) {
    subscriber = createSubscriber({
      baseUrl: 'http://127.0.0.1:1',
      handlers: { sample: () => undefined },
      upkeep: false,
    });
    const app = new Koa();
    mounted = mountObservability(app, subscriber, { dashboardToken }, silentLogger);
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  afterEach(async () => {
    mounted?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
  });

  it('serves the metrics, and the dashboard only with the token', async () => {
    await listen('sample-dashboard-token');
    await subscriber.subscribe({
      topic: 'https://publisher.example.com/feed',
      hub: 'https://hub.example.net/',
    });

    const metrics = await fetch(`${origin}/metrics`);
    expect(metrics.status).to.equal(200);
    const text = await metrics.text();
    expect(text).to.match(/^websubsub_subscriptions\{status="requesting"\} 1$/m);
    expect(text).to.contain('process_cpu_user_seconds_total');

    expect((await fetch(`${origin}/dashboard`)).status).to.equal(401);
    const page = await fetch(`${origin}/dashboard`, {
      headers: { authorization: 'Bearer sample-dashboard-token' },
    });
    expect(page.status).to.equal(200);
    // URLs carry line-break hints (<wbr />) after their slashes.
    const html = (await page.text()).replace(/<wbr \/>/g, '');
    expect(html).to.contain('https://publisher.example.com/feed');
    const signIn = await fetch(`${origin}/dashboard?token=sample-dashboard-token`, {
      redirect: 'manual',
    });
    expect(signIn.status).to.equal(303);
    expect(signIn.headers.get('location')).to.equal('/dashboard');
  });

  it('answers 404 at /dashboard, saying how to turn it on, without a token', async () => {
    await listen(null);

    const answer = await fetch(`${origin}/dashboard/subscriptions`);

    expect(answer.status).to.equal(404);
    expect(await answer.text()).to.contain('WEBSUBSUB_DASHBOARD_TOKEN');
    expect(mounted.dashboard).to.equal(null);
  });

  it('refuses a token too short to be safe as a configuration error', () => {
    const app = new Koa();
    const own = createSubscriber({
      baseUrl: 'http://127.0.0.1:1',
      handlers: { sample: () => undefined },
    });
    expect(() => mountObservability(app, own, { dashboardToken: 'short' }, silentLogger)).to.throw(
      ConfigError,
      /WEBSUBSUB_DASHBOARD_TOKEN/,
    );
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createSubscriber, type Subscriber } from '@websubsub/core';
import { createExpressMiddleware } from '@websubsub/express';
import { expect } from 'chai';
import express from 'express';

import {
  createDashboard,
  createMemoryHistory,
  type Dashboard,
  type HistoryEntry,
} from '../src/index.js';
import { Browser, formToken, listedTopics, makeRecord, TOKEN } from './helpers.js';

describe('dashboard on Express (over a real socket)', () => {
  let server: Server;
  let subscriber: Subscriber;
  let dashboard: Dashboard;

  afterEach(async () => {
    dashboard.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('is mounted with the Express adapter, lists, refuses without the token and acts', async () => {
    subscriber = createSubscriber({
      baseUrl: 'http://127.0.0.1:1',
      handlers: { news: () => undefined },
      upkeep: false,
    });
    dashboard = createDashboard({ subscriber, token: TOKEN, basePath: '/admin/websub' });
    const app = express();
    app.use(createExpressMiddleware(dashboard));
    app.use(express.json());
    app.get('/', (_request, response) => void response.send('home'));
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const browser = new Browser(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const record = await subscriber.store.create(makeRecord({ hubErrors: 2 }));

    expect((await browser.get('/admin/websub')).status).to.equal(401);
    expect((await browser.get('/')).text).to.equal('home');
    await browser.signIn('/admin/websub');
    const list = await browser.get('/admin/websub');
    expect(list.status).to.equal(200);
    expect(listedTopics(list.text)).to.deep.equal([record.topic]);

    const confirmation = await browser.get(
      `/admin/websub/subscriptions/${record.id}/confirm?action=reset`,
    );
    const done = await browser.post(`/admin/websub/subscriptions/${record.id}`, {
      action: 'reset',
      csrf: formToken(confirmation.text),
    });
    expect(done.status).to.equal(303);
    expect(done.headers.get('location')).to.equal(
      `/admin/websub/subscriptions/${record.id}?done=reset`,
    );
    expect((await subscriber.get(record.id))?.hubErrors).to.equal(0);
    const page = await browser.get(done.headers.get('location') as string);
    expect(page.text).to.contain('Error counters reset.');
    expect(page.text).to.contain('Reset counters from the dashboard');
  });
});

describe('MemoryHistory', () => {
  const entry = (
    subscriptionId: string | null,
    message: string,
    at: Date,
    delivery?: 'accepted' | 'rejected',
  ): HistoryEntry => ({
    at,
    subscriptionId,
    kind: delivery ? 'delivery' : 'hub',
    level: delivery === 'rejected' ? 'error' : 'info',
    message,
    ...(delivery ? { delivery } : {}),
  });

  it('keeps the newest entries of each subscription, newest first', async () => {
    const history = createMemoryHistory({ entriesPerSubscription: 3 });
    const at = new Date('2026-12-01T10:00:00Z');
    for (let index = 1; index <= 5; index++) await history.append(entry('a', `event ${index}`, at));

    const recent = await history.recent('a', 10);

    expect(recent.map((item) => item.message)).to.deep.equal(['event 5', 'event 4', 'event 3']);
    expect((await history.recent('a', 2)).map((item) => item.message)).to.deep.equal([
      'event 5',
      'event 4',
    ]);
    expect(await history.recent('b', 10)).to.deep.equal([]);
  });

  it('forgets the subscription quiet for longest once it remembers too many', async () => {
    const history = createMemoryHistory({ maxSubscriptions: 2 });
    const at = new Date('2026-12-01T10:00:00Z');
    await history.append(entry('a', 'a1', at));
    await history.append(entry('b', 'b1', at));
    await history.append(entry('a', 'a2', at));
    await history.append(entry('c', 'c1', at));

    expect(await history.recent('b', 10)).to.deep.equal([]);
    expect((await history.recent('a', 10)).map((item) => item.message)).to.deep.equal(['a2', 'a1']);
    expect((await history.recent('c', 10)).map((item) => item.message)).to.deep.equal(['c1']);
  });

  it('counts deliveries per bucket, subscription and in total, over a sliding window', async () => {
    const history = createMemoryHistory({ bucketMs: 60_000, buckets: 3 });
    const start = Date.UTC(2026, 11, 1, 10, 0, 0);
    await history.append(entry('a', 'x', new Date(start), 'accepted'));
    await history.append(entry('a', 'x', new Date(start + 61_000), 'accepted'));
    await history.append(entry('a', 'x', new Date(start + 62_000), 'rejected'));
    await history.append(entry(null, 'unknown callback', new Date(start + 125_000), 'rejected'));
    const now = new Date(start + 150_000);

    const own = await history.deliveries('a', now);
    const all = await history.deliveries(null, now);

    expect(own.bucketMs).to.equal(60_000);
    expect(
      own.buckets.map((bucket) => [
        bucket.start.getTime() - start,
        bucket.accepted,
        bucket.rejected,
      ]),
    ).to.deep.equal([
      [0, 1, 0],
      [60_000, 1, 1],
      [120_000, 0, 0],
    ]);
    expect(all.buckets.map((bucket) => [bucket.accepted, bucket.rejected])).to.deep.equal([
      [1, 0],
      [1, 1],
      [0, 1],
    ]);
    // A minute later the oldest bucket has left the window.
    const later = await history.deliveries('a', new Date(start + 210_000));
    expect(later.buckets.map((bucket) => bucket.accepted)).to.deep.equal([1, 0, 0]);
  });
});

import {
  createSubscriber,
  type Notification,
  type Subscriber,
  type Subscription,
} from '@websubsub/core';
import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';
import { Registry } from 'prom-client';

import { createMetrics, type SubscriberMetrics } from '../src/index.js';
import {
  eventually,
  sampleValue,
  SingleDeliveryAttemptQueue,
  startCallbackServer,
  type CallbackServer,
} from './helpers.js';

describe('createMetrics (a real subscriber, the test hub, over real sockets)', () => {
  let hub: TestHub;
  let server: CallbackServer;
  let queue: SingleDeliveryAttemptQueue;
  let subscriber: Subscriber;
  let metrics: SubscriberMetrics;
  let handled: Notification[];
  let failHandler: boolean;

  async function start(options: { maxHubErrors?: number; storeCacheMs?: number } = {}) {
    queue = new SingleDeliveryAttemptQueue();
    subscriber = createSubscriber({
      baseUrl: server.origin,
      handlers: {
        news: (notification) => {
          if (failHandler) throw new Error('handler broke');
          handled.push(notification);
        },
      },
      queue,
      upkeep: false,
      ...(options.maxHubErrors ? { maxRetries: { hubErrors: options.maxHubErrors } } : {}),
    });
    server.attach(subscriber);
    metrics = createMetrics({ subscriber, storeCacheMs: options.storeCacheMs ?? 0 });
    await subscriber.start();
  }

  beforeEach(async () => {
    hub = await startTestHub();
    server = await startCallbackServer();
    handled = [];
    failHandler = false;
  });

  afterEach(async () => {
    metrics?.close();
    await subscriber?.stop();
    await server.close();
    await hub.close();
  });

  const scrape = () => metrics.registry.metrics();

  async function verifiedSubscription(
    secret: string | null,
    leaseSeconds = 3600,
  ): Promise<Subscription> {
    const topic = hub.serveFeed('/feed');
    const record = await subscriber.subscribe({ topic, hub: hub.url, secret, leaseSeconds });
    // The hub marks its side active once it has read the callback's answer, just after ours.
    await hub.waitFor(() =>
      hub.subscriptions().some((s) => s.callback === record.callbackUrl && s.state === 'active'),
    );
    return (await subscriber.get(record.id)) as Subscription;
  }

  it('counts a subscribe request, its verification and an accepted, handled delivery', async () => {
    await start();
    const record = await verifiedSubscription('s3cret');

    const [delivery] = await hub.publish(record.topic, {
      body: '<feed/>',
      contentType: 'application/atom+xml',
    });
    expect(delivery?.status).to.equal(202);
    await eventually(() => handled.length === 1, 'the handler to run');

    const text = await scrape();
    expect(
      sampleValue(text, 'websubsub_hub_requests_total', { mode: 'subscribe', status: '202' }),
    ).to.equal(1);
    expect(
      sampleValue(text, 'websubsub_verifications_total', {
        mode: 'subscribe',
        outcome: 'verified',
      }),
    ).to.equal(1);
    expect(sampleValue(text, 'websubsub_deliveries_total', { outcome: 'accepted' })).to.equal(1);
    expect(sampleValue(text, 'websubsub_deliveries_total', { outcome: 'mismatch' })).to.equal(0);
    expect(
      sampleValue(text, 'websubsub_handler_duration_seconds_count', { handler: 'news' }),
    ).to.equal(1);
    expect(sampleValue(text, 'websubsub_subscriptions', { status: 'verified' })).to.equal(1);
    expect(sampleValue(text, 'websubsub_subscriptions', { status: 'requesting' })).to.equal(0);

    // The hub granted the hour asked for; the gauge counts down from it.
    const remaining = sampleValue(text, 'websubsub_earliest_lease_remaining_seconds') as number;
    expect(remaining).to.be.within(3590, 3601);
  });

  it('counts refused deliveries by reason: bad signature, none, ended subscription', async () => {
    await start();
    const record = await verifiedSubscription('s3cret');

    expect(
      (await hub.publish(record.topic, { body: 'x', signature: 'invalid' }))[0]?.status,
    ).to.equal(202);
    expect((await hub.publish(record.topic, { body: 'x', signature: 'none' }))[0]?.status).to.equal(
      403,
    );
    await subscriber.unsubscribe(record.id);
    await eventually(
      async () => (await subscriber.get(record.id))?.unsubscribeStatus === 'verified',
      'the unsubscription to be verified',
    );
    const gone = await fetch(record.callbackUrl, { method: 'POST', body: 'late' });
    expect(gone.status).to.equal(410);

    const text = await scrape();
    expect(sampleValue(text, 'websubsub_deliveries_total', { outcome: 'mismatch' })).to.equal(1);
    expect(sampleValue(text, 'websubsub_deliveries_total', { outcome: 'missing' })).to.equal(1);
    expect(sampleValue(text, 'websubsub_deliveries_total', { outcome: 'ended' })).to.equal(1);
    expect(sampleValue(text, 'websubsub_deliveries_total', { outcome: 'accepted' })).to.equal(0);
    expect(
      sampleValue(text, 'websubsub_verifications_total', {
        mode: 'unsubscribe',
        outcome: 'verified',
      }),
    ).to.equal(1);
    expect(sampleValue(text, 'websubsub_subscriptions', { status: 'unsubscribed' })).to.equal(1);
    expect(sampleValue(text, 'websubsub_subscriptions', { status: 'verified' })).to.equal(0);
    // The only subscription ended, so no lease is left to end.
    expect(sampleValue(text, 'websubsub_earliest_lease_remaining_seconds')).to.equal(Infinity);
  });

  it('counts hub failures by status, retries scheduled and a subscription given up', async () => {
    await start({ maxHubErrors: 2 });
    const topic = hub.serveFeed('/feed');
    hub.failNext(1, { status: 503, retryAfter: 30 });
    const record = await subscriber.subscribe({ topic, hub: hub.url });
    await queue.idle();

    let text = await scrape();
    expect(
      sampleValue(text, 'websubsub_hub_requests_total', { mode: 'subscribe', status: '503' }),
    ).to.equal(1);
    expect(sampleValue(text, 'websubsub_retries_scheduled_total')).to.equal(1);
    expect(sampleValue(text, 'websubsub_subscriptions', { status: 'huberror' })).to.equal(1);

    // Due now: the retry sweep asks again, the hub fails again, and the second failure is the last.
    hub.failNext(1, { status: 500 });
    await subscriber.store.transition(record.id, { set: { retryAt: new Date(0) } });
    await subscriber.retryFailed();
    await queue.idle();

    text = await scrape();
    expect(
      sampleValue(text, 'websubsub_hub_requests_total', { mode: 'subscribe', status: '500' }),
    ).to.equal(1);
    expect(sampleValue(text, 'websubsub_retries_given_up_total')).to.equal(1);
  });

  it('counts a hub that could not be reached as connection_error', async () => {
    await start();
    const topic = hub.serveFeed('/feed');
    hub.failNext(1, 'drop');
    await subscriber.subscribe({ topic, hub: hub.url });
    await queue.idle();

    const text = await scrape();
    expect(
      sampleValue(text, 'websubsub_hub_requests_total', {
        mode: 'subscribe',
        status: 'connection_error',
      }),
    ).to.equal(1);
    expect(sampleValue(text, 'websubsub_subscriptions', { status: 'connerror' })).to.equal(1);
  });

  it('counts a denial, and a refused verification with a bounded mode label', async () => {
    await start();
    const topic = hub.serveFeed('/feed');
    hub.denyNext(1, 'quota exceeded');
    const record = await subscriber.subscribe({ topic, hub: hub.url });
    await eventually(
      async () => (await subscriber.get(record.id))?.subscribeStatus === 'denied',
      'the denial',
    );
    const answer = await hub.verify(record.callbackUrl, {
      'hub.mode': 'made-up',
      'hub.topic': topic,
    });
    expect(answer.status).to.equal(400);

    const text = await scrape();
    expect(
      sampleValue(text, 'websubsub_verifications_total', { mode: 'subscribe', outcome: 'denied' }),
    ).to.equal(1);
    expect(
      sampleValue(text, 'websubsub_verifications_total', { mode: 'other', outcome: 'refused' }),
    ).to.equal(1);
    expect(text).not.to.contain('made-up');
    expect(sampleValue(text, 'websubsub_subscriptions', { status: 'denied' })).to.equal(1);
  });

  it('counts a handler failure the queue gave up on (memory queue, one attempt)', async () => {
    await start();
    const record = await verifiedSubscription(null);
    failHandler = true;

    await hub.publish(record.topic, { body: 'boom' });
    await queue.idle();

    const text = await scrape();
    expect(sampleValue(text, 'websubsub_handler_failures_total', { final: 'true' })).to.equal(1);
    expect(sampleValue(text, 'websubsub_deliveries_total', { outcome: 'accepted' })).to.equal(1);
    expect(
      sampleValue(text, 'websubsub_handler_duration_seconds_count', { handler: 'news' }),
    ).to.equal(0);
  });

  it('counts lease renewals', async () => {
    await start();
    await verifiedSubscription(null, 60);

    // Renew everything whose lease ends within a day: the one-minute lease qualifies.
    const report = await subscriber.refreshSubscriptions();
    expect(report.queued).to.equal(1);

    expect(sampleValue(await scrape(), 'websubsub_lease_renewals_total')).to.equal(1);
  });

  it('reuses store gauges for storeCacheMs, and refresh() reads the store again', async () => {
    await start({ storeCacheMs: 60_000 });
    const topic = hub.serveFeed('/feed');

    expect(sampleValue(await scrape(), 'websubsub_subscriptions', { status: 'verified' })).to.equal(
      0,
    );
    const record = await subscriber.subscribe({ topic, hub: hub.url });
    await eventually(
      async () => (await subscriber.get(record.id))?.subscribeStatus === 'verified',
      'the verification',
    );
    expect(sampleValue(await scrape(), 'websubsub_subscriptions', { status: 'verified' })).to.equal(
      0,
    );

    await metrics.refresh();
    expect(sampleValue(await scrape(), 'websubsub_subscriptions', { status: 'verified' })).to.equal(
      1,
    );
  });

  it('keeps the last store gauges and counts the failure of an unreadable store', async () => {
    await start();
    await verifiedSubscription(null);
    expect(sampleValue(await scrape(), 'websubsub_subscriptions', { status: 'verified' })).to.equal(
      1,
    );

    const count = subscriber.store.count.bind(subscriber.store);
    subscriber.store.count = async () => {
      throw new Error('database is down');
    };
    try {
      const text = await scrape();
      expect(sampleValue(text, 'websubsub_subscriptions', { status: 'verified' })).to.equal(1);
      expect(sampleValue(text, 'websubsub_store_read_failures_total')).to.equal(1);
    } finally {
      subscriber.store.count = count;
    }
  });

  it('uses a given registry and prefix; close() removes the metrics, stops counting', async () => {
    await start();
    metrics.close();
    const registry = new Registry();
    metrics = createMetrics({ subscriber, registry, prefix: 'feeds_', defaultMetrics: true });
    expect(metrics.registry).to.equal(registry);

    const record = await verifiedSubscription(null);
    let text = await registry.metrics();
    expect(
      sampleValue(text, 'feeds_verifications_total', { mode: 'subscribe', outcome: 'verified' }),
    ).to.equal(1);
    expect(text).to.contain('process_cpu_user_seconds_total');
    expect(text).not.to.contain('websubsub_');

    metrics.close();
    text = await registry.metrics();
    expect(text).not.to.contain('feeds_');
    // A fresh set on the same registry starts from zero: the closed one no longer listens.
    metrics = createMetrics({ subscriber, registry, prefix: 'feeds_' });
    await hub.publish(record.topic, { body: 'x' });
    await eventually(() => handled.length === 1, 'the handler');
    expect(
      sampleValue(await registry.metrics(), 'feeds_deliveries_total', { outcome: 'accepted' }),
    ).to.equal(1);
  });

  it('refuses a prefix Prometheus cannot use', async () => {
    await start();
    expect(() => createMetrics({ subscriber, prefix: 'web-sub ' })).to.throw(/prefix/);
  });
});

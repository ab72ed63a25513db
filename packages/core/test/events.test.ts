import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';

import {
  createMemoryQueue,
  createSubscriber,
  type MemoryQueue,
  type Subscriber,
  SubscriberEventEmitter,
  type SubscriberEvents,
} from '../src/index.js';
import { startCallbackServer, eventually, type CallbackServer } from './helpers/callback-server.js';

type Seen = { name: keyof SubscriberEvents; event: Record<string, unknown> };

describe('subscriber events, over real sockets', () => {
  let hub: TestHub;
  let server: CallbackServer;
  let queue: MemoryQueue;
  let subscriber: Subscriber;
  let seen: Seen[];
  let failNext: boolean;

  const names: Array<keyof SubscriberEvents> = [
    'subscription:requested',
    'request:sent',
    'hub:answered',
    'verified',
    'verification:refused',
    'denied',
    'delivery:accepted',
    'delivery:rejected',
    'delivery:handled',
    'handler:failed',
    'lease:renewing',
    'retry:scheduled',
    'retry:gave-up',
  ];

  beforeEach(async () => {
    hub = await startTestHub({ verification: 'sync' });
    server = await startCallbackServer();
    queue = createMemoryQueue({ backoffMs: 5, attempts: 2 });
    seen = [];
    failNext = false;
    subscriber = createSubscriber({
      baseUrl: server.origin,
      handlers: {
        news: () => {
          if (failNext) throw new Error('handler broke');
        },
      },
      queue,
      upkeep: false,
      maxRetries: { hubErrors: 1 },
      deliveryAttempts: 3,
      deliveryBackoffMs: 5,
    });
    for (const name of names) {
      subscriber.on(
        name,
        (event) => void seen.push({ name, event: event as Record<string, unknown> }),
      );
    }
    server.attach(subscriber);
    await subscriber.start();
  });

  afterEach(async () => {
    await subscriber.stop();
    await server.close();
    await hub.close();
  });

  const order = () => seen.map((entry) => entry.name);

  it('reports a subscription from request to verification, in order', async () => {
    const topic = hub.serveFeed('/events/feed');
    const record = await subscriber.subscribe({ topic, hub: hub.url });
    await queue.idle();

    expect(order()).to.deep.equal([
      'subscription:requested',
      'request:sent',
      'verified',
      'hub:answered',
    ]);
    const verified = seen.find((entry) => entry.name === 'verified')!.event;
    expect(verified['mode']).to.equal('subscribe');
    expect(verified['leaseSeconds']).to.equal(86_400);
    const answered = seen.find((entry) => entry.name === 'hub:answered')!.event;
    expect(answered['status']).to.equal(202);
    expect((answered['subscription'] as { id: string }).id).to.equal(record.id);
  });

  it('reports deliveries accepted, handled, rejected and failing handlers', async () => {
    const topic = hub.serveFeed('/events/deliveries');
    const record = await subscriber.subscribe({ topic, hub: hub.url, secret: 'events-secret' });
    await queue.idle();
    seen = [];

    await hub.publish(topic, { body: 'good' });
    await queue.idle();
    await hub.publish(topic, { body: 'forged', signature: 'invalid' });
    await hub.publish(topic, { body: 'unsigned', signature: 'none' });
    failNext = true;
    await hub.publish(topic, { body: 'breaks the handler' });
    await eventually(
      () => seen.some((entry) => entry.name === 'handler:failed' && entry.event['final']),
      'final failure',
    );

    expect(order()).to.deep.equal([
      'delivery:accepted',
      'delivery:handled',
      'delivery:rejected',
      'delivery:rejected',
      'delivery:accepted',
      'handler:failed',
      'handler:failed',
      'handler:failed',
      'handler:failed',
    ]);
    const rejected = seen
      .filter((entry) => entry.name === 'delivery:rejected')
      .map((entry) => entry.event);
    expect(rejected.map((event) => event['reason'])).to.deep.equal(['mismatch', 'missing']);
    expect(rejected[0]!['handler']).to.equal('news');
    const failures = seen
      .filter((entry) => entry.name === 'handler:failed')
      .map((entry) => entry.event);
    expect(failures.map((event) => event['final'])).to.deep.equal([false, false, false, true]);
    expect(
      failures.every(
        (event) => event['subscriptionId'] === record.id && event['handler'] === 'news',
      ),
    ).to.equal(true);
    const accepted = seen.find((entry) => entry.name === 'delivery:accepted')!.event;
    expect(accepted['bytes']).to.equal(4);
  });

  it('reports refused verifications, denials, retries and giving up', async () => {
    const topic = hub.serveFeed('/events/refusals');
    const record = await subscriber.subscribe({ topic, hub: hub.url });
    await queue.idle();
    seen = [];

    await hub.verify(record.callbackUrl, {
      'hub.mode': 'subscribe',
      'hub.topic': `${topic}x`,
      'hub.challenge': 'c',
      'hub.lease_seconds': '1',
    });
    await hub.deny(topic, record.callbackUrl, 'spam');
    hub.failNext(2, { status: 500 });
    const failing = await subscriber.subscribe({
      topic: hub.serveFeed('/events/failing'),
      hub: hub.url,
    });
    await queue.idle();

    const refused = seen.find((entry) => entry.name === 'verification:refused')!.event;
    expect(refused['reason']).to.equal('Topic does not match');
    expect(refused['handler']).to.equal('news');
    expect(seen.find((entry) => entry.name === 'denied')!.event['reason']).to.equal('spam');
    const gaveUp = seen.find((entry) => entry.name === 'retry:gave-up')!.event;
    expect((gaveUp['subscription'] as { id: string }).id).to.equal(failing.id);
    expect(gaveUp['reason']).to.equal('Gave up after 1 hub errors');
  });

  it('reports renewals and scheduled retries from the sweeps', async () => {
    const topic = hub.serveFeed('/events/renewal');
    const record = await subscriber.subscribe({ topic, hub: hub.url, leaseSeconds: 60 });
    await queue.idle();
    seen = [];

    await subscriber.refreshSubscriptions();
    await queue.idle();

    expect(order()[0]).to.equal('lease:renewing');
    const renewing = seen.find((entry) => entry.name === 'lease:renewing')!.event;
    expect((renewing['subscription'] as { id: string }).id).to.equal(record.id);
    expect(order()).to.include('verified');

    seen = [];
    await hub.close();
    await subscriber.resubscribe(record.id);
    await queue.idle();
    const scheduled = seen.find((entry) => entry.name === 'retry:scheduled')!.event;
    expect(scheduled['retryAt']).to.be.instanceOf(Date);
    hub = await startTestHub();
  });
});

describe('SubscriberEventEmitter', () => {
  const rejected = (reason: 'mismatch' | 'ended') => ({
    subscriptionId: 'a',
    handler: 'news',
    reason,
  });

  it('calls a listener once per addition and removes the latest addition first', () => {
    const emitter = new SubscriberEventEmitter(() => {});
    const calls: string[] = [];
    const listener = (event: { reason: string }) => calls.push(event.reason);
    emitter.on('delivery:rejected', listener).on('delivery:rejected', listener);
    emitter.emit('delivery:rejected', rejected('mismatch'));
    emitter.off('delivery:rejected', listener);
    emitter.emit('delivery:rejected', rejected('ended'));
    emitter.off('delivery:rejected', listener).off('delivery:rejected', listener);
    emitter.emit('delivery:rejected', rejected('mismatch'));
    expect(calls).to.deep.equal(['mismatch', 'mismatch', 'ended']);
  });

  it('emits to the listeners present when it started, whatever a listener adds or removes', () => {
    const emitter = new SubscriberEventEmitter(() => {});
    const calls: string[] = [];
    const second = () => calls.push('second');
    const added = () => calls.push('added');
    emitter.on('delivery:rejected', () => {
      calls.push('first');
      emitter.off('delivery:rejected', second).on('delivery:rejected', added);
    });
    emitter.on('delivery:rejected', second);
    emitter.emit('delivery:rejected', rejected('ended'));
    emitter.emit('delivery:rejected', rejected('ended'));
    expect(calls).to.deep.equal(['first', 'second', 'first', 'added']);
  });

  it('refuses a listener that is no function when it is added, not when it would be called', () => {
    const emitter = new SubscriberEventEmitter(() => {});
    const notAFunction = 'log it' as unknown as () => void;
    expect(() => emitter.on('delivery:rejected', notAFunction)).to.throw(TypeError, /function/);
  });

  it('reports a throwing listener and still calls the others', () => {
    const errors: unknown[] = [];
    const emitter = new SubscriberEventEmitter((error) => errors.push(error));
    let called = 0;
    emitter.on('delivery:rejected', () => {
      throw new Error('listener broke');
    });
    emitter.on('delivery:rejected', () => called++);
    emitter.emit('delivery:rejected', rejected('ended'));
    expect(called).to.equal(1);
    expect(errors.map((error) => (error as Error).message)).to.deep.equal(['listener broke']);
  });
});

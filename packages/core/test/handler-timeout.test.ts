import { randomUUID } from 'node:crypto';

import { expect } from 'chai';

import {
  createMemoryQueue,
  createMemoryStore,
  createSubscriber,
  HandlerRuns,
  HandlerTimeoutError,
  signBody,
  type Notification,
} from '../src/index.js';
import { makeSubscription } from '../src/testing/index.js';

/** A subscriber with one verified subscription, and a delivery to it (no HTTP: `handle`). */
async function setUp(handle: (notification: Notification) => Promise<void> | void) {
  const store = createMemoryStore();
  const queue = createMemoryQueue();
  const id = randomUUID();
  await store.create(
    makeSubscription({
      id,
      handler: 'news',
      callbackUrl: `http://127.0.0.1:1/websub/news/${id}`,
      secret: 'timeout secret',
      subscribeStatus: 'verified',
      leaseExpiresAt: new Date(Date.now() + 86_400_000),
    }),
  );
  const subscriber = createSubscriber({
    baseUrl: 'http://127.0.0.1:1',
    handlers: { news: handle },
    store,
    queue,
    upkeep: false,
    handlerTimeoutMs: 100,
    deliveryAttempts: 2,
    deliveryBackoffMs: 10,
  });
  const failures: Array<{ error: unknown; final: boolean }> = [];
  subscriber.on('handler:failed', ({ error, final }) => failures.push({ error, final }));
  await subscriber.start();

  const body = Buffer.from('<feed/>');
  const deliver = () =>
    subscriber.handle({
      method: 'POST',
      url: `/websub/news/${id}`,
      headers: { 'x-hub-signature': signBody(body, 'timeout secret') },
      body,
    });
  return { subscriber, queue, failures, deliver };
}

describe('handlerTimeoutMs: a content handler that never finishes', () => {
  it('fails the delivery, retries it, then reports it failed for good: nothing stuck', async () => {
    let calls = 0;
    const { subscriber, queue, failures, deliver } = await setUp(() => {
      calls++;
      return new Promise<void>(() => {});
    });
    try {
      expect((await deliver()).status).to.equal(202);
      await queue.idle();

      expect(calls).to.equal(2);
      expect(failures.map((failure) => failure.final)).to.deep.equal([false, false, true]);
      for (const { error } of failures) expect(error).to.be.instanceOf(HandlerTimeoutError);
    } finally {
      await subscriber.stop();
    }
  });

  it('leaves a handler that finishes within the limit alone', async () => {
    let handled = 0;
    const { subscriber, queue, failures, deliver } = await setUp(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      handled++;
    });
    try {
      await deliver();
      await queue.idle();
      expect(handled).to.equal(1);
      expect(failures).to.deep.equal([]);
    } finally {
      await subscriber.stop();
    }
  });
});

describe('HandlerRuns', () => {
  it('fails only the run past its deadline, and forgets every run once it has ended', async () => {
    const runs = new HandlerRuns();
    const quick = Array.from({ length: 500 }, () => runs.watch(Promise.resolve(), 'news', 60));
    const failing = runs.watch(Promise.reject(new Error('handler broke')), 'news', 60);
    const hanging = runs.watch(new Promise<void>(() => {}), 'slow', 60);

    await Promise.all(quick);
    const outcomes = await Promise.allSettled([failing, hanging]);
    expect(outcomes.map((outcome) => outcome.status)).to.deep.equal(['rejected', 'rejected']);
    const [failed, timedOut] = outcomes.map((outcome) =>
      outcome.status === 'rejected' ? (outcome.reason as Error) : null,
    );
    expect(failed?.message).to.equal('handler broke');
    expect(timedOut).to.be.instanceOf(HandlerTimeoutError);
    expect(timedOut?.message).to.include('slow');

    // The timer has passed once since the runs ended: none is kept.
    expect(runs.size).to.equal(0);
  });
});

import { randomUUID } from 'node:crypto';

import { expect } from 'chai';

import {
  createMemoryLock,
  createMemoryQueue,
  createMemoryStore,
  createSubscriber,
  type LockProvider,
  type MemoryStore,
} from '../src/index.js';
import { makeSubscription } from '../src/testing/index.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');

/** The embedded lock, each acquire taking a few milliseconds as a remote one would. */
function slowLock(): LockProvider & { inFlight: number; most: number } {
  const inner = createMemoryLock();
  const lock = {
    inFlight: 0,
    most: 0,
    async acquire(key: string, ttlMs: number) {
      lock.inFlight++;
      lock.most = Math.max(lock.most, lock.inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return await inner.acquire(key, ttlMs);
      } finally {
        lock.inFlight--;
      }
    },
  };
  return lock;
}

async function seedDue(store: MemoryStore, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    await store.create(
      makeSubscription({
        id,
        topic: `https://example.com/feed/${i}`,
        handler: 'news',
        callbackUrl: `http://127.0.0.1:1/websub/news/${id}`,
        subscribeStatus: 'verified',
        leaseExpiresAt: new Date(NOW + 60_000),
      }),
    );
  }
}

describe('sweeps work on several records of a page at once', () => {
  it('renews every due record with at most sweepConcurrency of them under way', async () => {
    const store = createMemoryStore();
    const lock = slowLock();
    await seedDue(store, 25);
    // The queue is never started: the sweep's subscribe jobs wait in it.
    const subscriber = createSubscriber({
      baseUrl: 'http://127.0.0.1:1',
      handlers: { news: () => undefined },
      store,
      queue: createMemoryQueue(),
      lock,
      upkeep: false,
      now: () => new Date(NOW),
      sweepPageSize: 10,
      sweepConcurrency: 4,
    });

    const report = await subscriber.refreshSubscriptions();

    expect(report).to.include({ examined: 25, queued: 25, busy: 0 });
    expect(lock.most).to.equal(4);
    const { items } = await store.list({}, { limit: 100 });
    expect(items.map((record) => record.subscribeStatus)).to.deep.equal(
      Array(25).fill('requesting'),
    );
  });

  it('ends a sweep whose store fails, starting no record after the failure', async () => {
    const store = createMemoryStore();
    await seedDue(store, 20);
    let transitions = 0;
    const transition = store.transition.bind(store);
    store.transition = async (...args) => {
      transitions++;
      if (transitions === 3) throw new Error('store down (simulated)');
      return transition(...args);
    };
    const subscriber = createSubscriber({
      baseUrl: 'http://127.0.0.1:1',
      handlers: { news: () => undefined },
      store,
      queue: createMemoryQueue(),
      lock: slowLock(),
      upkeep: false,
      now: () => new Date(NOW),
      sweepConcurrency: 4,
    });

    let failure: unknown = null;
    await subscriber.refreshSubscriptions().catch((error: unknown) => (failure = error));

    expect((failure as Error | null)?.message).to.equal('store down (simulated)');
    // The four under way when it failed finish; none is started after.
    expect(transitions).to.be.within(3, 6);
  });
});

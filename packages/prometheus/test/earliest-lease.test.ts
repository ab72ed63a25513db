import { randomUUID } from 'node:crypto';

import {
  createMemoryStore,
  type MemoryStore,
  type Subscription,
  type SubscribeStatus,
} from '@websubsub/core';
import { expect } from 'chai';

import { findEarliestLeaseEnd } from '../src/index.js';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);

function record(
  leaseExpiresAt: number | null,
  subscribeStatus: SubscribeStatus = 'verified',
): Subscription {
  const id = randomUUID();
  return {
    id,
    topic: `https://publisher.example.com/${id}`,
    hub: 'https://hub.example.net/',
    handler: 'news',
    callbackUrl: `https://subscriber.example.org/websub/news/${id}`,
    secret: null,
    previousSecret: null,
    retiredCallbackUrl: null,
    leaseSeconds: null,
    leaseExpiresAt: leaseExpiresAt === null ? null : new Date(leaseExpiresAt),
    subscribeStatus,
    unsubscribeStatus: null,
    connectionErrors: 0,
    hubErrors: 0,
    verifyTimeouts: 0,
    verifyErrors: 0,
    lastSubscribeAt: null,
    lastUnsubscribeAt: null,
    createdAt: new Date(NOW - 86_400_000),
    lastDeliveryAt: null,
    deniedReason: null,
    lastError: null,
    retryAt: null,
    static: false,
    discoveredFrom: null,
    hubDiscovered: false,
  };
}

/** The store, counting how often the search asks it. */
function counted(store: MemoryStore): { store: MemoryStore; queries: () => number } {
  let queries = 0;
  const find = store.findLeasesEndingBefore.bind(store);
  store.findLeasesEndingBefore = (before, page) => {
    queries++;
    return find(before, page);
  };
  return { store, queries: () => queries };
}

describe('findEarliestLeaseEnd (the in-process store)', () => {
  it('finds the earliest of 20,000 random lease ends within a second, in ~30 queries', async () => {
    const records: Subscription[] = [];
    for (let index = 0; index < 20_000; index++) {
      records.push(record(NOW + 60_000 + Math.floor(Math.random() * 300 * 86_400_000)));
    }
    // Not verified, or being unsubscribed: their earlier ends do not count.
    records.push(record(NOW + 1000, 'verifying'));
    records.push({ ...record(NOW + 2000), unsubscribeStatus: 'requesting' });
    const earliest = Math.min(...records.slice(0, 20_000).map((r) => r.leaseExpiresAt!.getTime()));
    const { store, queries } = counted(createMemoryStore({ initial: records }));

    const found = await findEarliestLeaseEnd(store, NOW);

    expect(found).to.be.a('number');
    expect(found! - earliest).to.be.within(0, 1000);
    expect(queries()).to.be.at.most(32);
  });

  it('reports a lease that already ended as a time in the past', async () => {
    const ended = NOW - 3 * 3600_000;
    const store = createMemoryStore({ initial: [record(NOW + 86_400_000), record(ended)] });

    const found = await findEarliestLeaseEnd(store, NOW);

    expect(found! - ended).to.be.within(0, 1000);
  });

  it('answers null when no verified subscription has a known lease end', async () => {
    const store = createMemoryStore({ initial: [record(null), record(NOW + 5000, 'denied')] });

    expect(await findEarliestLeaseEnd(store, NOW)).to.equal(null);
  });

  it('clamps a lease that ended before the horizon to the horizon', async () => {
    const store = createMemoryStore({ initial: [record(NOW - 10 * 86_400_000)] });

    expect(await findEarliestLeaseEnd(store, NOW, 86_400_000)).to.equal(NOW - 86_400_000);
  });
});

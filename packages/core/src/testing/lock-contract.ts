import { randomUUID } from 'node:crypto';

import { expect } from 'chai';

import { LockLostError } from '../errors.js';
import type { HeldLock, LockProvider } from '../lock.js';

/** What one test of the lock contract gets from the adapter under test. */
export interface LockContractContext {
  /** A fresh provider. */
  provider: LockProvider;
  /**
   * Another client of the same backend, as a second process would hold it. Omit it for a lock
   * that works within one process; the tests then use `provider` for both sides.
   */
  second?: () => Promise<LockProvider>;
  /** Close what setup opened and remove what the test stored. */
  teardown(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The error `promise` rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('Expected a rejection, but the promise resolved');
}

/**
 * The contract every `LockProvider` passes: mutual exclusion across clients, a busy key answered
 * with `null` at once, expiry, extension for long work, release, and `LockLostError` when a lock
 * was lost. Call it inside a mocha file; `setup` runs before each test.
 */
export function lockContract(name: string, setup: () => Promise<LockContractContext>): void {
  describe(`LockProvider contract: ${name}`, function () {
    let context: LockContractContext;
    let provider: LockProvider;
    /** The other side: a second client when the adapter has one, else the same provider. */
    let other: LockProvider;
    let held: HeldLock[];
    let ready: boolean;

    const key = () => `sub-${randomUUID()}`;

    /** Acquire and remember the lock, so that the test releases it whatever happens. */
    async function take(from: LockProvider, lockKey: string, ttlMs: number) {
      const lock = await from.acquire(lockKey, ttlMs);
      if (lock) held.push(lock);
      return lock;
    }

    beforeEach(async function () {
      held = [];
      ready = false;
      context = await setup();
      provider = context.provider;
      other = context.second ? await context.second() : provider;
      ready = true;
    });

    afterEach(async function () {
      // Nothing to close when setup itself failed.
      if (!ready) return;

      await Promise.allSettled(held.map((lock) => lock.release()));
      if (other !== provider) await other.close?.();
      await provider.close?.();
      await context.teardown();
    });

    it('acquires a free key and names it', async function () {
      const lockKey = key();

      const lock = await take(provider, lockKey, 1000);

      expect(lock).to.not.equal(null);
      expect(lock?.key).to.equal(lockKey);
    });

    it('answers null at once while the key is held', async function () {
      const lockKey = key();
      await take(provider, lockKey, 5000);

      const asked = Date.now();
      const sameClient = await take(provider, lockKey, 5000);
      const otherClient = await take(other, lockKey, 5000);

      expect(sameClient).to.equal(null);
      expect(otherClient).to.equal(null);
      expect(Date.now() - asked, 'answered without waiting for the lock').to.be.below(150);
    });

    it('locks each key on its own', async function () {
      const first = await take(provider, key(), 1000);
      const second = await take(other, key(), 1000);

      expect(first).to.not.equal(null);
      expect(second).to.not.equal(null);
    });

    it('lets exactly one of many concurrent acquirers win', async function () {
      const lockKey = key();

      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => take(i % 2 ? provider : other, lockKey, 2000)),
      );

      expect(results.filter((lock) => lock !== null)).to.have.length(1);
    });

    it('frees the key once the lock expires', async function () {
      const lockKey = key();
      await take(provider, lockKey, 200);

      expect(await take(other, lockKey, 1000), 'held before expiry').to.equal(null);
      await sleep(300);
      expect(await take(other, lockKey, 1000), 'free after expiry').to.not.equal(null);
    });

    it('keeps excluding others past the first ttl when extended', async function () {
      const lockKey = key();
      const lock = (await take(provider, lockKey, 300)) as HeldLock;

      await sleep(150);
      await lock.extend(600);
      await sleep(300);
      expect(await take(other, lockKey, 1000), 'held past the first ttl').to.equal(null);

      await sleep(500);
      expect(await take(other, lockKey, 1000), 'free after the extension ran out').to.not.equal(
        null,
      );
    });

    it('releases a lock so that another can take it at once', async function () {
      const lockKey = key();
      const lock = (await take(provider, lockKey, 5000)) as HeldLock;

      await lock.release();
      await lock.release();

      expect(await take(other, lockKey, 1000)).to.not.equal(null);
    });

    it('does not release a lock someone else took after it expired', async function () {
      const lockKey = key();
      const stale = (await take(provider, lockKey, 150)) as HeldLock;
      await sleep(250);
      const current = await take(other, lockKey, 5000);
      expect(current, 'taken over after expiry').to.not.equal(null);

      await stale.release();

      expect(await take(provider, lockKey, 1000), 'still held by the new owner').to.equal(null);
    });

    it('fails to extend an expired lock with LockLostError', async function () {
      const lockKey = key();
      const lock = (await take(provider, lockKey, 100)) as HeldLock;
      await sleep(200);

      const error = await rejection(lock.extend(1000));

      expect(error).to.be.instanceOf(LockLostError);
      expect((error as LockLostError).code).to.equal('lock_lost');
    });

    it('fails to extend a lock that another took over, and leaves theirs alone', async function () {
      const lockKey = key();
      const lost = (await take(provider, lockKey, 100)) as HeldLock;
      await sleep(200);
      expect(await take(other, lockKey, 5000)).to.not.equal(null);

      const error = await rejection(lost.extend(1000));

      expect(error).to.be.instanceOf(LockLostError);
      expect(await take(provider, lockKey, 1000), 'still held by the new owner').to.equal(null);
    });

    it('fails to extend a released lock with LockLostError', async function () {
      const lock = (await take(provider, key(), 1000)) as HeldLock;
      await lock.release();

      expect(await rejection(lock.extend(1000))).to.be.instanceOf(LockLostError);
    });
  });
}

import { randomUUID } from 'node:crypto';

import { skipUnlessCi } from '@websubsub/core/testing';
import { Redlock } from '@sesamecare-oss/redlock';
import { AdapterError, InvalidInputError, type Logger } from '@websubsub/core';
import { lockContract } from '@websubsub/core/testing';
import { createRedlockLock } from '@websubsub/redlock';
import { expect } from 'chai';
import { Redis } from 'ioredis';

import { freePort, redisUrl, requireRedis, startRedisServer, type ExtraRedis } from './servers.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A client that keeps quiet about connection errors, as a test of failures expects them. */
function client(url = redisUrl): Redis {
  const redis = new Redis(url);
  redis.on('error', () => {});
  return redis;
}

/** Delete every key under `prefix`, so that runs leave nothing behind. */
async function removeKeys(redis: Redis, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('Expected a rejection, but the promise resolved');
}

describe('@websubsub/redlock', function () {
  before(async function () {
    await requireRedis(this);
  });

  lockContract('Redlock on Redis, two clients', async () => {
    const prefix = `websubsub-test:${randomUUID()}:`;
    const clients = [client()];

    return {
      provider: createRedlockLock({ clients: [clients[0] as Redis], prefix }),
      second: async () => {
        const redis = client();
        clients.push(redis);
        return createRedlockLock({ clients: [redis], prefix });
      },
      teardown: async () => {
        await removeKeys(clients[0] as Redis, prefix);
        await Promise.all(clients.map((redis) => redis.quit()));
      },
    };
  });

  describe('createRedlockLock', function () {
    let redis: Redis;

    beforeEach(function () {
      redis = client();
    });

    afterEach(async function () {
      await redis.quit();
    });

    it('stores the lock under the default namespace, for its time to live', async function () {
      const key = `sub-${randomUUID()}`;
      const provider = createRedlockLock({ clients: [redis] });

      const lock = await provider.acquire(key, 5000);

      const ttl = await redis.pttl(`websubsub:lock:${key}`);
      expect(ttl).to.be.within(4000, 5000);
      expect(await redis.exists(key), 'nothing outside the namespace').to.equal(0);

      await lock?.release();
      expect(await redis.exists(`websubsub:lock:${key}`), 'released').to.equal(0);
    });

    it('keeps the namespaces of two prefixes apart', async function () {
      const key = `sub-${randomUUID()}`;
      const one = createRedlockLock({ clients: [redis], prefix: `websubsub-test:a:` });
      const two = createRedlockLock({ clients: [redis], prefix: `websubsub-test:b:` });

      const first = await one.acquire(key, 2000);
      const second = await two.acquire(key, 2000);

      expect(first).to.not.equal(null);
      expect(second).to.not.equal(null);
      await Promise.all([first?.release(), second?.release()]);
    });

    it('answers a busy key at once even through a Redlock set to retry', async function () {
      const key = `sub-${randomUUID()}`;
      const redlock = new Redlock([redis], { retryCount: 10, retryDelay: 200 });
      const provider = createRedlockLock({ redlock });
      const lock = await provider.acquire(key, 5000);

      const asked = Date.now();
      expect(await provider.acquire(key, 5000)).to.equal(null);
      expect(Date.now() - asked).to.be.below(150);

      await lock?.release();
    });

    it('opens clients from urls, quits them on close, leaves given ones open', async function () {
      const key = `sub-${randomUUID()}`;
      const own = createRedlockLock({ urls: [redisUrl], prefix: 'websubsub-test:' });
      const given = createRedlockLock({ clients: [redis], prefix: 'websubsub-test:' });

      const lock = await own.acquire(key, 2000);
      expect(lock).to.not.equal(null);
      await lock?.release();
      await own.close();
      await given.close();

      const error = await rejection(own.acquire(key, 2000));
      expect(error, 'its own client is closed').to.be.instanceOf(AdapterError);
      expect(await redis.ping(), 'the given client stays open').to.equal('PONG');
    });

    it('uses the database the client is connected to', async function () {
      const key = `sub-${randomUUID()}`;
      const onDb3 = client(`${redisUrl.replace(/\/\d*$/, '')}/3`);
      try {
        const provider = createRedlockLock({ clients: [onDb3], prefix: 'websubsub-test:' });

        const lock = await provider.acquire(key, 2000);

        expect(await onDb3.exists(`websubsub-test:${key}`)).to.equal(1);
        await lock?.release();
      } finally {
        await onDb3.quit();
      }
    });

    it('rejects with AdapterError within its timeout when Redis is unreachable', async function () {
      const dead = client(`redis://127.0.0.1:${await freePort()}`);
      try {
        const provider = createRedlockLock({ clients: [dead], timeoutMs: 400 });

        const asked = Date.now();
        const error = await rejection(provider.acquire(`sub-${randomUUID()}`, 1000));

        expect(error).to.be.instanceOf(AdapterError);
        expect((error as AdapterError).code).to.equal('adapter_error');
        expect((error as Error).message).to.match(/@websubsub\/redlock: acquiring the lock/);
        expect(Date.now() - asked).to.be.within(350, 1500);
      } finally {
        dead.disconnect();
      }
    });

    it('reports connection errors of the clients it opened to the logger', async function () {
      const warnings: string[] = [];
      const logger: Logger = {
        debug: () => {},
        info: () => {},
        warn: (_, message) => warnings.push(message),
        error: () => {},
      };
      const url = `redis://127.0.0.1:${await freePort()}`;
      const provider = createRedlockLock({ urls: [url], timeoutMs: 300, logger });

      const error = await rejection(provider.acquire(`sub-${randomUUID()}`, 1000));
      const closing = Date.now();
      await provider.close();

      expect(error).to.be.instanceOf(AdapterError);
      expect(warnings).to.include('Redis connection error');
      expect(Date.now() - closing, 'close does not wait for a connection').to.be.below(500);
    });

    it('reports a failure to reach Redis as AdapterError, not as a busy key', async function () {
      const closed = client();
      await closed.quit();
      const provider = createRedlockLock({ clients: [closed], timeoutMs: 2000 });

      const error = await rejection(provider.acquire(`sub-${randomUUID()}`, 1000));

      expect(error).to.be.instanceOf(AdapterError);
      expect((error as AdapterError).cause, 'the Redlock failure is kept').to.be.instanceOf(Error);
    });

    it('refuses unclear options and times to live', async function () {
      expect(() => createRedlockLock({})).to.throw(InvalidInputError);
      expect(() => createRedlockLock({ clients: [redis], urls: [redisUrl] })).to.throw(
        InvalidInputError,
      );
      expect(() => createRedlockLock({ clients: [] })).to.throw(InvalidInputError);

      const provider = createRedlockLock({ clients: [redis] });
      expect(await rejection(provider.acquire('k', 0))).to.be.instanceOf(InvalidInputError);
      expect(await rejection(provider.acquire('k', Number.NaN))).to.be.instanceOf(
        InvalidInputError,
      );
    });
  });

  describe('several Redis nodes', function () {
    let nodes: ExtraRedis[];
    let urls: string[];
    let clients: Redis[];
    // A prefix of this run's own: another run on the same Redis clears only its own keys.
    const prefix = `websubsub-test:${randomUUID()}:`;

    before(async function () {
      const started = await Promise.all([startRedisServer(), startRedisServer()]);
      nodes = started.filter((node): node is ExtraRedis => node !== null);
      if (nodes.length < 2) {
        await Promise.all(nodes.map((node) => node.stop()));
        skipUnlessCi(this, 'redis-server is not installed, so no extra Redis nodes can be started');
      }
      urls = [redisUrl, ...nodes.map((node) => node.url)];
    });

    after(async function () {
      await Promise.all((nodes ?? []).map((node) => node.stop()));
    });

    beforeEach(function () {
      clients = urls.map((url) => client(url));
    });

    afterEach(async function () {
      await removeKeys(clients[0] as Redis, prefix);
      clients.forEach((redis) => redis.disconnect());
    });

    it('holds the lock on every node and excludes another client there', async function () {
      const key = `sub-${randomUUID()}`;
      const one = createRedlockLock({ clients, prefix });
      const two = createRedlockLock({ urls, prefix });
      try {
        const lock = await one.acquire(key, 3000);
        expect(lock).to.not.equal(null);
        expect(await two.acquire(key, 3000)).to.equal(null);

        // Redlock answers once a majority holds the lock; the last node may be a moment later
        // (its first use of the lock script takes a second round trip).
        const stored = () => Promise.all(clients.map((redis) => redis.exists(`${prefix}${key}`)));
        const deadline = Date.now() + 2000;
        let held = await stored();
        while (held.includes(0) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          held = await stored();
        }
        expect(held).to.deep.equal([1, 1, 1]);

        await lock?.release();
        expect(await two.acquire(key, 3000)).to.not.equal(null);
      } finally {
        await two.close();
      }
    });

    it('keeps working with one node down, and fails clearly without a quorum', async function () {
      const provider = createRedlockLock({ clients, prefix, timeoutMs: 1500 });

      await (nodes[1] as ExtraRedis).stop();
      const lock = await provider.acquire(`sub-${randomUUID()}`, 3000);
      expect(lock, 'two of three nodes are a quorum').to.not.equal(null);
      await lock?.extend(3000);
      await lock?.release();

      await (nodes[0] as ExtraRedis).stop();
      const error = await rejection(provider.acquire(`sub-${randomUUID()}`, 3000));
      expect(error).to.be.instanceOf(AdapterError);
    });
  });
});

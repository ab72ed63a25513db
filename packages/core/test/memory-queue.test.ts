import { expect } from 'chai';

import { createMemoryQueue } from '@websubsub/core';
import { queueContract } from '@websubsub/core/testing';

// One process, no second client: the contract leaves its two-client tests out.
queueContract(
  'MemoryQueue',
  async () => ({ queue: createMemoryQueue(), teardown: async () => {} }),
  { oneProcess: true },
);

describe('MemoryQueue: stopping', () => {
  it('runs the jobs waiting for a free slot before stop resolves, refuses new ones', async () => {
    const queue = createMemoryQueue();
    const ran: number[] = [];
    queue.define<{ n: number }>(
      'slow',
      async ({ n }) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        ran.push(n);
      },
      { concurrency: 1 },
    );
    await queue.start();
    for (const n of [1, 2, 3, 4]) await queue.enqueue('slow', { n });

    await queue.stop();

    expect(ran).to.deep.equal([1, 2, 3, 4]);
    let refused: unknown = null;
    await queue.enqueue('slow', { n: 5 }).catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(Error);
  });

  it('reports a retry still waiting out its backoff as failed, not losing it', async () => {
    const queue = createMemoryQueue();
    const failures: Array<{ name: string; data: unknown }> = [];
    queue.onFailure((name, data) => failures.push({ name, data }));
    queue.define(
      'flaky',
      async () => {
        throw new Error('not yet');
      },
      { attempts: 3, backoffMs: 60_000 },
    );
    await queue.start();
    await queue.enqueue('flaky', { id: 'a' });
    await new Promise((resolve) => setTimeout(resolve, 20));

    await queue.stop();

    expect(failures).to.deep.equal([{ name: 'flaky', data: { id: 'a' } }]);
  });
});

describe('MemoryQueue: waits longer than a timer can', () => {
  const month = 30 * 86_400_000;

  it('keeps a job delayed by a month waiting instead of running it at once', async () => {
    const queue = createMemoryQueue();
    const ran: unknown[] = [];
    const failures: unknown[] = [];
    queue.define('later', async (data) => void ran.push(data));
    queue.onFailure((_name, data) => failures.push(data));
    await queue.start();

    await queue.enqueue('later', { n: 1 }, { delayMs: month });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(ran).to.deep.equal([]);

    await queue.stop();
    expect(failures).to.deep.equal([{ n: 1 }]);
  });

  it('refuses a recurring interval a timer cannot keep', async () => {
    const queue = createMemoryQueue();
    queue.define('sweep', async () => undefined);
    for (const interval of [month, 0, Number.NaN]) {
      const error = await queue.every('sweep', interval).catch((caught: unknown) => caught);
      expect(error, String(interval)).to.be.instanceOf(RangeError);
    }
    await queue.every('sweep', 2_147_483_647);
    await queue.stop();
  });
});

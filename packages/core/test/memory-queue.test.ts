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

import { createMemoryQueue } from '@websubsub/core';
import { queueContract } from '@websubsub/core/testing';

queueContract('MemoryQueue', async () => ({
  queue: createMemoryQueue(),
  teardown: async () => {},
}));

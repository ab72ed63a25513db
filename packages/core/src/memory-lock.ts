import { randomUUID } from 'node:crypto';

import { LockLostError } from './errors.js';
import type { HeldLock, LockProvider } from './lock.js';

/**
 * The embedded lock: exclusion between the tasks of one process, with expiry so that a task
 * that never releases cannot block a key for good. It excludes nothing across processes.
 */
export class MemoryLock implements LockProvider {
  private readonly held = new Map<string, { token: string; expiresAt: number }>();

  async acquire(key: string, ttlMs: number): Promise<HeldLock | null> {
    const now = Date.now();
    const current = this.held.get(key);
    if (current && current.expiresAt > now) return null;

    const token = randomUUID();
    this.held.set(key, { token, expiresAt: now + ttlMs });

    const owns = () => {
      const entry = this.held.get(key);
      return entry !== undefined && entry.token === token && entry.expiresAt > Date.now();
    };
    return {
      key,
      extend: async (ms: number) => {
        if (!owns()) throw new LockLostError(key);
        this.held.set(key, { token, expiresAt: Date.now() + ms });
      },
      release: async () => {
        if (this.held.get(key)?.token === token) this.held.delete(key);
      },
    };
  }
}

/** Create the embedded in-process lock. */
export function createMemoryLock(): MemoryLock {
  return new MemoryLock();
}

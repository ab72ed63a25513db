import {
  type ExecutionError,
  type ExecutionStats,
  type Lock,
  Redlock,
  type Settings,
} from '@sesamecare-oss/redlock';
import {
  AdapterError,
  type HeldLock,
  InvalidInputError,
  type LockProvider,
  LockLostError,
  type Logger,
  silentLogger,
} from '@websubsub/core';
import { Redis, type Cluster } from 'ioredis';

/** A Redis node as Redlock takes it: an ioredis client or cluster. */
export type RedlockClient = Redis | Cluster;

/** Options of `createRedlockLock`. Give exactly one of `clients`, `redlock` or `urls`. */
export interface RedlockLockOptions {
  /**
   * Your ioredis clients, one per independent Redis node (one, or an odd number for a quorum).
   * They stay open when the provider closes.
   */
  clients?: RedlockClient[];
  /** Your Redlock instance; its retry settings are overridden so a busy key answers at once. */
  redlock?: Redlock;
  /** Redis URLs, one per node; the provider opens these clients and closes them in `close`. */
  urls?: string[];
  /**
   * Prefix of every lock key in Redis, so that locks live in their own namespace. @default
   * 'websubsub:lock:'
   */
  prefix?: string;
  /**
   * Longest wait for Redis on one acquire, extend or release; past it the call rejects with an
   * `AdapterError` rather than hang while a node is unreachable. @default 5000
   */
  timeoutMs?: number;
  /** Share of the time to live kept in reserve for clock drift between nodes. @default 0.01 */
  driftFactor?: number;
  /** Where connection errors and failures to release are reported. @default silentLogger */
  logger?: Logger;
}

/** A `LockProvider` over Redlock; `close` quits the clients it opened from `urls`. */
export interface RedlockLockProvider extends LockProvider {
  /** The Redlock instance in use, for observability (its `error` events). */
  readonly redlock: Redlock;
  close(): Promise<void>;
}

const ADAPTER = '@websubsub/redlock';

/** What a failed Redlock operation means for the caller. */
type Outcome = 'contended' | 'unreachable';

/**
 * Tell "someone else holds it" from "Redis did not answer": Redlock reports both as an
 * `ExecutionError`, and only the votes of the last attempt say which. Errors are told apart by
 * name, so that a `Redlock` from another copy of the library is understood as well.
 */
async function outcomeOf(error: unknown): Promise<Outcome> {
  if (!(error instanceof Error) || error.name !== 'ExecutionError') return 'unreachable';

  // An extension refused before asking Redis, because the lock had already run out.
  const { attempts } = error as ExecutionError;
  if (attempts.length === 0) return 'contended';

  const stats: ExecutionStats = await (attempts[attempts.length - 1] as Promise<ExecutionStats>);
  const votes = [...stats.votesAgainst.values()];
  return votes.some((vote) => vote.name === 'ResourceLockedError') ? 'contended' : 'unreachable';
}

/**
 * Create a lock provider over Redlock (`@sesamecare-oss/redlock`) on one or several Redis
 * nodes. A busy key answers `null` at once (no retries); `extend` throws `LockLostError` once the
 * lock expired or passed to someone else; an unreachable Redis rejects with `AdapterError`.
 */
export function createRedlockLock(options: RedlockLockOptions): RedlockLockProvider {
  const given = [options.clients, options.redlock, options.urls].filter((o) => o !== undefined);
  if (given.length !== 1) {
    throw new InvalidInputError(`${ADAPTER}: give exactly one of clients, redlock or urls`);
  }
  if (options.clients?.length === 0 || options.urls?.length === 0) {
    throw new InvalidInputError(`${ADAPTER}: at least one Redis node is needed`);
  }

  const prefix = options.prefix ?? 'websubsub:lock:';
  const timeoutMs = options.timeoutMs ?? 5000;
  const logger = options.logger ?? silentLogger;
  const owned: Redis[] = (options.urls ?? []).map((url) => {
    const client = new Redis(url);
    // ioredis reconnects by itself; an unheard error event would be printed to the console.
    client.on('error', (error) => logger.warn({ url, error }, 'Redis connection error'));
    return client;
  });
  const clients = options.clients ?? owned;

  // Redlock's scripts SELECT a database themselves, so they are told the one the clients use.
  const db = (clients[0] as { options?: { db?: unknown } } | undefined)?.options?.db;
  const redlock =
    options.redlock ??
    new Redlock(clients, {
      db: typeof db === 'number' ? db : 0,
      driftFactor: options.driftFactor,
    });

  // Contention is answered by the caller, not by waiting: no retry on any operation.
  const settings: Partial<Settings> = { retryCount: 0 };

  /** Run one Redlock operation, bounded by `timeoutMs`: an unreachable node must not hang it. */
  async function bounded<T>(what: string, operation: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new AdapterError(ADAPTER, `${what} got no answer within ${timeoutMs} ms`, null)),
        timeoutMs,
      );
    });

    try {
      return await Promise.race([operation(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  function ttlOf(ttlMs: number): number {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new InvalidInputError(
        `${ADAPTER}: a lock's time to live must be positive, not ${ttlMs}`,
      );
    }
    return Math.ceil(ttlMs);
  }

  function held(key: string, acquired: Lock): HeldLock {
    let lock = acquired;
    let released = false;

    return {
      key,

      async extend(ttlMs: number): Promise<void> {
        const duration = ttlOf(ttlMs);
        if (released) throw new LockLostError(key);

        lock = await bounded(`extending the lock on ${key}`, async () => {
          try {
            return await lock.extend(duration);
          } catch (error) {
            if ((await outcomeOf(error)) === 'contended') throw new LockLostError(key);
            throw new AdapterError(ADAPTER, `could not extend the lock on ${key}`, error);
          }
        });
      },

      async release(): Promise<void> {
        if (released) return;
        released = true;

        try {
          await bounded(`releasing the lock on ${key}`, async () => {
            try {
              await redlock.release(lock, settings);
            } catch (error) {
              // Expired or taken over: nothing of ours is left to release.
              if ((await outcomeOf(error)) !== 'contended') throw error;
            }
          });
        } catch (error) {
          // The key expires on its own after its time to live, so the caller need not fail.
          logger.warn({ key, error }, 'Could not release a lock; it expires after its ttl');
        }
      },
    };
  }

  return {
    redlock,

    async acquire(key: string, ttlMs: number): Promise<HeldLock | null> {
      const duration = ttlOf(ttlMs);

      return bounded(`acquiring the lock on ${key}`, async () => {
        try {
          return held(key, await redlock.acquire([prefix + key], duration, settings));
        } catch (error) {
          if ((await outcomeOf(error)) === 'contended') return null;
          throw new AdapterError(ADAPTER, `could not acquire the lock on ${key}`, error);
        }
      });
    },

    async close(): Promise<void> {
      await Promise.all(
        owned.map(async (client) => {
          // QUIT would wait in the offline queue of a client that is still trying to connect.
          if (client.status !== 'ready') return client.disconnect();
          await client.quit().catch(() => client.disconnect());
        }),
      );
    },
  };
}

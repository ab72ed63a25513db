import { InvalidInputError, type Logger } from '@websubsub/core';
import pg from 'pg';

import { briefly } from './driver-errors.js';

/** How an adapter is given its connections: a pool of the caller's, or a URL to open one. */
export interface PoolOptions {
  /** A pool of your own; the adapter never ends it. Give this or `connectionString`. */
  pool?: pg.Pool;
  /** Open a pool of the adapter's own, ended when the adapter is closed or stopped. */
  connectionString?: string;
}

/**
 * The pool an adapter works on: the caller's, or one it opens, watches and must end itself.
 * `adapter` names the adapter in errors (e.g. "The Postgres store").
 */
export function adapterPool(
  adapter: string,
  options: PoolOptions,
  logger: Logger,
  table: string,
): { pool: pg.Pool; ownsPool: boolean } {
  if (options.pool && options.connectionString) {
    throw new InvalidInputError(`${adapter}: give a pool or a connectionString, not both`);
  }
  if (options.pool) return { pool: options.pool, ownsPool: false };
  if (!options.connectionString) {
    throw new InvalidInputError(`${adapter}: a pool or a connectionString is needed`);
  }

  const pool = new pg.Pool({ connectionString: options.connectionString });
  // An idle client that fails emits 'error' on its pool, which ends the process if nobody
  // listens. The application listens on its own pool; this one is ours to watch.
  pool.on('error', (error) =>
    logger.warn({ ...briefly(error), table }, 'idle PostgreSQL connection failed'),
  );
  return { pool, ownsPool: true };
}

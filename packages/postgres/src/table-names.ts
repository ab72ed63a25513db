import { InvalidInputError } from '@websubsub/core';

/** The table a store uses when given none. */
export const DEFAULT_TABLE = 'websubsub_subscriptions';

/** The table, in the same schema as each subscriptions table, that records its schema version. */
export const MIGRATIONS_TABLE = 'websubsub_migrations';

/** The quoted names of one subscriptions table and of everything that belongs to it. */
export interface TableNames {
  /** The table's own name, without schema: its key in the migrations table. */
  base: string;
  /** The subscriptions table, quoted and qualified as it was given. */
  table: string;
  /** The migrations table, quoted and qualified like the subscriptions table. */
  migrations: string;
  /** Index names, quoted; an index always lives in its table's schema. */
  indexes: { key: string; lease: string; retry: string; handler: string };
}

// Unquoted-identifier characters only, so quoting can never be escaped. The base name leaves
// room under PostgreSQL's 63-byte limit for the longest index suffix, `_handler_idx`.
const SCHEMA = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const BASE = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

const quote = (identifier: string): string => `"${identifier}"`;

/** A checked table name: its parts and a function that qualifies a name like it. */
interface ParsedName {
  base: string;
  qualify: (identifier: string) => string;
}

function parse(name: string, what: string, longest: RegExp): ParsedName {
  const parts = name.split('.');
  const base = parts.length <= 2 ? parts[parts.length - 1] : undefined;
  const schema = parts.length === 2 ? parts[0] : undefined;

  if (
    base === undefined ||
    !longest.test(base) ||
    (schema !== undefined && !SCHEMA.test(schema)) ||
    base === MIGRATIONS_TABLE
  ) {
    throw new InvalidInputError(
      `Invalid ${what} name ${JSON.stringify(name)}: use letters, digits and underscores, ` +
        `optionally after a schema and a dot, at most 48 characters for the table itself, ` +
        `and not ${MIGRATIONS_TABLE}`,
    );
  }

  const qualify = (identifier: string): string =>
    schema === undefined ? quote(identifier) : `${quote(schema)}.${quote(identifier)}`;
  return { base, qualify };
}

/** Check a table name (`name` or `schema.name`) and derive the quoted names the store uses. */
export function tableNames(name: string = DEFAULT_TABLE): TableNames {
  const { base, qualify } = parse(name, 'table', BASE);
  return {
    base,
    table: qualify(base),
    migrations: qualify(MIGRATIONS_TABLE),
    indexes: {
      key: quote(`${base}_key`),
      lease: quote(`${base}_lease_idx`),
      retry: quote(`${base}_retry_idx`),
      handler: quote(`${base}_handler_idx`),
    },
  };
}

/** The jobs table a queue uses when given none. */
export const DEFAULT_QUEUE_TABLE = 'websubsub_jobs';

/** The quoted names of one jobs table and of everything that belongs to it. */
export interface QueueTableNames {
  /** The jobs table's own name, without schema: its key in the migrations table. */
  base: string;
  /** The jobs table, quoted and qualified as it was given. */
  table: string;
  /** The schedules of recurring jobs, `<table>_schedules` beside the jobs table. */
  schedules: string;
  /** The migrations table, quoted and qualified like the jobs table. */
  migrations: string;
  /** The index that claims walk, quoted. */
  claimIndex: string;
  /** The notification channel that wakes consumers: the table's own name, unquoted. */
  channel: string;
}

/** Check a jobs table name (`name` or `schema.name`) and derive the names the queue uses. */
export function queueTableNames(name: string = DEFAULT_QUEUE_TABLE): QueueTableNames {
  // `_schedules_pkey`, the longest name derived from it, leaves 48 characters of 63.
  const { base, qualify } = parse(name, 'jobs table', BASE);
  return {
    base,
    table: qualify(base),
    schedules: qualify(`${base}_schedules`),
    migrations: qualify(MIGRATIONS_TABLE),
    claimIndex: quote(`${base}_claim_idx`),
    channel: base,
  };
}

/** The locks table a lock provider uses when given none. */
export const DEFAULT_LOCK_TABLE = 'websubsub_locks';

/** The quoted names of one locks table. */
export interface LockTableNames {
  /** The locks table's own name, without schema: its key in the migrations table. */
  base: string;
  /** The locks table, quoted and qualified as it was given. */
  table: string;
  /** The migrations table, quoted and qualified like the locks table. */
  migrations: string;
}

/** Check a locks table name (`name` or `schema.name`) and derive the names the lock uses. */
export function lockTableNames(name: string = DEFAULT_LOCK_TABLE): LockTableNames {
  const { base, qualify } = parse(name, 'locks table', BASE);
  return { base, table: qualify(base), migrations: qualify(MIGRATIONS_TABLE) };
}

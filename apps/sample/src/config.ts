/** Everything the sample app reads from its environment, with defaults applied. */
export interface SampleConfig {
  port: number;
  siteUrl: string;
  logLevel: string;
  databaseUrl: string | null;
  /** Table of the PostgreSQL store. */
  postgresTable: string;
  /** Collection of the MongoDB store. */
  mongodbCollection: string;
  mongodbUrl: string | null;
  redisUrl: string | null;
  /** Prefix of every Redis key (Agenda jobs and Redlock locks). */
  redisPrefix: string;
  /**
   * `agenda`, `postgres` or `memory`: `agenda` by default when REDIS_URL is set. `postgres` is
   * the PostgreSQL queue of `@websubsub/postgres`, on DATABASE_URL.
   */
  queue: 'agenda' | 'postgres' | 'memory';
  /**
   * `redlock`, `postgres` or `memory`: `redlock` by default when REDIS_URL is set. `postgres`
   * keeps locks in a table on DATABASE_URL, so that instances need no Redis.
   */
  lock: 'redlock' | 'postgres' | 'memory';
  /**
   * Seconds an Agenda job stays locked to the instance running it (a crashed one's jobs wait this
   * long).
   */
  jobLockLifetime: number;
  defaultHub: string | null;
  blockPrivateAddresses: boolean;
  dashboardToken: string | null;
  /** Seconds. */
  refreshInterval: number;
  retryInterval: number;
  renewBefore: number;
  verifyWaitTime: number;
  retryBackoffMax: number;
  hubTimeout: number;
  maxConnectionRetries: number;
  maxHubErrorRetries: number;
  maxVerifyTimeouts: number;
  maxVerifyErrors: number;
  notificationsKept: number;
}

/** Thrown for an environment variable that cannot be used. */
export class ConfigError extends Error {}

/** The longest interval a Node.js timer can wait (2^31 - 1 ms), in seconds: about 24.8 days. */
const MAX_TIMER_SECONDS = 2_147_483;
/** The most failures of a kind upkeep may be told to ride out (core's own bound). */
const MAX_RETRIES = 1_000_000;
/** Ten years, in seconds: the most a window or backoff cap added to dates may be. */
const MAX_SPAN_SECONDS = 315_360_000;

function seconds(env: NodeJS.ProcessEnv, name: string, fallback: number, max = Infinity): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  // Whole milliseconds at least: the options these become are in milliseconds.
  if (!Number.isFinite(value) || value < 0.001) {
    throw new ConfigError(
      `${name} must be a number of seconds from 0.001, got ${JSON.stringify(raw)}`,
    );
  }
  if (value > max) {
    throw new ConfigError(`${name} must be at most ${max} seconds, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** A yes/no variable: true, false, 1, 0, yes, no, on or off, in any case; anything else throws. */
function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = text(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['true', '1', 'yes', 'on'].includes(raw)) return true;
  if (['false', '0', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(env[name])}`);
}

function count(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  // Digits only: Number() would also take 0x1F91, 1e3 and 0b11.
  const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? '' : ` from 0 to ${max}`;
    throw new ConfigError(`${name} must be a whole number${range}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const text = (env: NodeJS.ProcessEnv, name: string): string | null => {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? null : raw.trim();
};

function queueKind(env: NodeJS.ProcessEnv): SampleConfig['queue'] {
  const raw = text(env, 'WEBSUBSUB_QUEUE');
  if (raw === null) return text(env, 'REDIS_URL') ? 'agenda' : 'memory';
  if (raw !== 'agenda' && raw !== 'postgres' && raw !== 'memory') {
    throw new ConfigError(
      `WEBSUBSUB_QUEUE must be agenda, postgres or memory, got ${JSON.stringify(raw)}`,
    );
  }
  if (raw === 'postgres' && !text(env, 'DATABASE_URL')) {
    throw new ConfigError('WEBSUBSUB_QUEUE=postgres needs DATABASE_URL');
  }
  if (
    raw === 'agenda' &&
    !text(env, 'REDIS_URL') &&
    !text(env, 'DATABASE_URL') &&
    !text(env, 'MONGODB_URL')
  ) {
    throw new ConfigError('WEBSUBSUB_QUEUE=agenda needs REDIS_URL, DATABASE_URL or MONGODB_URL');
  }
  return raw;
}

function lockKind(env: NodeJS.ProcessEnv): SampleConfig['lock'] {
  const raw = text(env, 'WEBSUBSUB_LOCK');
  if (raw === null) return text(env, 'REDIS_URL') ? 'redlock' : 'memory';
  if (raw !== 'redlock' && raw !== 'postgres' && raw !== 'memory') {
    throw new ConfigError(
      `WEBSUBSUB_LOCK must be redlock, postgres or memory, got ${JSON.stringify(raw)}`,
    );
  }
  if (raw === 'redlock' && !text(env, 'REDIS_URL')) {
    throw new ConfigError('WEBSUBSUB_LOCK=redlock needs REDIS_URL');
  }
  if (raw === 'postgres' && !text(env, 'DATABASE_URL')) {
    throw new ConfigError('WEBSUBSUB_LOCK=postgres needs DATABASE_URL');
  }
  return raw;
}

/**
 * The store's table, `name` or `schema.name`, in the letters @websubsub/postgres takes. The
 * table itself has at most 42 characters, so that `_queue_schedules`, `_notifications` and the
 * other tables named after it fit PostgreSQL's 63. Checked before any table is created.
 */
function postgresTable(env: NodeJS.ProcessEnv): string {
  const name = 'WEBSUBSUB_POSTGRES_TABLE';
  const value = text(env, name) ?? 'websubsub_subscriptions';
  const match = /^(?:([A-Za-z_][A-Za-z0-9_]{0,62})\.)?([A-Za-z_][A-Za-z0-9_]{0,41})$/.exec(value);
  if (!match || match[2] === 'websubsub_migrations') {
    throw new ConfigError(
      `${name} must be a table name (letters, digits and underscores, at most 42 characters), ` +
        `optionally after a schema and a dot, and not websubsub_migrations; ` +
        `got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function token(env: NodeJS.ProcessEnv): string | null {
  const value = text(env, 'WEBSUBSUB_DASHBOARD_TOKEN');
  if (value !== null && value.length < 8) {
    throw new ConfigError('WEBSUBSUB_DASHBOARD_TOKEN must be at least 8 characters long');
  }
  return value;
}

/** Read the sample's configuration; throws `ConfigError` naming the variable that is wrong. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  const port = count(env, 'PORT', 3000);
  if (port > 65_535) throw new ConfigError(`PORT must be from 0 to 65535, got ${port}`);
  if (port === 0 && text(env, 'SITE_URL') === null) {
    // Hubs could not reach callbacks built from a port chosen at random.
    throw new ConfigError('PORT=0 (any free port) needs SITE_URL, the address hubs reach');
  }
  return {
    port,
    siteUrl: text(env, 'SITE_URL') ?? `http://localhost:${port}`,
    logLevel: text(env, 'LOG_LEVEL') ?? 'info',
    databaseUrl: text(env, 'DATABASE_URL'),
    postgresTable: postgresTable(env),
    mongodbCollection: text(env, 'WEBSUBSUB_MONGODB_COLLECTION') ?? 'websubsub_subscriptions',
    mongodbUrl: text(env, 'MONGODB_URL'),
    redisUrl: text(env, 'REDIS_URL'),
    redisPrefix: text(env, 'WEBSUBSUB_REDIS_PREFIX') ?? 'websubsub:',
    queue: queueKind(env),
    lock: lockKind(env),
    jobLockLifetime: seconds(env, 'WEBSUBSUB_JOB_LOCK_LIFETIME', 30, MAX_TIMER_SECONDS),
    defaultHub: text(env, 'WEBSUBSUB_DEFAULT_HUB'),
    blockPrivateAddresses: flag(env, 'WEBSUBSUB_BLOCK_PRIVATE_ADDRESSES', false),
    dashboardToken: token(env),
    refreshInterval: seconds(env, 'WEBSUBSUB_REFRESH_INTERVAL', 3600, MAX_TIMER_SECONDS),
    retryInterval: seconds(env, 'WEBSUBSUB_RETRY_INTERVAL', 600, MAX_TIMER_SECONDS),
    renewBefore: seconds(env, 'WEBSUBSUB_RENEW_BEFORE', 86_400, MAX_SPAN_SECONDS),
    verifyWaitTime: seconds(env, 'WEBSUBSUB_VERIFY_WAIT_TIME', 60, MAX_TIMER_SECONDS),
    retryBackoffMax: seconds(env, 'WEBSUBSUB_RETRY_BACKOFF_MAX', 86_400, MAX_SPAN_SECONDS),
    hubTimeout: seconds(env, 'WEBSUBSUB_HUB_TIMEOUT', 30, MAX_TIMER_SECONDS),
    maxConnectionRetries: count(env, 'WEBSUBSUB_MAX_CONNECTION_RETRIES', 10, MAX_RETRIES),
    maxHubErrorRetries: count(env, 'WEBSUBSUB_MAX_HUB_ERROR_RETRIES', 10, MAX_RETRIES),
    maxVerifyTimeouts: count(env, 'WEBSUBSUB_MAX_VERIFY_TIMEOUTS', 10, MAX_RETRIES),
    maxVerifyErrors: count(env, 'WEBSUBSUB_MAX_VERIFY_ERRORS', 10, MAX_RETRIES),
    notificationsKept: count(env, 'WEBSUBSUB_NOTIFICATIONS_KEPT', 1000),
  };
}

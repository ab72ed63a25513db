import { randomUUID } from 'node:crypto';

import {
  AdapterError,
  InvalidInputError,
  silentLogger,
  type EnqueueOptions,
  type JobData,
  type JobDefinition,
  type JobFailureListener,
  type JobProcessor,
  type JobQueue,
  type Logger,
} from '@websubsub/core';
import pg from 'pg';

import { messageOf } from './driver-errors.js';
import { adapterPool } from './pool.js';
import {
  applyMigrations,
  Migrations,
  type MigrationPlan,
  type MigrationResult,
} from './migrations.js';
import { queueTableNames, type QueueTableNames } from './table-names.js';

/** Options of `createPostgresQueue`. Give `pool` or `connectionString`. */
export interface PostgresQueueOptions {
  /**
   * A pool of the application's; never ended by the queue. While started, the queue holds one of
   * its connections for `LISTEN`.
   */
  pool?: pg.Pool;
  /** Where to connect when no pool is given; the queue opens its own pool and ends it in `stop`. */
  connectionString?: string;
  /**
   * The jobs table, optionally schema-qualified (`app.jobs`); recurring jobs live beside it in
   * `<table>_schedules`. @default 'websubsub_jobs'
   */
  table?: string;
  /**
   * Create or upgrade the tables before the first query. Turn off when a deploy step runs
   * `queue.migrate()`. @default true
   */
  migrate?: boolean;
  /** How often to look for delayed jobs, expired locks and due schedules. @default 1000 */
  pollIntervalMs?: number;
  /**
   * How long a claimed job stays locked to this process. Running jobs renew their lock every
   * third of it, so only a process that died lets it run out; another process then runs the job
   * again. @default 60000
   */
  lockTtlMs?: number;
  /** Most jobs written by one `INSERT` and most jobs taken by one claim. @default 500 */
  batchSize?: number;
  /** Attempts of a job kind defined without its own. @default 5 */
  attempts?: number;
  /** First retry delay of a job kind defined without its own, doubling each time. @default 1000 */
  backoffMs?: number;
  /** Jobs of a kind running at once here, for kinds defined without their own. @default 10 */
  concurrency?: number;
  /**
   * Where migrations, failed background queries, lost locks and jobs failed for good (when no
   * `onFailure` listener takes them) are reported.
   * @default silentLogger
   */
  logger?: Logger;
}

/** What the queue has sent to PostgreSQL since it was created, for tests and metrics. */
export interface PostgresQueueStats {
  /** Jobs written by `enqueue`. */
  enqueued: number;
  /** `INSERT` statements that wrote them (one per group commit). */
  inserts: number;
  /** Claim statements sent, whether they found jobs or not. */
  claims: number;
  /** Jobs claimed by this queue. */
  claimed: number;
  /** Batched `DELETE` statements of finished jobs. */
  deletes: number;
}

const ADAPTER = 'postgres queue';

/** Longest notification payload sent; PostgreSQL refuses more than 8000 bytes. */
const LONGEST_PAYLOAD = 7000;

/** Quiet time between two log lines about the same failing background query. */
const LOG_EVERY_MS = 10_000;

// Never edit a released migration: tables out there are already at its version. Add a new one.
const QUEUE_MIGRATIONS: MigrationPlan<QueueTableNames> = {
  subject: 'jobs table',
  steps: [
    // 1: jobs, the index claims walk, and the schedules of recurring jobs.
    ({ table, schedules, claimIndex }) => [
      // `run_at` is when the job may next be claimed: its due time, the end of its backoff, or the
      // end of the lock of the process running it. One column makes claiming one index range.
      `CREATE TABLE IF NOT EXISTS ${table} (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL,
        data jsonb NOT NULL,
        run_at timestamptz NOT NULL,
        attempt integer NOT NULL DEFAULT 0,
        locked_by text,
        recurring boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS ${claimIndex} ON ${table} (name, run_at, id)`,
      `CREATE TABLE IF NOT EXISTS ${schedules} (
        name text PRIMARY KEY,
        interval_ms bigint NOT NULL CHECK (interval_ms > 0),
        data jsonb NOT NULL,
        next_run_at timestamptz NOT NULL
      )`,
    ],
  ],
};

/** The schema version of the jobs tables this package creates and expects. */
export const QUEUE_SCHEMA_VERSION = QUEUE_MIGRATIONS.steps.length;

/** A job kind defined in this process. */
interface Kind {
  name: string;
  processor: JobProcessor;
  attempts: number;
  backoffMs: number;
  concurrency: number;
  /** Jobs claimed and not yet finished, running or about to. */
  busy: number;
  /** A claim of this kind is in flight. */
  claiming: boolean;
  /** Something may have become due while a claim was in flight: claim again after it. */
  again: boolean;
  /** The last claim filled every free slot, so more jobs may be waiting. */
  more: boolean;
  /** The earliest wake-up set for a delayed job of this kind. */
  wake: { at: number; timer: NodeJS.Timeout } | null;
}

/** A job accepted by `enqueue`, waiting for its group commit. */
interface Pending {
  name: string;
  json: string;
  delayMs: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A job claimed by this process. */
interface ClaimedRow {
  id: string;
  data: JobData;
  attempt: number;
}

function positive(what: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new InvalidInputError(`${ADAPTER}: ${what} must be a positive number, not ${value}`);
  }
  return value;
}

/**
 * The JSON of a job's data. PostgreSQL's `jsonb` cannot hold the character U+0000; refusing such
 * a job here keeps it from failing the whole group commit it would have joined.
 */
function toJson(name: string, data: JobData): string {
  const json = JSON.stringify(data ?? {});
  if (/(?:^|[^\\])(?:\\\\)*\\u0000/.test(json)) {
    throw new InvalidInputError(`${ADAPTER}: job ${name} carries the character U+0000`);
  }
  // JSON.stringify escapes a surrogate only when it is unpaired; jsonb refuses those escapes,
  // and would fail every job of the INSERT with it.
  if (/(?:^|[^\\])(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/i.test(json)) {
    throw new InvalidInputError(`${ADAPTER}: job ${name} carries an unpaired UTF-16 surrogate`);
  }
  return json;
}

/**
 * A durable `JobQueue` in two PostgreSQL tables. `enqueue` calls that arrive together are
 * written by one `INSERT` (group commit) and resolve once it committed; consumers claim jobs in
 * batches with `FOR UPDATE SKIP LOCKED`, are woken by `NOTIFY` and a poll, keep long jobs locked,
 * and delete finished jobs in batches. Jobs run at least once. Create it with
 * `createPostgresQueue`.
 */
export class PostgresQueue implements JobQueue {
  /** The jobs table, quoted and qualified as given. */
  readonly table: string;
  private readonly names: QueueTableNames;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly logger: Logger;
  private readonly pollIntervalMs: number;
  private readonly lockTtlMs: number;
  private readonly batchSize: number;
  /** Marks this queue's locks, so that it never moves a job another process took over. */
  private readonly worker = randomUUID();
  private readonly defaults: Required<JobDefinition>;

  private readonly kinds = new Map<string, Kind>();
  private readonly listeners: JobFailureListener[] = [];
  private readonly counters: PostgresQueueStats = {
    enqueued: 0,
    inserts: 0,
    claims: 0,
    claimed: 0,
    deletes: 0,
  };

  private readonly migrations: Migrations;
  private started = false;
  private stopping = false;
  private stoppingDone: Promise<void> | null = null;

  private gathering: Pending[] = [];
  private inserting: Promise<void> | null = null;
  private insertScheduled = false;

  /** Ids of running jobs, to extend their locks. */
  private readonly running = new Set<string>();
  /** Finished jobs to delete, with what to do once the delete committed. */
  private readonly finished = new Map<string, (() => void) | null>();
  private deleting: Promise<void> | null = null;
  private deleteScheduled = false;
  private claimsInFlight = 0;
  private idleWaiters: Array<() => void> = [];

  private pollTimer: NodeJS.Timeout | null = null;
  private extendTimer: NodeJS.Timeout | null = null;
  private scheduleTimer: { at: number; timer: NodeJS.Timeout } | null = null;
  private schedulesRunning = false;
  private schedulesAgain = false;

  private listener: pg.PoolClient | null = null;
  private listening: Promise<void> | null = null;
  private relistenTimer: NodeJS.Timeout | null = null;

  private readonly lastLogged = new Map<string, { at: number; suppressed: number }>();

  constructor(options: PostgresQueueOptions) {
    this.names = queueTableNames(options.table);
    this.table = this.names.table;
    this.logger = options.logger ?? silentLogger;
    this.migrations = new Migrations(
      () => applyMigrations(this.pool, this.names, this.logger, QUEUE_MIGRATIONS),
      options.migrate ?? true,
    );
    this.pollIntervalMs = positive('pollIntervalMs', options.pollIntervalMs ?? 1000);
    this.lockTtlMs = positive('lockTtlMs', options.lockTtlMs ?? 60_000);
    this.batchSize = Math.floor(positive('batchSize', options.batchSize ?? 500));
    this.defaults = {
      attempts: options.attempts ?? 5,
      backoffMs: options.backoffMs ?? 1000,
      concurrency: options.concurrency ?? 10,
    };

    ({ pool: this.pool, ownsPool: this.ownsPool } = adapterPool(
      ADAPTER,
      options,
      this.logger,
      this.table,
    ));
  }

  /** Create or upgrade the jobs and schedules tables now rather than before the first query. */
  migrate(): Promise<MigrationResult> {
    return this.migrations.apply();
  }

  /** Counts of the statements sent so far. */
  stats(): PostgresQueueStats {
    return { ...this.counters };
  }

  define<T extends JobData>(name: string, processor: JobProcessor<T>, options: JobDefinition = {}) {
    const concurrency = positive('concurrency', options.concurrency ?? this.defaults.concurrency);
    this.kinds.set(name, {
      name,
      processor: processor as JobProcessor,
      attempts: Math.floor(positive('attempts', options.attempts ?? this.defaults.attempts)),
      backoffMs: options.backoffMs ?? this.defaults.backoffMs,
      concurrency: Math.floor(concurrency),
      busy: 0,
      claiming: false,
      again: false,
      more: false,
      wake: null,
    });
  }

  enqueue(name: string, data: JobData, options: EnqueueOptions = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.kind(name);
      if (this.stopping) {
        throw new AdapterError(
          ADAPTER,
          `the queue is stopping; job ${name} was not accepted`,
          null,
        );
      }

      const delayMs = Math.max(0, options.delayMs ?? 0);
      this.gathering.push({ name, json: toJson(name, data), delayMs, resolve, reject });
      this.scheduleInsert();
    });
  }

  async every(name: string, intervalMs: number, data: JobData = {}): Promise<void> {
    this.kind(name);
    const interval = Math.ceil(positive('intervalMs', intervalMs));
    const json = toJson(name, data);

    // Asked again for what is already scheduled (every instance asserts its schedules when it
    // starts), the next run keeps its time; a new interval or new data starts counting afresh.
    await this.query(
      'every',
      `INSERT INTO ${this.names.schedules} AS s (name, interval_ms, data, next_run_at)
        VALUES ($1, $2::bigint, $3::jsonb, now() + $2::bigint * interval '1 millisecond')
        ON CONFLICT (name) DO UPDATE SET
          interval_ms = EXCLUDED.interval_ms,
          data = EXCLUDED.data,
          next_run_at = CASE
            WHEN s.interval_ms = EXCLUDED.interval_ms AND s.data = EXCLUDED.data
            THEN s.next_run_at ELSE EXCLUDED.next_run_at END`,
      [name, interval, json],
    );
    if (this.started) this.wakeSchedulesAt(Date.now() + interval);
  }

  async start(): Promise<void> {
    if (this.started) return;
    if (this.stoppingDone)
      throw new AdapterError(ADAPTER, 'a stopped queue cannot start again', null);

    await this.migrations.ready();
    this.started = true;
    this.stopping = false;

    this.pollTimer = setInterval(() => this.poll(), this.pollIntervalMs);
    this.pollTimer.unref();
    this.extendTimer = setInterval(() => void this.extendLocks(), this.lockTtlMs / 3);
    this.extendTimer.unref();
    await this.listen();
    this.poll();
  }

  /**
   * Stop claiming and refuse new jobs; write the jobs already accepted, wait for running jobs
   * and the deletes of finished ones, then close the `LISTEN` connection and a pool opened here.
   */
  stop(): Promise<void> {
    // Calls while stopping share the one shutdown, which ends an owned pool only once.
    this.stoppingDone ??= this.shutDown();
    return this.stoppingDone;
  }

  private async shutDown(): Promise<void> {
    this.stopping = true;
    this.started = false;

    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.scheduleTimer) clearTimeout(this.scheduleTimer.timer);
    this.scheduleTimer = null;
    for (const kind of this.kinds.values()) {
      if (kind.wake) clearTimeout(kind.wake.timer);
      kind.wake = null;
    }

    while (this.inserting || this.gathering.length > 0) {
      if (!this.inserting) this.insertBatch();
      await this.inserting;
    }
    await this.idle();

    if (this.extendTimer) clearInterval(this.extendTimer);
    this.extendTimer = null;
    // Deletes of finished jobs are tried a few times; jobs left would run once more elsewhere.
    for (let tries = 0; tries < 3 && this.finished.size > 0; tries++) await this.flushDeletes();
    if (this.finished.size > 0) {
      this.logger.warn(
        { table: this.table, jobs: this.finished.size },
        'Stopped before finished jobs were deleted: they will run again',
      );
    }

    await this.unlisten();
    if (this.ownsPool) await this.pool.end();
  }

  onFailure(listener: JobFailureListener): void {
    this.listeners.push(listener);
  }

  // ---- group commit -----------------------------------------------------------------------

  /** Calls arriving while no insert is in flight gather until the next turn of the event loop. */
  private scheduleInsert(): void {
    if (this.inserting || this.insertScheduled) return;

    this.insertScheduled = true;
    setImmediate(() => {
      this.insertScheduled = false;
      if (!this.inserting) this.insertBatch();
    });
  }

  private insertBatch(): void {
    const batch = this.gathering.splice(0, this.batchSize);
    if (batch.length === 0) return;

    this.inserting = this.insert(batch).finally(() => {
      this.inserting = null;
      // What arrived during this insert makes the next batch, at once.
      if (this.gathering.length > 0) this.insertBatch();
    });
  }

  private async insert(batch: Pending[]): Promise<void> {
    const now = batch.filter((job) => job.delayMs === 0).map((job) => job.name);
    const payload = [...new Set(now)].join('\n');
    const values: unknown[] = [
      batch.map((job) => job.name),
      batch.map((job) => job.json),
      batch.map((job) => job.delayMs),
    ];

    // The NOTIFY is part of the statement's transaction: consumers hear of the jobs on commit.
    let text = `INSERT INTO ${this.table} (name, data, run_at)
      SELECT name, data, now() + delay_ms * interval '1 millisecond'
        FROM unnest($1::text[], $2::jsonb[], $3::float8[]) AS job (name, data, delay_ms)`;
    if (now.length > 0) {
      text = `WITH inserted AS (${text}) SELECT pg_notify($4, $5)`;
      values.push(this.names.channel, payload.length <= LONGEST_PAYLOAD ? payload : '');
    }

    try {
      await this.migrations.ready();
      await this.pool.query(text, values);
    } catch (error) {
      const failure = new AdapterError(
        ADAPTER,
        `could not enqueue ${batch.length} job(s): ${messageOf(error)}`,
        error,
      );
      for (const job of batch) job.reject(failure);
      return;
    }

    this.counters.inserts++;
    this.counters.enqueued += batch.length;
    for (const job of batch) job.resolve();

    // Without a LISTEN connection nothing tells this process of its own jobs: wake it here.
    if (!this.listener) for (const name of now) this.wake(this.kinds.get(name));
    for (const job of batch) {
      if (job.delayMs > 0) this.wakeLater(this.kinds.get(job.name), job.delayMs);
    }
  }

  // ---- claiming and running -----------------------------------------------------------------

  /** Claim due jobs of every kind and run due schedules: the poll, and the catch-all wake-up. */
  private poll(): void {
    if (!this.started) return;

    for (const kind of this.kinds.values()) this.wake(kind);
    void this.runSchedules();
    if (this.finished.size > 0) this.scheduleDeletes();
    if (!this.listener && !this.listening && !this.relistenTimer) void this.listen();
  }

  /** Claim jobs of `kind` now, or right after the claim in flight. */
  private wake(kind: Kind | undefined): void {
    if (!kind || !this.started) return;
    if (kind.claiming) {
      kind.again = true;
      return;
    }
    void this.claim(kind);
  }

  /** Wake `kind` after `ms`, unless an earlier wake-up of it is set already. */
  private wakeLater(kind: Kind | undefined, ms: number): void {
    if (!kind || this.stopping) return;
    const at = Date.now() + ms;
    if (kind.wake && kind.wake.at <= at) return;

    if (kind.wake) clearTimeout(kind.wake.timer);
    // Two milliseconds late, so that the server's clock has passed the due time too.
    const timer = setTimeout(() => {
      kind.wake = null;
      this.wake(kind);
    }, ms + 2);
    timer.unref();
    kind.wake = { at, timer };
  }

  private async claim(kind: Kind): Promise<void> {
    const free = Math.min(kind.concurrency - kind.busy, this.batchSize);
    if (free <= 0) {
      // Full: the wake-up is not lost, the next finished job claims again.
      kind.more = true;
      return;
    }

    kind.claiming = true;
    kind.again = false;
    this.claimsInFlight++;
    let rows: ClaimedRow[] = [];
    try {
      // Claiming counts the attempt, so that a job whose process dies every time it runs it
      // still comes to an end. Its lock is `run_at`, pushed forward by the lifetime of a lock.
      const result = await this.query<ClaimedRow>(
        'claim',
        `WITH next AS (
           SELECT id FROM ${this.table}
            WHERE name = $1 AND run_at <= now()
            ORDER BY run_at, id
            LIMIT $2
            FOR UPDATE SKIP LOCKED
         )
         UPDATE ${this.table} AS job
            SET run_at = now() + $3 * interval '1 millisecond',
                locked_by = $4,
                attempt = job.attempt + 1
           FROM next WHERE job.id = next.id
         RETURNING job.id::text AS id, job.data, job.attempt`,
        [kind.name, free, this.lockTtlMs, this.worker],
      );
      rows = result.rows;
      this.counters.claims++;
      this.counters.claimed += rows.length;
    } catch (error) {
      this.backgroundFailure('claim', error);
    } finally {
      kind.claiming = false;
      this.claimsInFlight--;
    }

    kind.busy += rows.length;
    kind.more = rows.length === free;
    for (const row of rows) {
      this.running.add(row.id);
      void this.run(kind, row);
    }

    if (kind.again || (kind.more && kind.busy < kind.concurrency)) this.wake(kind);
    this.settle();
  }

  private async run(kind: Kind, job: ClaimedRow): Promise<void> {
    try {
      if (job.attempt > kind.attempts) {
        throw new Error(
          `The job was claimed ${job.attempt - 1} times without finishing: ` +
            'the process running it stopped each time',
        );
      }
      await kind.processor(job.data);
      this.finish(job.id, null);
    } catch (error) {
      await this.fail(kind, job, error);
    } finally {
      this.running.delete(job.id);
      kind.busy--;
      // A full claim leaves more jobs waiting: take them as slots free up.
      if (kind.more) this.wake(kind);
      this.settle();
    }
  }

  private async fail(kind: Kind, job: ClaimedRow, error: unknown): Promise<void> {
    if (job.attempt >= kind.attempts) {
      this.finish(job.id, () => this.report(kind.name, job.data, error));
      return;
    }

    // Also when stopping: the retry waits in the table for whichever process runs next.
    const delayMs = kind.backoffMs * 2 ** (job.attempt - 1);
    try {
      await this.query(
        'retry',
        `UPDATE ${this.table} SET run_at = now() + $2 * interval '1 millisecond', locked_by = NULL
          WHERE id = $1 AND locked_by = $3`,
        [job.id, delayMs, this.worker],
      );
      this.wakeLater(kind, delayMs);
    } catch (error) {
      // The job keeps its lock, which runs out: it is then tried again all the same.
      this.backgroundFailure('retry', error);
    }
  }

  /** Delete a finished job in the next batch; `then` runs once its row is gone. */
  private finish(id: string, then: (() => void) | null): void {
    this.finished.set(id, then);
    this.scheduleDeletes();
  }

  private scheduleDeletes(): void {
    if (this.deleting || this.deleteScheduled) return;

    this.deleteScheduled = true;
    setImmediate(() => {
      this.deleteScheduled = false;
      void this.flushDeletes();
    });
  }

  private async flushDeletes(): Promise<void> {
    if (this.deleting) return this.deleting;
    if (this.finished.size === 0) return;

    // The oldest first, without copying the whole map when a backlog of them waits.
    const ids: string[] = [];
    for (const id of this.finished.keys()) {
      if (ids.push(id) === this.batchSize * 4) break;
    }
    let deletedAll = false;
    this.deleting = (async () => {
      try {
        const { rows } = await this.query<{ id: string }>(
          'delete',
          `DELETE FROM ${this.table} WHERE id = ANY($1::bigint[]) RETURNING id::text AS id`,
          [ids],
        );
        this.counters.deletes++;

        const deleted = new Set(rows.map((row) => row.id));
        for (const id of ids) {
          const then = this.finished.get(id);
          this.finished.delete(id);
          // A job already gone was deleted by a process that took it over and reported it.
          if (then && deleted.has(id)) then();
        }
        deletedAll = true;
      } catch (error) {
        // The ids stay: the next poll tries again, and their locks are extended meanwhile.
        this.backgroundFailure('delete', error);
      }
    })();

    try {
      await this.deleting;
    } finally {
      this.deleting = null;
    }
    // Jobs that finished during this delete go in the next one at once; after a failure they
    // wait for the poll, so that a server away is not asked again and again.
    if (this.finished.size > 0 && deletedAll) this.scheduleDeletes();
    else this.settle();
  }

  /** Push the locks of running jobs, and of finished jobs not yet deleted, further out. */
  private async extendLocks(): Promise<void> {
    const ids = [...this.running, ...this.finished.keys()];
    if (ids.length === 0) return;

    try {
      const { rows } = await this.query<{ id: string }>(
        'extend',
        `UPDATE ${this.table} SET run_at = now() + $2 * interval '1 millisecond'
          WHERE id = ANY($1::bigint[]) AND locked_by = $3
          RETURNING id::text AS id`,
        [ids, this.lockTtlMs, this.worker],
      );
      // Finished jobs may be gone already (deleted, the answer lost): only running ones count.
      const extended = new Set(rows.map((row) => row.id));
      const lost = ids.filter((id) => this.running.has(id) && !extended.has(id)).length;
      if (lost > 0) {
        this.logger.warn(
          { table: this.table, lost },
          'Running jobs lost their lock: another process may run them again',
        );
      }
    } catch (error) {
      this.backgroundFailure('extend', error);
    }
  }

  private report(name: string, data: JobData, error: unknown): void {
    // The listeners (a subscriber among them) report it; the queue only when nobody listens.
    if (this.listeners.length === 0) {
      this.logger.error({ job: name, err: error, table: this.table }, 'Job failed for good');
    }
    for (const listener of this.listeners) {
      // A throwing listener must not break the queue's bookkeeping of the job.
      try {
        listener(name, data, error);
      } catch (thrown) {
        this.logger.error({ job: name, err: thrown }, 'A job failure listener threw');
      }
    }
  }

  /** Resolves once no claim is in flight and no job of this process is running. */
  private idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.claimsInFlight === 0 && this.running.size === 0 && !this.schedulesRunning;
  }

  private settle(): void {
    if (this.idleWaiters.length > 0 && this.isIdle()) {
      this.idleWaiters.splice(0).forEach((resolve) => resolve());
    }
  }

  // ---- recurring jobs -----------------------------------------------------------------------

  /**
   * Turn due schedules of the kinds defined here into jobs. The `UPDATE` moves each due schedule
   * one interval on, so only one process sees it due; a schedule whose previous job is still
   * waiting or running skips its turn rather than stack runs.
   */
  private async runSchedules(): Promise<void> {
    if (!this.started || this.kinds.size === 0) return;
    if (this.schedulesRunning) {
      // A wake-up during a run in flight is not lost: the run goes again once it is done.
      this.schedulesAgain = true;
      return;
    }

    this.schedulesRunning = true;
    this.schedulesAgain = false;
    try {
      const { rows } = await this.query<{ queued: string[] | null; next_in_ms: number | null }>(
        'schedules',
        `WITH due AS (
           UPDATE ${this.names.schedules} SET next_run_at = CASE
               WHEN next_run_at + interval_ms * interval '1 millisecond' > now()
               THEN next_run_at + interval_ms * interval '1 millisecond'
               ELSE now() + interval_ms * interval '1 millisecond' END
            WHERE name = ANY($1::text[]) AND next_run_at <= now()
            RETURNING name, data, next_run_at
         ), queued AS (
           INSERT INTO ${this.table} (name, data, run_at, recurring)
           SELECT name, data, now(), true FROM due
            WHERE NOT EXISTS (
              SELECT 1 FROM ${this.table} AS job WHERE job.name = due.name AND job.recurring
            )
           RETURNING name
         )
         SELECT
           (SELECT array_agg(name) FROM queued) AS queued,
           extract(epoch FROM LEAST(
             (SELECT min(next_run_at) FROM due),
             (SELECT min(next_run_at) FROM ${this.names.schedules}
               WHERE name = ANY($1::text[]) AND next_run_at > now())
           ) - now()) * 1000 AS next_in_ms`,
        [[...this.kinds.keys()]],
      );

      const [row] = rows;
      for (const name of row?.queued ?? []) this.wake(this.kinds.get(name));
      if (row?.next_in_ms != null) this.wakeSchedulesAt(Date.now() + Number(row.next_in_ms));
    } catch (error) {
      this.backgroundFailure('schedules', error);
    } finally {
      this.schedulesRunning = false;
      this.settle();
      if (this.schedulesAgain) void this.runSchedules();
    }
  }

  /** Look at the schedules again at `at`, unless an earlier look is set already. */
  private wakeSchedulesAt(at: number): void {
    if (this.stopping) return;
    if (this.scheduleTimer && this.scheduleTimer.at <= at) return;

    if (this.scheduleTimer) clearTimeout(this.scheduleTimer.timer);
    // A few milliseconds late, so that the server's clock has passed the due time too.
    const timer = setTimeout(
      () => {
        this.scheduleTimer = null;
        void this.runSchedules();
      },
      Math.max(0, at - Date.now()) + 5,
    );
    timer.unref();
    this.scheduleTimer = { at, timer };
  }

  // ---- LISTEN -------------------------------------------------------------------------------

  /** Hold a connection that hears of new jobs; when it fails, the poll connects it again. */
  private listen(): Promise<void> {
    this.listening ??= (async () => {
      let client: pg.PoolClient | null = null;
      try {
        client = await this.pool.connect();
        client.on('error', (error) => this.dropListener(client, error));
        client.on('end', () => this.dropListener(client, new Error('connection ended')));
        client.on('notification', (message) => this.heard(message.payload));
        await client.query(`LISTEN "${this.names.channel}"`);

        if (!this.started) {
          client.release(true);
          return;
        }
        this.listener = client;
        // Jobs enqueued while nobody listened went unheard: look for them now.
        for (const kind of this.kinds.values()) this.wake(kind);
      } catch (error) {
        if (client) client.release(true);
        this.backgroundFailure('listen', error);
      }
    })().finally(() => {
      this.listening = null;
    });
    return this.listening;
  }

  private dropListener(client: pg.PoolClient | null, error: unknown): void {
    if (!client || this.listener !== client) return;

    this.listener = null;
    this.backgroundFailure('listen', error);
    client.release(true);
    if (!this.started) return;
    // Connect again after a pause rather than in a tight loop against a server that is down.
    this.relistenTimer = setTimeout(
      () => {
        this.relistenTimer = null;
        if (this.started) void this.listen();
      },
      Math.min(this.pollIntervalMs, 1000),
    );
    this.relistenTimer.unref();
  }

  private heard(payload: string | undefined): void {
    if (!payload) {
      for (const kind of this.kinds.values()) this.wake(kind);
      return;
    }
    for (const name of payload.split('\n')) this.wake(this.kinds.get(name));
  }

  private async unlisten(): Promise<void> {
    if (this.relistenTimer) clearTimeout(this.relistenTimer);
    this.relistenTimer = null;
    await this.listening;

    // Closed rather than returned to the pool, which would hand it out still listening.
    const client = this.listener;
    this.listener = null;
    client?.release(true);
  }

  // ---- plumbing -----------------------------------------------------------------------------

  private kind(name: string): Kind {
    const kind = this.kinds.get(name);
    if (!kind) throw new InvalidInputError(`${ADAPTER}: no job kind named ${name} is defined`);
    return kind;
  }

  private async query<Row extends pg.QueryResultRow>(
    operation: string,
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<Row>> {
    await this.migrations.ready();
    try {
      return await this.pool.query<Row>(text, values);
    } catch (error) {
      throw new AdapterError(ADAPTER, `${operation} failed: ${messageOf(error)}`, error);
    }
  }

  /** Log a failed background query, at most once in ten seconds per kind of query. */
  private backgroundFailure(operation: string, error: unknown): void {
    const now = Date.now();
    const last = this.lastLogged.get(operation);
    if (last && now - last.at < LOG_EVERY_MS) {
      last.suppressed++;
      return;
    }
    this.logger.warn(
      { table: this.table, operation, err: error, suppressed: last?.suppressed ?? 0 },
      `Background ${operation} failed; trying again`,
    );
    this.lastLogged.set(operation, { at: now, suppressed: 0 });
  }
}

/** Create a durable job queue over PostgreSQL. */
export function createPostgresQueue(options: PostgresQueueOptions): PostgresQueue {
  return new PostgresQueue(options);
}

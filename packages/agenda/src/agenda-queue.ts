import { EventEmitter } from 'node:events';
import {
  AdapterError,
  type EnqueueOptions,
  InvalidInputError,
  type JobData,
  type JobDefinition,
  type JobFailureListener,
  type JobProcessor,
  type JobQueue,
  type Logger,
  silentLogger,
} from '@websubsub/core';
import type { Agenda, Job } from 'agenda';

/** Options of `createAgendaQueue`. */
export interface AgendaQueueOptions {
  /** Your Agenda 6 instance, over any backend (MongoDB, PostgreSQL, Redis). */
  agenda: Agenda;
  /**
   * Prefix of the job names in Agenda, so that websubsub's jobs stand apart from yours. @default
   * 'websubsub:'
   */
  prefix?: string;
  /** Attempts of a job kind defined without its own. @default 5 */
  attempts?: number;
  /**
   * First retry delay of a job kind defined without its own, doubling after each failure. @default
   * 1000
   */
  backoffMs?: number;
  /**
   * Jobs of a kind run at once in this process, for kinds defined without their own. @default 10
   */
  concurrency?: number;
  /**
   * How long a job stays locked to this process without news. Running jobs renew their lock every
   * third of it, so only a crashed process lets it run out; then another process takes the job
   * over. Agenda keeps a timer of half this time after `stop`, which delays the process exit.
   * @default 30000
   */
  lockLifetimeMs?: number;
  /**
   * Longest wait for running jobs in `stop`; `undefined` waits as long as they run. @default
   * undefined
   */
  drainTimeoutMs?: number;
  /**
   * Whether `stop` closes the backend's connection. By default Agenda closes it only when the
   * backend opened it itself (from a connection string), and leaves a client you passed open.
   * @default undefined
   */
  closeConnection?: boolean;
  /**
   * Where retries exhausted, drain timeouts and Agenda's errors are reported. @default silentLogger
   */
  logger?: Logger;
}

const ADAPTER = '@websubsub/agenda';

/**
 * Copy `data` through JSON, as every Agenda backend stores it, so that a job sees the same value
 * on all of them. Binary values are refused: they would come back as different shapes per backend.
 */
function toJson(name: string, data: JobData): JobData {
  const json = JSON.stringify(data, function (this: Record<string, unknown>, key, value) {
    // The value before `toJSON`: a Buffer has already turned into { type, data } by now.
    const raw = this[key];
    if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
      throw new InvalidInputError(
        `${ADAPTER}: job ${name} carries binary data at "${key}"; encode it (e.g. base64) first`,
      );
    }
    return value;
  });
  return JSON.parse(json ?? '{}') as JobData;
}

function positive(what: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new InvalidInputError(`${ADAPTER}: ${what} must be a positive number, not ${value}`);
  }
  return value;
}

/**
 * Create a job queue over your Agenda 6 instance. Every job kind becomes an Agenda job named
 * `prefix + name`; retries use Agenda's backoff; recurring jobs are single Agenda jobs, so each
 * runs once per interval however many processes schedule it. `stop` drains running jobs.
 */
export function createAgendaQueue(options: AgendaQueueOptions): JobQueue {
  const { agenda } = options;
  const prefix = options.prefix ?? 'websubsub:';
  const lockLifetimeMs = positive('lockLifetimeMs', options.lockLifetimeMs ?? 30_000);
  const logger = options.logger ?? silentLogger;

  /** Our names by Agenda's names, for the job kinds defined here. */
  const names = new Map<string, string>();
  const listeners: JobFailureListener[] = [];
  let started = false;

  agenda.on('retry exhausted', (error: Error, job: Job) => {
    const name = names.get(job.attrs.name);
    if (name === undefined) return;

    const data = (job.attrs.data ?? {}) as JobData;
    logger.error({ job: name, id: String(job.attrs._id), error }, 'Job failed for good');
    for (const listener of listeners) {
      // A throwing listener must not break Agenda's bookkeeping of the job.
      try {
        listener(name, data, error);
      } catch (thrown) {
        logger.error({ job: name, error: thrown }, 'A job failure listener threw');
      }
    }
  });

  agenda.on('error', (error: Error) => logger.warn({ error }, 'Agenda reported an error'));
  // Backends' notification channels (Redis pub/sub, PostgreSQL LISTEN) are event emitters of
  // their own: an 'error' nobody listens to (the server going away) would end the process.
  // While a server is down they report every reconnection attempt: log one line in ten seconds.
  const channel = (agenda as unknown as { notificationChannel?: unknown }).notificationChannel;
  if (channel instanceof EventEmitter) {
    let lastLogged = 0;
    let unlogged = 0;
    channel.on('error', (error: Error) => {
      const now = Date.now();
      if (now - lastLogged < 10_000) {
        unlogged++;
        return;
      }
      logger.warn({ error, suppressed: unlogged }, 'Agenda notification channel reported an error');
      lastLogged = now;
      unlogged = 0;
    });
  }

  /** The Agenda name of a job kind defined here. */
  function agendaName(name: string): string {
    const full = prefix + name;
    if (!names.has(full)) throw new InvalidInputError(`${ADAPTER}: no job kind named ${name}`);
    return full;
  }

  /**
   * Agenda's upsert of single jobs is not atomic on every backend (Redis reads, then writes), so
   * two processes scheduling at once can leave two schedules. All of them keep the same one, the
   * smallest id, whichever order they see them in.
   */
  async function keepOneSchedule(full: string): Promise<void> {
    const { jobs } = await agenda.queryJobs({ name: full });
    const ids = jobs
      .filter((job) => job.type === 'single')
      .map((job) => String(job._id))
      .sort();
    if (ids.length > 1) await agenda.cancel({ ids: ids.slice(1) });
  }

  /**
   * Agenda's drain waits for a `complete` event followed by no running job, but a job removed on
   * completion is still running when its event fires, and no event follows: drain would never
   * end. Watching the count of running jobs ends it once it reaches zero.
   */
  async function watchRunningJobs(
    draining: Promise<unknown>,
    settled: AbortController,
  ): Promise<void> {
    let drained = false;
    void draining.finally(() => (drained = true));

    while (!drained) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (drained) return;

      try {
        const { runningJobs } = await agenda.getRunningStats();
        if (runningJobs === 0) return settled.abort();
      } catch {
        // Agenda is no longer running: drain has ended on its own.
        return;
      }
    }
  }

  return {
    define<T extends JobData>(
      name: string,
      processor: JobProcessor<T>,
      definition: JobDefinition = {},
    ): void {
      const attempts = definition.attempts ?? options.attempts ?? 5;
      const backoffMs = definition.backoffMs ?? options.backoffMs ?? 1000;
      const concurrency = definition.concurrency ?? options.concurrency ?? 10;
      const full = prefix + name;
      names.set(full, name);

      agenda.define(
        full,
        async (job: Job<T>) => {
          // Agenda cancels a job whose lock is older than its lifetime; long work keeps it fresh.
          const renew = setInterval(() => {
            job.touch().catch((error: unknown) => {
              logger.warn({ job: name, error }, 'Could not renew the lock of a running job');
            });
          }, lockLifetimeMs / 3);
          renew.unref();

          try {
            await processor((job.attrs.data ?? {}) as T);
          } finally {
            clearInterval(renew);
          }
        },
        {
          concurrency,
          // Locking no more than can run keeps other processes free to take the rest.
          lockLimit: concurrency,
          lockLifetime: lockLifetimeMs,
          // Done one-time jobs would otherwise pile up and slow down every lookup.
          removeOnComplete: true,
          backoff: ({ attempt }) => (attempt < attempts ? backoffMs * 2 ** (attempt - 1) : null),
        },
      );
    },

    async enqueue(name: string, data: JobData, enqueue: EnqueueOptions = {}): Promise<void> {
      const full = agendaName(name);
      const job = agenda.create(full, toJson(name, data));
      const delayMs = enqueue.delayMs ?? 0;
      if (delayMs > 0) job.schedule(new Date(Date.now() + delayMs));

      try {
        await job.save();
      } catch (error) {
        throw new AdapterError(ADAPTER, `could not enqueue job ${name}`, error);
      }
    },

    async every(name: string, intervalMs: number, data: JobData = {}): Promise<void> {
      const full = agendaName(name);
      const interval = Math.ceil(positive('intervalMs', intervalMs));
      const payload = toJson(name, data);

      try {
        // Asked again for what is already scheduled (instances re-assert their schedules, in
        // case the backend lost them), leave it be: rescheduling would push its next run away.
        const { jobs } = await agenda.queryJobs({ name: full });
        const schedules = jobs.filter((job) => job.type === 'single');
        const same = schedules[0];
        if (
          schedules.length === 1 &&
          same &&
          String(same.repeatInterval) === String(interval) &&
          JSON.stringify(same.data ?? {}) === JSON.stringify(payload) &&
          same.nextRunAt
        ) {
          return;
        }

        // The first run comes one interval from now, so that restarts do not run it at once.
        await agenda.every(interval, full, payload, { skipImmediate: true });
        await keepOneSchedule(full);
      } catch (error) {
        throw new AdapterError(ADAPTER, `could not schedule job ${name}`, error);
      }
    },

    async start(): Promise<void> {
      if (started) return;

      try {
        await agenda.start();
      } catch (error) {
        throw new AdapterError(ADAPTER, 'could not start Agenda', error);
      }
      started = true;
    },

    async stop(): Promise<void> {
      if (!started) return;
      started = false;

      const settled = new AbortController();
      const draining = agenda.drain({
        timeout: options.drainTimeoutMs,
        signal: settled.signal,
        closeConnection: options.closeConnection,
      });
      void watchRunningJobs(draining, settled);

      const result = await draining;
      if (result.timedOut) {
        logger.warn({ running: result.running }, 'Stopped with jobs still running');
      }
    },

    onFailure(listener: JobFailureListener): void {
      listeners.push(listener);
    },
  };
}

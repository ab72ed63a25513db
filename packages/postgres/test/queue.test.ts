import { AdapterError, InvalidInputError, type JobData, type Logger } from '@websubsub/core';
import { queueContract } from '@websubsub/core/testing';
import { expect } from 'chai';
import pg from 'pg';

import {
  createPostgresQueue,
  type PostgresQueue,
  type PostgresQueueOptions,
} from '../src/index.js';
import { DATABASE_URL, describePostgres, randomName, useTestSchema } from './database.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolve once `condition` holds, or fail saying what was awaited. */
async function waitFor(what: string, condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Assert that `promise` rejects with an instance of `type`. */
async function rejects(promise: Promise<unknown>, type: abstract new (...args: never[]) => Error) {
  const outcome = await promise.then(
    () => null,
    (error: unknown) => error,
  );
  expect(outcome, 'rejected').to.be.instanceOf(type);
}

/** A logger that keeps what it was told, to show that failures were seen and survived. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const ignore = () => {};
  return { warnings, debug: ignore, info: ignore, error: ignore, warn: (_, m) => warnings.push(m) };
}

describePostgres('PostgresQueue', function () {
  const database = useTestSchema();

  /** Fast timing, so that lock expiry and polling show within a test. */
  const fast = { pollIntervalMs: 100, lockTtlMs: 2000 };

  queueContract(
    'PostgresQueue',
    async () => {
      const table = `${database.schema}.${randomName('jobs')}`;
      const queue = createPostgresQueue({ pool: database.pool, table, ...fast });
      await queue.migrate();

      return {
        queue,
        second: async () => createPostgresQueue({ pool: database.pool, table, ...fast }),
        teardown: async () => {
          await database.pool.query(`DROP TABLE IF EXISTS ${quoted(table)}, ${schedules(table)}`);
        },
      };
    },
    // Runs are claimed through the server: a hiccup of this shared machine can delay one.
    { waitMs: 5000, settleMs: 300, intervalMs: 600 },
  );

  describe('own behaviour', function () {
    let table: string;
    let queues: PostgresQueue[];

    const quotedTable = () => quoted(table);
    function open(options: Partial<PostgresQueueOptions> = {}): PostgresQueue {
      const queue = createPostgresQueue({ pool: database.pool, table, ...fast, ...options });
      queues.push(queue);
      return queue;
    }
    async function rows(): Promise<Array<{ id: string; name: string; data: JobData }>> {
      const result = await database.pool.query(`SELECT id, name, data FROM ${quotedTable()}`);
      return result.rows;
    }

    beforeEach(async function () {
      table = `${database.schema}.${randomName('jobs')}`;
      queues = [];
    });

    afterEach(async function () {
      await Promise.allSettled(queues.map((queue) => queue.stop()));
      await database.pool.query(`DROP TABLE IF EXISTS ${quotedTable()}, ${schedules(table)}`);
    });

    it('writes many concurrent enqueues with few INSERTs and runs each once', async function () {
      const queue = open({ batchSize: 100 });
      const counts = new Map<number, number>();
      queue.define(
        'deliver',
        async (data) => void counts.set(data.n as number, (counts.get(data.n as number) ?? 0) + 1),
        { concurrency: 50 },
      );
      await queue.migrate();

      const total = 500;
      await Promise.all(Array.from({ length: total }, (_, n) => queue.enqueue('deliver', { n })));

      // Every enqueue resolved: every job is committed, seen from another connection.
      expect(await rows()).to.have.length(total);
      // One INSERT per batch of at most 100: 500 jobs gathered in one turn take exactly five.
      expect(queue.stats()).to.include({ enqueued: total, inserts: 5 });

      await queue.start();
      await waitFor(`${total} runs (saw ${counts.size})`, () => counts.size === total);
      await sleep(300);
      expect(
        [...counts.values()].every((count) => count === 1),
        'each ran once',
      ).to.equal(true);
      await waitFor('finished jobs to be deleted', () => queue.stats().deletes > 0);
      await sleep(100);
      expect(await rows(), 'finished jobs are deleted').to.deep.equal([]);
      expect(queue.stats().deletes, 'deletes are batched').to.be.below(total / 2);
    });

    it('groups enqueues arriving during an insert into the next one', async function () {
      const queue = open();
      queue.define('deliver', async () => {});
      await queue.migrate();

      // A lock that INSERT waits for holds the first group commit in flight.
      const blocker = await database.pool.connect();
      await blocker.query('BEGIN');
      await blocker.query(`LOCK TABLE ${quotedTable()} IN SHARE MODE`);

      const enqueued: Array<Promise<void>> = [];
      try {
        for (let wave = 0; wave < 10; wave++) {
          for (let n = 0; n < 50; n++) enqueued.push(queue.enqueue('deliver', { wave, n }));
          await sleep(10);
        }
        expect(queue.stats().inserts, 'nothing committed while the table is locked').to.equal(0);
      } finally {
        await blocker.query('COMMIT');
        blocker.release();
      }
      await Promise.all(enqueued);

      // The first wave's INSERT, then one INSERT for the nine waves that gathered behind it.
      expect(await rows()).to.have.length(500);
      expect(queue.stats().inserts).to.equal(2);
    });

    it("rejects only data jsonb can't hold, and all enqueues of failed INSERTs", async function () {
      const queue = open();
      queue.define('deliver', async () => {});
      await queue.migrate();

      const bad = queue.enqueue('deliver', { text: 'nul \u0000 here' });
      const lone = queue.enqueue('deliver', { text: 'lone \ud800 surrogate' });
      const good = queue.enqueue('deliver', { text: 'a backslash then u0000: \\u0000' });
      const paired = queue.enqueue('deliver', { text: 'a pair: \ud83d\ude00, text: \\ud800' });
      await rejects(bad, InvalidInputError);
      await rejects(lone, InvalidInputError);
      await good;
      await paired;
      expect((await rows()).map((row) => row.data)).to.deep.equal([
        { text: 'a backslash then u0000: \\u0000' },
        { text: 'a pair: \ud83d\ude00, text: \\ud800' },
      ]);

      await database.pool.query(`DROP TABLE ${quotedTable()}`);
      const results = await Promise.allSettled([
        queue.enqueue('deliver', { n: 1 }),
        queue.enqueue('deliver', { n: 2 }),
      ]);
      expect(results.map((result) => result.status)).to.deep.equal(['rejected', 'rejected']);
      expect((results[0] as PromiseRejectedResult).reason).to.be.instanceOf(AdapterError);
      await rejects(queue.enqueue('unknown', {}), InvalidInputError);
    });

    it('runs again a job whose process died holding it, once its lock ran out', async function () {
      const lockTtlMs = 500;
      const producer = open({ lockTtlMs });
      producer.define('deliver', async () => {});
      await producer.enqueue('deliver', { id: 'orphan' });

      // Claimed by a process that is gone: locked for one lifetime, first attempt begun.
      await database.pool.query(
        `UPDATE ${quotedTable()} SET locked_by = 'dead', attempt = 1,
           run_at = now() + $1 * interval '1 millisecond'`,
        [lockTtlMs],
      );
      const lockedAt = Date.now();

      const runs: number[] = [];
      const consumer = open({ lockTtlMs, pollIntervalMs: 50 });
      consumer.define('deliver', async () => void runs.push(Date.now()));
      await consumer.start();

      await sleep(lockTtlMs / 2);
      expect(runs, 'not while the lock holds').to.deep.equal([]);
      await waitFor('the orphan to run', () => runs.length > 0, 2000);
      await sleep(200);
      expect(runs).to.have.length(1);
      expect((runs[0] as number) - lockedAt).to.be.at.least(lockTtlMs - 20);
    });

    it('reports without running a job whose process died on its last attempt', async function () {
      const queue = open({ pollIntervalMs: 50 });
      let ran = 0;
      const failures: unknown[] = [];
      queue.define('deliver', async () => void ran++, { attempts: 2 });
      queue.onFailure((name, data, error) => failures.push({ name, data, error }));
      await queue.enqueue('deliver', { id: 'poison' });
      await database.pool.query(`UPDATE ${quotedTable()} SET attempt = 2`);

      await queue.start();
      await waitFor('the report', () => failures.length > 0);
      await sleep(200);
      expect(ran).to.equal(0);
      expect(failures).to.have.length(1);
      expect(await rows()).to.deep.equal([]);
    });

    it('keeps running a job longer than its lock lifetime in one process only', async function () {
      const lockTtlMs = 300;
      const runs: string[] = [];
      const first = open({ lockTtlMs, pollIntervalMs: 50 });
      const second = open({ lockTtlMs, pollIntervalMs: 50 });
      for (const [queue, by] of [
        [first, 'first'],
        [second, 'second'],
      ] as const) {
        queue.define('slow', async () => {
          runs.push(by);
          await sleep(lockTtlMs * 4);
        });
      }
      await first.start();
      await second.start();

      await first.enqueue('slow', {});
      await waitFor('the job to start', () => runs.length > 0);
      await sleep(lockTtlMs * 4 + 300);
      expect(runs, 'ran once, never taken over').to.have.length(1);
      await waitFor(
        'the job to be deleted',
        () => first.stats().deletes + second.stats().deletes > 0,
      );
      await sleep(100);
      expect(await rows()).to.deep.equal([]);
    });

    it('writes accepted jobs and waits for running ones on stop, then refuses', async function () {
      const queue = open();
      let finished = false;
      queue.define('slow', async () => {
        await sleep(300);
        finished = true;
      });
      queue.define('later', async () => {});
      await queue.start();
      await queue.enqueue('slow', {});
      await waitFor('the job to start', () => queue.stats().claimed > 0);

      // Accepted just before stop: its INSERT has not even been sent yet.
      const accepted = queue.enqueue('later', { n: 1 });
      await queue.stop();
      await accepted;

      expect(finished, 'stop waited for the running job').to.equal(true);
      expect((await rows()).map((row) => row.name)).to.deep.equal(['later']);
      await rejects(queue.enqueue('later', {}), AdapterError);
    });

    it('keeps a throwing failure listener from breaking the queue', async function () {
      const queue = open();
      const reported: string[] = [];
      const ran: string[] = [];
      queue.define(
        'deliver',
        async (data) => {
          ran.push(data.id as string);
          if (data.id === 'bad') throw new Error('hub unreachable');
        },
        { attempts: 1 },
      );
      queue.onFailure(() => {
        throw new Error('listener bug');
      });
      queue.onFailure((_, data) => reported.push(data.id as string));
      await queue.start();

      await queue.enqueue('deliver', { id: 'bad' });
      await waitFor('the report', () => reported.length > 0);
      await queue.enqueue('deliver', { id: 'good' });
      await waitFor('the next job', () => ran.includes('good'));
      expect(reported).to.deep.equal(['bad']);
    });

    it('outlives cut connections and dropped tables, no unhandled rejection', async function () {
      const applicationName = randomName('queue_test');
      const pool = new pg.Pool({
        connectionString: DATABASE_URL,
        application_name: applicationName,
        max: 5,
      });
      pool.on('error', () => {});
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);

      try {
        const logger = recordingLogger();
        const queue = open({ pool, logger, pollIntervalMs: 50 });
        const ran: number[] = [];
        queue.define('deliver', async (data) => void ran.push(data.n as number));
        await queue.start();
        await queue.enqueue('deliver', { n: 1 });
        await waitFor('the first job', () => ran.includes(1));

        // Every connection of the queue, the LISTEN one among them, is cut off.
        const admin = new pg.Client({ connectionString: DATABASE_URL });
        await admin.connect();
        const { rows: cut } = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
          [applicationName],
        );
        await admin.end();
        expect(cut.length, 'connections terminated').to.be.at.least(1);
        await sleep(300);
        await queue.enqueue('deliver', { n: 2 });
        await waitFor('a job after the connections were cut', () => ran.includes(2));

        // The tables go away under the running loops, and come back.
        await database.pool.query(`DROP TABLE ${quotedTable()}, ${schedules(table)}`);
        await sleep(300);
        expect(logger.warnings.some((message) => /failed/.test(message))).to.equal(true);
        await queue.migrate();
        await queue.enqueue('deliver', { n: 3 });
        await waitFor('a job after the table came back', () => ran.includes(3));

        expect(unhandled).to.deep.equal([]);
        await queue.stop();
      } finally {
        process.off('unhandledRejection', onUnhandled);
        await pool.end();
      }
    });
  });
});

/** The quoted form of `schema.table`. */
function quoted(table: string): string {
  return table
    .split('.')
    .map((part) => `"${part}"`)
    .join('.');
}

/** The quoted schedules table beside `schema.table`. */
function schedules(table: string): string {
  return quoted(`${table}_schedules`);
}

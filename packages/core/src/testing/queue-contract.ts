import { randomUUID } from 'node:crypto';

import { expect } from 'chai';

import type { JobData, JobQueue } from '../queue.js';

/** What one test of the queue contract gets from the adapter under test. */
export interface QueueContractContext {
  /** A fresh queue over an empty backend, defined nothing yet and not started. */
  queue: JobQueue;
  /**
   * Another client of the same backend, as a second process would hold it. Required unless the
   * contract runs with `oneProcess`.
   */
  second?: () => Promise<JobQueue>;
  /** Close what setup opened and remove what the test stored. Queues are stopped before. */
  teardown(): Promise<void>;
}

/** Timing knobs of the queue contract, for queues that poll their backend. */
export interface QueueContractOptions {
  /** Longest wait for something the queue should do soon. @default 5000 */
  waitMs?: number;
  /** Quiet time after the expected runs, in which a duplicate run would show. @default 300 */
  settleMs?: number;
  /**
   * The queue lives in one process and has no second client: the two-client tests do not
   * apply and are not defined (rather than skipped). @default false
   */
  oneProcess?: boolean;
  /**
   * Interval of the recurring-job tests, which allow a run to come 40 % of it late: a queue that
   * claims its jobs through a server may need more on a busy machine. @default 250
   */
  intervalMs?: number;
}

/** One run of a processor, as the contract records it. */
interface Run {
  data: JobData;
  at: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Smallest gap between consecutive run times, Infinity with fewer than two runs. */
function smallestGap(runs: Run[]): number {
  let gap = Infinity;
  for (let i = 1; i < runs.length; i++) {
    gap = Math.min(gap, (runs[i] as Run).at - (runs[i - 1] as Run).at);
  }
  return gap;
}

/**
 * The contract every `JobQueue` passes: each job runs once, also with two consumers; delayed and
 * recurring jobs keep their times; recurring jobs run once per interval across clients; failing
 * jobs are retried with backoff and reported after their last attempt; `stop` waits for running
 * jobs. Call it inside a mocha file; `setup` runs before each test.
 */
export function queueContract(
  name: string,
  setup: () => Promise<QueueContractContext>,
  options: QueueContractOptions = {},
): void {
  const waitMs = options.waitMs ?? 5000;
  const settleMs = options.settleMs ?? 300;
  const oneProcess = options.oneProcess ?? false;
  const recurringMs = options.intervalMs ?? 250;

  describe(`JobQueue contract: ${name}`, function () {
    let context: QueueContractContext;
    let queues: JobQueue[];

    /** Resolve once `condition` holds, or fail the test, saying what it saw, after `ms`. */
    async function waitFor(
      what: () => string,
      condition: () => boolean,
      ms = waitMs,
    ): Promise<void> {
      const deadline = Date.now() + ms;
      while (!condition()) {
        if (Date.now() > deadline) {
          throw new Error(`Timed out after ${ms} ms waiting for ${what()}`);
        }
        await sleep(10);
      }
    }

    /** The second client, which a queue shared by processes must give. */
    async function secondQueue(): Promise<JobQueue> {
      if (!context.second) {
        throw new Error('setup gave no second client: give one, or run with oneProcess: true');
      }
      const queue = await context.second();
      queues.push(queue);
      return queue;
    }

    const kind = () => `job-${randomUUID().slice(0, 8)}`;

    beforeEach(async function () {
      queues = [];
      context = await setup();
      queues = [context.queue];
    });

    afterEach(async function () {
      // Nothing to close when setup itself failed.
      if (queues.length === 0) return;

      // Every client is stopped, even when one of them fails to, so that teardown can close.
      const stopped = await Promise.allSettled(queues.map((queue) => queue.stop()));
      await context.teardown();

      const failure = stopped.find((result) => result.status === 'rejected');
      if (failure) throw (failure as PromiseRejectedResult).reason;
    });

    it('runs an enqueued job with its JSON data intact', async function () {
      const { queue } = context;
      const job = kind();
      const runs: Run[] = [];
      queue.define(job, async (data) => void runs.push({ data, at: Date.now() }));
      await queue.start();

      const data = {
        id: 'sub-1',
        body: Buffer.from('<feed>é</feed>').toString('base64'),
        headers: { 'content-type': 'application/atom+xml', link: ['<a>; rel="hub"'] },
        count: 3,
        ratio: 0.5,
        ok: true,
        none: null,
        text: 'ünïcødé ✓',
      };
      await queue.enqueue(job, data);

      await waitFor(
        () => 'the job to run',
        () => runs.length >= 1,
      );
      await sleep(settleMs);
      expect(runs, 'ran once').to.have.length(1);
      expect(runs[0]?.data).to.deep.equal(data);
    });

    it('runs jobs enqueued before start once started', async function () {
      const { queue } = context;
      const job = kind();
      const seen: unknown[] = [];
      queue.define(job, async (data) => void seen.push(data.n));

      await queue.enqueue(job, { n: 1 });
      await queue.enqueue(job, { n: 2 });
      await sleep(100);
      expect(seen, 'nothing runs before start').to.deep.equal([]);

      await queue.start();
      await waitFor(
        () => `both jobs to run (ran ${seen.length})`,
        () => seen.length >= 2,
      );
      await sleep(settleMs);
      expect([...seen].sort()).to.deep.equal([1, 2]);
    });

    it('runs each of many jobs exactly once', async function () {
      const { queue } = context;
      const job = kind();
      const counts = new Map<number, number>();
      queue.define(
        job,
        async (data) => {
          await sleep(5);
          counts.set(data.n as number, (counts.get(data.n as number) ?? 0) + 1);
        },
        { concurrency: 4 },
      );
      await queue.start();

      const total = 30;
      await Promise.all(Array.from({ length: total }, (_, n) => queue.enqueue(job, { n })));
      await waitFor(
        () => `${total} jobs to run (ran ${counts.size})`,
        () => counts.size === total,
      );
      await sleep(settleMs);

      expect([...counts.keys()].sort((a, b) => a - b)).to.deep.equal(
        Array.from({ length: total }, (_, n) => n),
      );
      expect(
        [...counts.values()].every((count) => count === 1),
        'each ran once',
      ).to.equal(true);
    });

    if (!oneProcess)
      it('runs each job once when two clients consume the same queue', async function () {
        const first = context.queue;
        const second = await secondQueue();
        const job = kind();
        const runs: Array<{ n: number; by: string }> = [];
        first.define(job, async (data) => void runs.push({ n: data.n as number, by: 'first' }));
        second.define(job, async (data) => void runs.push({ n: data.n as number, by: 'second' }));
        await Promise.all([first.start(), second.start()]);

        const total = 30;
        for (let n = 0; n < total; n++) await (n % 2 ? first : second).enqueue(job, { n });
        await waitFor(
          () => `${total} jobs to run (ran ${runs.length} times)`,
          () => new Set(runs.map((run) => run.n)).size === total,
        );
        await sleep(settleMs);

        expect(runs.length, 'no job ran twice').to.equal(total);
      });

    it('does not run a delayed job before its delay, and runs it after', async function () {
      const { queue } = context;
      const job = kind();
      const runs: Run[] = [];
      queue.define(job, async (data) => void runs.push({ data, at: Date.now() }));
      await queue.start();

      const delayMs = 600;
      const enqueuedAt = Date.now();
      await queue.enqueue(job, { which: 'delayed' }, { delayMs });
      await queue.enqueue(job, { which: 'now' });

      await waitFor(
        () => `both jobs to run (ran ${runs.length})`,
        () => runs.length >= 2,
        delayMs + waitMs,
      );
      expect(runs.map((run) => run.data.which)).to.deep.equal(['now', 'delayed']);
      // Timers may fire a millisecond early and stored times may be truncated to milliseconds.
      expect((runs[1] as Run).at - enqueuedAt).to.be.at.least(delayMs - 5);
    });

    it('retries a failing job with growing delays until it succeeds', async function () {
      const { queue } = context;
      const job = kind();
      const runs: Run[] = [];
      const failures: unknown[] = [];
      queue.onFailure((...args) => failures.push(args));
      queue.define(
        job,
        async (data) => {
          runs.push({ data, at: Date.now() });
          if (runs.length < 3) throw new Error(`attempt ${runs.length} fails`);
        },
        { attempts: 3, backoffMs: 150 },
      );
      await queue.start();

      await queue.enqueue(job, { id: 'x' });
      await waitFor(
        () => `three attempts (saw ${runs.length})`,
        () => runs.length >= 3,
      );
      await sleep(settleMs);

      expect(runs.length, 'no attempt after the success').to.equal(3);
      expect(runs.map((run) => run.data)).to.deep.equal([{ id: 'x' }, { id: 'x' }, { id: 'x' }]);
      expect((runs[1] as Run).at - (runs[0] as Run).at, 'first backoff').to.be.at.least(145);
      expect((runs[2] as Run).at - (runs[1] as Run).at, 'doubled backoff').to.be.at.least(295);
      expect(failures, 'a job that succeeded is not reported').to.deep.equal([]);
    });

    it('reports a job that failed every attempt once, after the last attempt', async function () {
      const { queue } = context;
      const job = kind();
      let attempts = 0;
      const failures: Array<{ name: string; data: JobData; error: unknown; after: number }> = [];
      queue.onFailure((name, data, error) => failures.push({ name, data, error, after: attempts }));
      queue.define(
        job,
        async () => {
          attempts++;
          throw new Error('hub unreachable');
        },
        { attempts: 2, backoffMs: 50 },
      );
      await queue.start();

      await queue.enqueue(job, { id: 'y' });
      await waitFor(
        () => `the failure report (after ${attempts} attempts)`,
        () => failures.length >= 1,
      );
      await sleep(settleMs);

      expect(attempts, 'attempts made').to.equal(2);
      expect(failures).to.have.length(1);
      const [failure] = failures;
      expect(failure?.name).to.equal(job);
      expect(failure?.data).to.deep.equal({ id: 'y' });
      expect(failure?.after, 'reported after the last attempt').to.equal(2);
      expect(failure?.error).to.be.instanceOf(Error);
      expect((failure?.error as Error).message).to.equal('hub unreachable');
    });

    it('runs a recurring job every interval with its data', async function () {
      const { queue } = context;
      const job = kind();
      const runs: Run[] = [];
      queue.define(job, async (data) => void runs.push({ data, at: Date.now() }));
      await queue.start();

      const intervalMs = recurringMs;
      const since = Date.now();
      await queue.every(job, intervalMs, { task: 'renew' });
      await waitFor(
        () => `three runs (saw ${runs.length})`,
        () => runs.length >= 3,
        waitMs + 3 * intervalMs,
      );
      const elapsed = Date.now() - since;

      expect(runs[0]?.data).to.deep.equal({ task: 'renew' });
      expect(runs.length, 'no more runs than intervals').to.be.at.most(elapsed / intervalMs + 1);
      expect(smallestGap(runs), 'runs are an interval apart').to.be.at.least(intervalMs * 0.6);
    });

    it('replaces the interval when every is called again with the same name', async function () {
      const { queue } = context;
      const job = kind();
      const runs: Run[] = [];
      queue.define(job, async (data) => void runs.push({ data, at: Date.now() }));

      await queue.every(job, 100, { version: 1 });
      await queue.every(job, 700, { version: 2 });
      await queue.start();
      await sleep(1000);

      // The first interval alone would have run about ten times by now.
      expect(runs.length).to.be.within(1, 2);
      expect(runs.map((run) => run.data.version)).to.satisfy((versions: number[]) =>
        versions.every((version) => version === 2),
      );
    });

    if (!oneProcess)
      it('runs a recurring job once per interval across two clients', async function () {
        const first = context.queue;
        const second = await secondQueue();
        const job = kind();
        const runs: Run[] = [];
        first.define(job, async (data) => void runs.push({ data, at: Date.now() }));
        second.define(job, async (data) => void runs.push({ data, at: Date.now() }));

        const intervalMs = Math.round(recurringMs * 1.2);
        await Promise.all([first.every(job, intervalMs), second.every(job, intervalMs)]);
        await Promise.all([first.start(), second.start()]);
        const since = Date.now();
        await sleep(intervalMs * 5 + 100);
        const elapsed = Date.now() - since;

        expect(runs.length, 'it runs').to.be.at.least(2);
        expect(runs.length, 'not once per client').to.be.at.most(elapsed / intervalMs + 1);
        expect(smallestGap(runs), 'no two runs at once').to.be.at.least(intervalMs * 0.5);
      });

    it('waits for a running job to finish when stopping', async function () {
      const { queue } = context;
      const job = kind();
      let started = false;
      let finished = false;
      queue.define(job, async () => {
        started = true;
        await sleep(500);
        finished = true;
      });
      await queue.start();

      await queue.enqueue(job, {});
      await waitFor(
        () => 'the job to start',
        () => started,
      );
      const stopping = Date.now();
      await queue.stop();

      expect(finished, 'the job finished before stop resolved').to.equal(true);
      expect(Date.now() - stopping).to.be.below(500 + waitMs);
    });
  });
}

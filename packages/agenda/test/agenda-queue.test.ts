import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { RedisBackend } from '@agendajs/redis-backend';
import { createAgendaQueue } from '@websubsub/agenda';
import { AdapterError, InvalidInputError, type JobQueue } from '@websubsub/core';
import { Agenda } from 'agenda';
import { expect } from 'chai';
import { Redis } from 'ioredis';

import {
  postgresFixture,
  redisFixture,
  redisUrl,
  requirePostgres,
  requireRedis,
  type AgendaFixture,
} from './servers.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('Expected a rejection, but the promise resolved');
}

/** Tests that hold on any backend, run on each. */
function sharedTests(fixture: () => Promise<AgendaFixture>) {
  let context: AgendaFixture;
  let queues: JobQueue[];

  beforeEach(async function () {
    context = await fixture();
    queues = [context.queue];
  });

  afterEach(async function () {
    await Promise.allSettled(queues.map((queue) => queue.stop()));
    await context.teardown();
  });

  it('keeps one schedule when two processes schedule a recurring job at once', async function () {
    const first = await context.open('first');
    const second = await context.open('second');
    queues.push(first.queue, second.queue);
    const kinds = Array.from({ length: 5 }, () => `upkeep-${randomUUID().slice(0, 8)}`);
    for (const kind of kinds) {
      first.queue.define(kind, async () => {});
      second.queue.define(kind, async () => {});
    }

    await Promise.all(
      kinds.flatMap((kind) => [first.queue.every(kind, 60_000), second.queue.every(kind, 60_000)]),
    );

    for (const kind of kinds) {
      const { jobs } = await first.agenda.queryJobs({ name: `websubsub:${kind}` });
      expect(
        jobs.map((job) => job.type),
        kind,
      ).to.deep.equal(['single']);
      expect(Number(jobs[0]?.repeatInterval)).to.equal(60_000);
    }
  });

  it('keeps a job that outlives its lock lifetime to one run', async function () {
    const first = await context.open('first', { lockLifetimeMs: 400 });
    const second = await context.open('second', { lockLifetimeMs: 400 });
    queues.push(first.queue, second.queue);
    let runs = 0;
    let done = 0;
    for (const { queue } of [first, second]) {
      queue.define('slow', async () => {
        runs++;
        await sleep(1500);
        done++;
      });
    }
    await Promise.all([first.queue.start(), second.queue.start()]);

    await first.queue.enqueue('slow', {});
    while (done === 0) await sleep(20);
    await sleep(600);

    expect(runs, 'no other process took the job over').to.equal(1);
  });
}

describe('@websubsub/agenda', function () {
  describe('on Redis', function () {
    before(async function () {
      await requireRedis(this);
    });

    sharedTests(() => redisFixture());

    describe('createAgendaQueue', function () {
      let context: AgendaFixture;

      beforeEach(async function () {
        context = await redisFixture();
      });

      afterEach(async function () {
        await context.queue.stop();
        await context.teardown();
      });

      it('stores jobs as Agenda jobs named with the prefix', async function () {
        const { agenda, queue } = await context.open('named', { prefix: 'acme:' });
        queue.define('deliver', async () => {});

        await queue.enqueue('deliver', { id: 'sub-1', sent: new Date(0) as unknown as string });

        const { jobs } = await agenda.queryJobs({ name: 'acme:deliver' });
        expect(jobs).to.have.length(1);
        expect(jobs[0]?.data, 'stored as JSON').to.deep.equal({
          id: 'sub-1',
          sent: '1970-01-01T00:00:00.000Z',
        });
        expect((await agenda.queryJobs({ name: 'deliver' })).jobs).to.have.length(0);
      });

      it('refuses binary job data, which each backend would store its own way', async function () {
        const { agenda, queue } = await context.open('binary');
        queue.define('deliver', async () => {});

        const top = await rejection(queue.enqueue('deliver', { body: Buffer.from('x') }));
        const nested = await rejection(
          queue.enqueue('deliver', { parts: [{ bytes: new Uint8Array([1]) }] }),
        );

        expect(top).to.be.instanceOf(InvalidInputError);
        expect((top as Error).message).to.match(/binary data at "body"/);
        expect(nested).to.be.instanceOf(InvalidInputError);
        expect((await agenda.queryJobs({ name: 'websubsub:deliver' })).jobs).to.have.length(0);
      });

      it('refuses unknown job kinds and intervals that are not positive', async function () {
        const { queue } = context;
        queue.define('known', async () => {});

        expect(await rejection(queue.enqueue('unknown', {}))).to.be.instanceOf(InvalidInputError);
        expect(await rejection(queue.every('known', 0))).to.be.instanceOf(InvalidInputError);
      });

      it('wraps a backend failure in AdapterError', async function () {
        const redis = new Redis(redisUrl);
        const agenda = new Agenda({ backend: new RedisBackend({ redis, keyPrefix: 'x:' }) });
        await agenda.ready;
        const queue = createAgendaQueue({ agenda });
        queue.define('deliver', async () => {});
        await redis.quit();

        const error = await rejection(queue.enqueue('deliver', {}));

        expect(error).to.be.instanceOf(AdapterError);
        expect((error as Error).message).to.match(/could not enqueue job deliver/);
      });

      it('lets the process exit soon after stop, once the running job finished', async function () {
        const script = fileURLToPath(new URL('./fixtures/stop-and-exit.ts', import.meta.url));
        const prefix = `websubsub-test:${randomUUID()}:`;

        const output = await new Promise<{ stdout: string; exitedAt: number }>(
          (resolve, reject) => {
            execFile(
              process.execPath,
              ['--import', 'tsx', '--conditions=source', script, redisUrl, prefix],
              { timeout: 15_000 },
              (error, stdout, stderr) => {
                if (error) reject(new Error(`${error.message}\n${stderr}`));
                else resolve({ stdout, exitedAt: Date.now() });
              },
            );
          },
        );

        const report = JSON.parse(output.stdout) as { state: string; stoppedAt: number };
        expect(report.state, 'stop waited for the job').to.equal('finished');
        // Agenda 6.2.6 keeps a timer of half the lock lifetime (here 1000 ms) after a job ran.
        expect(output.exitedAt - report.stoppedAt).to.be.below(1500);

        const redis = new Redis(redisUrl);
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length > 0) await redis.del(...keys);
        await redis.quit();
      });
    });
  });

  describe('on PostgreSQL', function () {
    before(async function () {
      await requirePostgres(this);
    });

    sharedTests(() => postgresFixture());
  });
});

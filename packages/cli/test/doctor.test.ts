import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { expect } from 'chai';

import { describePostgres, parseJson, randomName, useWorld } from './helpers.js';

interface DoctorOutput {
  healthy: boolean;
  checks: Array<{ name: string; status: string; detail: string }>;
  records: null | {
    total: number;
    byStatus: Record<string, number>;
    gaveUp: Array<{ id: string }>;
    unresolvable: Array<{ id: string }>;
    staleCallbackUrls: Array<{ id: string }>;
    overdue: Array<{ id: string }>;
    expired: Array<{ id: string }>;
  };
}

const HOUR = 3_600_000;

describePostgres('websubsub CLI: doctor and migrate (child processes, PostgreSQL store)', () => {
  const world = useWorld();

  const statuses = (output: DoctorOutput) =>
    Object.fromEntries(output.checks.map((check) => [check.name, check.status]));

  it('doctor: healthy records and a working store exit 0', async () => {
    await world.insert();
    await world.insert({ handler: 'sports' });

    const json = await world.run(['doctor', '--json']);
    const human = await world.run(['doctor']);

    expect(json.code, json.stderr).to.equal(0);
    const output = parseJson<DoctorOutput>(json);
    expect(output.healthy).to.equal(true);
    expect(statuses(output)).to.deep.equal({
      configuration: 'ok',
      store: 'ok',
      lock: 'warning',
      queue: 'warning',
      records: 'ok',
    });
    expect(output.checks.find((check) => check.name === 'store')?.detail).to.match(
      /^PostgresStore answers: 2 record\(s\)/,
    );
    expect(output.records).to.deep.include({ total: 2, byStatus: { verified: 2 }, gaveUp: [] });

    expect(human.code).to.equal(0);
    expect(human.stdout).to.match(/^\[ok\] {3}store {10}PostgresStore answers/m);
    expect(human.stdout).to.contain('Records by status: verified 2');
    expect(human.stdout.trimEnd().endsWith('Healthy.')).to.equal(true);
  });

  it('doctor: records in bad states and wrong declarations exit 1, each listed', async () => {
    const now = Date.now();
    const healthy = await world.insert();
    const gaveUp = await world.insert({
      subscribeStatus: 'connerror',
      retryAt: null,
      lastError: 'Gave up after 10 connection errors: ECONNREFUSED',
    });
    const unresolvable = await world.insert({ handler: 'retired' });
    const stale = await world.insert();
    await world.store.transition(stale.id, {
      set: { callbackUrl: `http://127.0.0.1:9/before/websub/news/${stale.id}` },
    });
    // The default retry interval is ten minutes: a retry due for a day was never taken up.
    const overdue = await world.insert({
      subscribeStatus: 'requesting',
      retryAt: new Date(now - 24 * HOUR),
    });
    const expired = await world.insert({ leaseExpiresAt: new Date(now - HOUR) });
    const declarations = [
      { topic: healthy.topic, hub: healthy.hub },
      { topic: world.hub.topicUrl('/never-applied'), hub: world.hub.url },
      { topic: world.hub.topicUrl('/odd'), hub: world.hub.url, handler: 'weather' },
    ];
    const env = { WEBSUBSUB_TEST_STATIC: JSON.stringify(declarations) };

    const json = await world.run(['doctor', '--json'], env);
    const human = await world.run(['doctor'], env);

    expect(json.code).to.equal(1);
    const output = parseJson<DoctorOutput>(json);
    expect(output.healthy).to.equal(false);
    const ids = (list: Array<{ id: string }> | undefined) => list?.map((record) => record.id);
    expect(ids(output.records?.gaveUp)).to.deep.equal([gaveUp.id]);
    expect(ids(output.records?.unresolvable)).to.deep.equal([unresolvable.id]);
    expect(ids(output.records?.staleCallbackUrls)).to.deep.equal([stale.id]);
    expect(ids(output.records?.overdue)).to.deep.equal([overdue.id]);
    expect(ids(output.records?.expired)).to.deep.equal([expired.id]);
    expect(output.records?.byStatus).to.deep.equal({ verified: 4, connerror: 1, requesting: 1 });
    const checks = output.checks;
    expect(checks.filter((check) => check.name === 'static subscriptions')).to.deep.equal([
      {
        name: 'static subscriptions',
        status: 'failed',
        detail: 'staticSubscriptions[2]: handler weather is not configured',
      },
      {
        name: 'static subscriptions',
        status: 'warning',
        detail:
          '2 declared but not stored (run static-subscribe): ' +
          `${world.hub.topicUrl('/never-applied')}, ${world.hub.topicUrl('/odd')}`,
      },
    ]);

    expect(human.code).to.equal(1);
    expect(human.stdout).to.contain(`Given up (1): retries exhausted`);
    expect(human.stdout).to.contain(`  ${gaveUp.id}  connerror  ${gaveUp.topic}  Gave up after 10`);
    expect(human.stdout).to.contain(
      'Stale callback URL (1): the base URL or a handler path changed',
    );
    expect(human.stdout).to.contain('Unhealthy: see the checks marked FAIL.');
  });

  it('doctor: a store that cannot be reached fails its check and exits 1', async () => {
    const run = await world.run(['doctor', '--json'], {
      WEBSUBSUB_TEST_DATABASE_URL: 'postgres://127.0.0.1:1/test',
    });

    expect(run.code).to.equal(1);
    const output = parseJson<DoctorOutput>(run);
    expect(statuses(output)).to.include({ configuration: 'ok', store: 'failed', lock: 'warning' });
    expect(output.checks.find((check) => check.name === 'store')?.detail).to.contain(
      'ECONNREFUSED',
    );
    expect(output.records).to.equal(null);
  });

  it('doctor: a configuration that does not load is reported and exits 2', async () => {
    await writeFile(join(world.dir, 'broken.mjs'), 'export default 42;\n');

    const run = await world.run(['doctor', '--config', 'broken.mjs']);

    expect(run.code).to.equal(2);
    expect(run.stdout).to.match(/^\[FAIL\] configuration {2}.*must export an object/m);
  });

  it("migrate runs the configuration's migrate(), or says there's nothing to migrate", async () => {
    const table = `${world.table.split('.')[0]}.${randomName('fresh')}`;
    const env = { WEBSUBSUB_TEST_TABLE: table, WEBSUBSUB_TEST_MIGRATE: 'off' };

    const before = await world.run(['list'], env);
    expect(before.code).to.equal(1);
    expect(before.stderr).to.contain('does not exist');

    const first = await world.run(['migrate', '--json'], env);
    expect(first.code, first.stderr).to.equal(0);
    expect(parseJson(first)).to.deep.equal({
      migrated: true,
      result: { table: table.replace(/(\w+)\.(\w+)/, '"$1"."$2"'), from: 0, to: 3 },
    });
    const second = await world.run(['migrate'], env);
    expect(second.stdout).to.match(/^Migrated: .*"from":3,"to":3/);
    expect((await world.run(['list'], env)).code).to.equal(0);

    const core = JSON.stringify(import.meta.resolve('@websubsub/core'));
    await writeFile(
      join(world.dir, 'plain.mjs'),
      `import { createSubscriber } from ${core};
export default {
  subscriber: createSubscriber({ baseUrl: 'http://127.0.0.1:9', handlers: { news() {} } }),
};\n`,
    );
    const nothing = await world.run(['migrate', '-c', 'plain.mjs']);
    expect(nothing.code).to.equal(0);
    expect(nothing.stdout).to.contain('Nothing to migrate');
  });
});

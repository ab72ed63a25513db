import { skipUnlessCi } from '@websubsub/core/testing';
import { expect } from 'chai';

import { describePostgres, hasScript, parseJson, runInTerminal, useWorld } from './helpers.js';

describePostgres(
  'websubsub CLI: purge-unresolvable, reset-counters, purge-all (child processes, PostgreSQL)',
  () => {
    const world = useWorld();

    it('purge-unresolvable needs --yes, deletes only records whose handler is gone', async () => {
      const kept = await world.insert({ handler: 'sports' });
      const retired = await world.insert({ handler: 'retired' });
      const renamed = await world.insert({ handler: 'old-news', static: true });

      const refused = await world.run(['purge-unresolvable']);
      expect(refused.code).to.equal(2);
      expect(refused.stderr).to.contain(
        'purge-unresolvable changes or deletes records and needs confirmation: pass --yes',
      );
      expect(await world.store.count()).to.equal(3);

      const run = await world.run(['purge-unresolvable', '--yes', '--json']);
      expect(run.code, run.stderr).to.equal(0);
      expect(parseJson<{ purged: string[] }>(run).purged).to.have.members([retired.id, renamed.id]);
      expect((await world.store.list()).items.map((record) => record.id)).to.deep.equal([kept.id]);

      const again = await world.run(['purge-unresolvable', '-y']);
      expect(again.stdout).to.contain('Every subscription has a configured handler.');
    });

    it('reset-counters zeroes the records named; all of them only with --yes', async () => {
      const counters = { connectionErrors: 4, hubErrors: 3, verifyTimeouts: 2, verifyErrors: 1 };
      const zero = { connectionErrors: 0, hubErrors: 0, verifyTimeouts: 0, verifyErrors: 0 };
      const first = await world.insert(counters);
      const second = await world.insert(counters);
      const third = await world.insert(counters);

      const named = await world.run(['reset-counters', first.id, '--json']);
      expect(named.code, named.stderr).to.equal(0);
      expect(parseJson(named)).to.deep.equal({ reset: [first.id], notFound: [] });
      expect(await world.store.get(first.id)).to.include(zero);
      expect(await world.store.get(second.id)).to.include(counters);

      const unknown = await world.run([
        'reset-counters',
        second.id,
        'a0000000-0000-4000-8000-000000000000',
      ]);
      expect(unknown.code).to.equal(1);
      expect(unknown.stdout).to.contain('not found: a0000000-0000-4000-8000-000000000000');
      expect(await world.store.get(second.id)).to.include(zero);

      const refused = await world.run(['reset-counters']);
      expect(refused.code).to.equal(2);
      expect(await world.store.get(third.id)).to.include(counters);

      const all = await world.run(['reset-counters', '--yes']);
      expect(all.code, all.stderr).to.equal(0);
      expect(all.stdout).to.contain('Reset the counters of 3 subscription(s).');
      expect(await world.store.get(third.id)).to.include(zero);
    });

    it('purge-all refuses without --yes, then deletes all records, telling no hub', async () => {
      for (let index = 0; index < 3; index++) await world.insert();

      const refused = await world.run(['purge-all', '--json']);
      expect(refused.code).to.equal(2);
      expect(parseJson<{ error: { code: string } }>(refused).error.code).to.equal('usage');
      expect(await world.store.count()).to.equal(3);

      const run = await world.run(['purge-all', '--yes', '--json']);
      expect(run.code, run.stderr).to.equal(0);
      expect(parseJson(run)).to.deep.equal({ deleted: 3 });
      expect(await world.store.count()).to.equal(0);
      expect(world.hub.requests).to.deep.equal([]);
    });

    describe('on a terminal (a real pseudo-terminal, through util-linux script)', () => {
      before(async function () {
        if (await hasScript()) return;
        skipUnlessCi(this, 'util-linux `script` is missing, so no pseudo-terminal can be opened');
      });

      it('asks before purge-all, and deletes on yes', async () => {
        await world.insert();
        await world.insert();

        const run = await runInTerminal(['purge-all'], {
          cwd: world.dir,
          env: world.env(),
          answer: 'y',
        });

        expect(run.stdout).to.contain('Delete all 2 subscription(s)? Hubs are not told');
        expect(run.stdout).to.contain('Deleted 2 subscription(s).');
        expect(run.code).to.equal(0);
        expect(await world.store.count()).to.equal(0);
      });

      it('changes nothing on no, and exits 2', async () => {
        const record = await world.insert({ handler: 'retired' });

        const run = await runInTerminal(['purge-unresolvable'], {
          cwd: world.dir,
          env: world.env(),
          answer: 'n',
        });

        expect(run.stdout).to.contain(
          'Delete every subscription whose handler is not one of news, sports?',
        );
        expect(run.stdout).to.contain('Cancelled: nothing was changed');
        expect(run.code).to.equal(2);
        expect(await world.store.get(record.id)).not.to.equal(null);
      });
    });
  },
);

import { expect } from 'chai';

import { describePostgres, parseJson, useWorld } from './helpers.js';

type Json = Record<string, unknown>;

describePostgres('websubsub CLI: list, show and dump (child processes, PostgreSQL store)', () => {
  const world = useWorld();

  it('list prints id, status, topic, hub, handler, lease end, last delivery, error', async () => {
    const verified = await world.insert({ lastDeliveryAt: new Date('2026-11-30T08:00:00.123Z') });
    const failing = await world.insert({
      handler: 'sports',
      subscribeStatus: 'connerror',
      leaseExpiresAt: null,
      lastError: 'connect ECONNREFUSED\n127.0.0.1:9',
    });
    const leaving = await world.insert({ unsubscribeStatus: 'verifying' });

    const run = await world.run(['list']);

    expect(run.code).to.equal(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).to.match(
      /^ID\s+STATUS\s+TOPIC\s+HUB\s+HANDLER\s+LEASE ENDS\s+LAST DELIVERY\s+LAST ERROR$/,
    );
    const row = (id: string) => lines.find((line) => line.startsWith(id)) ?? '';
    expect(row(verified.id)).to.match(/\sverified\s/);
    expect(row(verified.id)).to.contain('2026-11-30T08:00:00Z');
    expect(row(verified.id)).to.contain(world.hub.url);
    expect(row(failing.id)).to.match(
      /\sconnerror\s.*\ssports\s+-\s+-\s+connect ECONNREFUSED 127\.0\.0\.1:9$/,
    );
    expect(row(leaving.id)).to.contain('unsubscribe:verifying');
    expect(lines[lines.length - 1]).to.equal('3 subscription(s)');
  });

  it('list filters by status, handler, hub and static, and stops at --limit', async () => {
    const news = await world.insert({ static: true });
    const sports = await world.insert({ handler: 'sports' });
    const denied = await world.insert({ subscribeStatus: 'denied', deniedReason: 'no' });
    const leaving = await world.insert({ unsubscribeStatus: 'requesting' });
    const elsewhere = await world.insert({ hub: 'http://127.0.0.1:9/other-hub' });

    const ids = async (...args: string[]) => {
      const run = await world.run(['list', '--json', ...args]);
      expect(run.code, run.stderr).to.equal(0);
      return parseJson<Json[]>(run).map((record) => record['id']);
    };

    expect(await ids('--handler', 'sports')).to.deep.equal([sports.id]);
    expect(await ids('--status', 'unsubscribe:requesting')).to.deep.equal([leaving.id]);
    // A record being unsubscribed is not "verified", though its subscribe status still is.
    expect(await ids('--status', 'verified', '--handler', 'news')).to.have.members([
      news.id,
      elsewhere.id,
    ]);
    expect(await ids('--static')).to.deep.equal([news.id]);
    expect(await ids('--no-static', '--hub', 'http://127.0.0.1:9/other-hub')).to.deep.equal([
      elsewhere.id,
    ]);
    const sorted = [news, sports, denied, leaving, elsewhere].map((record) => record.id).sort();
    expect(await ids('--limit', '2')).to.deep.equal(sorted.slice(0, 2));
  });

  it('never prints a secret: --json shows hasSecret, and dates as ISO strings', async () => {
    const secret = 'correct horse battery staple';
    const record = await world.insert({ secret, static: true });
    await world.insert({ secret: null });

    const list = await world.run(['list', '--json']);
    const show = await world.run(['show', record.id, '--json']);
    const dump = await world.run(['dump']);
    const human = await world.run(['show', record.id]);

    for (const run of [list, show, dump, human]) {
      expect(run.code).to.equal(0);
      expect(run.stdout).not.to.contain(secret);
    }
    const shown = parseJson(show);
    expect(shown).not.to.have.property('secret');
    expect(shown).to.include({
      id: record.id,
      hasSecret: true,
      static: true,
      subscribeStatus: 'verified',
      createdAt: record.createdAt.toISOString(),
      leaseExpiresAt: record.leaseExpiresAt?.toISOString(),
      callbackUrl: record.callbackUrl,
    });
    expect(human.stdout).to.match(/^Secret:\s+set$/m);
    expect(human.stdout).to.match(new RegExp(`^Callback URL:\\s+${record.callbackUrl}$`, 'm'));
  });

  it('show keeps the further lines of a hub error under its value', async () => {
    const record = await world.insert({
      subscribeStatus: 'huberror',
      lastError: 'Hub answered 500: over quota\nHub errors: 0\r\nStatus: verified',
    });

    const run = await world.run(['show', record.id]);

    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/^Last error: +Hub answered 500: over quota$/m);
    expect(run.stdout).to.match(/^ +Hub errors: 0$/m);
    expect(run.stdout).to.match(/^ +Status: verified$/m);
    expect(run.stdout).not.to.match(/^Status: verified$/m);
    expect(run.stdout).to.match(/^Hub errors: +0$/m);
  });

  it('show exits 1 for an unknown id, and points out a handler not configured', async () => {
    const missing = await world.run(['show', '00000000-0000-4000-8000-000000000000']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.contain(
      'No subscription with id 00000000-0000-4000-8000-000000000000',
    );

    const retired = await world.insert({ handler: 'retired' });
    const shown = await world.run(['show', retired.id]);
    expect(shown.code).to.equal(0);
    expect(shown.stdout).to.contain('The handler retired is not configured');
  });

  it('dump streams every record across pages: JSON lines, or one array with --json', async () => {
    const inserted: string[] = [];
    for (let batch = 0; batch < 13; batch++) {
      const records = await Promise.all(
        Array.from({ length: 40 }, () => world.insert({ lastError: 'x'.repeat(20) })),
      );
      inserted.push(...records.map((record) => record.id));
    }

    const lines = await world.run(['dump']);
    expect(lines.code).to.equal(0);
    const parsed = lines.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(parsed).to.have.length(520);
    expect(parsed.map((record) => record['id'])).to.deep.equal([...inserted].sort());
    expect(parsed[0]).to.have.all.keys(Object.keys(parsed[1] as Json));
    expect(parsed[0]).to.include({ hasSecret: false, handler: 'news' });

    const array = await world.run(['dump', '--json', '--handler', 'news']);
    expect(array.code).to.equal(0);
    expect(parseJson<Json[]>(array).map((record) => record['id'])).to.deep.equal(
      [...inserted].sort(),
    );

    const none = await world.run(['dump', '--json', '--handler', 'sports']);
    expect(parseJson<Json[]>(none)).to.deep.equal([]);
  });
});

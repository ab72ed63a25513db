import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { createSubscriber, readRequestBody, type Subscription } from '@websubsub/core';
import { createPostgresQueue } from '@websubsub/postgres';
import { expect } from 'chai';

import {
  DATABASE_URL,
  describePostgres,
  FIXTURES,
  parseJson,
  useWorld,
  type World,
} from './helpers.js';

type Json = Record<string, unknown>;

interface RequestsOutput {
  subscriptions: Json[];
  failed: string[];
  pending: string[];
}

interface StaticOutput {
  created: string[];
  resubscribed: string[];
  skipped: Array<{ id: string; reason: string }>;
  purged: string[];
  unsubscribing: string[];
  failed: Array<{ topic: string; error: string }>;
  subscriptions: Json[];
}

/** Wait until the application has stored what the hub's verification said. */
async function stored(world: World, id: string, holds: (record: Subscription) => boolean) {
  let last: Subscription | null = null;
  await world.hub.waitFor(async () => {
    last = await world.store.get(id);
    return last !== null && holds(last);
  });
  return last as unknown as Subscription;
}

describePostgres(
  'websubsub CLI: commands that send hub requests (child processes, PostgreSQL store, test hub)',
  () => {
    const world = useWorld();

    describe('subscribe', () => {
      it('stores and sends the request before exiting, and never prints the secret', async () => {
        const topic = world.hub.serveFeed('/news.atom');
        const secret = 'a secret only the hub may know';

        const run = await world.run(
          [
            'subscribe',
            topic,
            '--hub',
            world.hub.url,
            '--handler',
            'sports',
            '--lease-seconds',
            '3600',
            '--secret-env',
            'HUB_SECRET',
            '--json',
          ],
          { HUB_SECRET: secret },
        );

        expect(run.code, run.stderr).to.equal(0);
        expect(run.stdout).not.to.contain(secret);
        const output = parseJson<RequestsOutput>(run);
        expect(output.failed).to.deep.equal([]);
        expect(output.pending).to.deep.equal([]);
        const [record] = output.subscriptions;
        const id = String(record?.['id']);
        expect(record).to.include({
          topic,
          hub: world.hub.url,
          handler: 'sports',
          hasSecret: true,
        });
        expect(['verifying', 'verified']).to.include(record?.['subscribeStatus']);

        // The request went out from the command's own process, before it exited.
        expect(world.hub.requests).to.have.length(1);
        expect(world.hub.requests[0]).to.include({
          mode: 'subscribe',
          topic,
          callback: `${world.origin}/websub/sports/${id}`,
          leaseSeconds: 3600,
          secret,
        });

        // The application answers the hub's verification from the shared store.
        const verified = await stored(world, id, (found) => found.subscribeStatus === 'verified');
        expect(verified.secret).to.equal(secret);
        expect(verified.leaseExpiresAt).to.be.instanceOf(Date);
      });

      it('discovers the hub from a real feed; --all-hubs subscribes at every hub', async () => {
        const body = await readFile(join(FIXTURES, 'discovery/wordpress-three-hubs.body'));
        // The publisher's own Link headers, pointing at the test hub (twice, as two hub URLs).
        const second = `${world.hub.url}?tenant=2`;
        const topic = world.hub.topicUrl('/blog/feed/');
        world.hub.serveTopic('/blog/feed/', {
          headers: [
            ['Content-Type', 'application/rss+xml; charset=UTF-8'],
            ['Link', `<${world.hub.url}>; rel="hub"`],
            ['Link', `<${second}>; rel="hub"`],
            ['Link', `<${topic}>; rel="self"`],
          ],
          body,
        });

        const one = await world.run(['subscribe', topic]);
        expect(one.code, one.stderr).to.equal(0);
        expect(one.stdout).to.match(
          new RegExp(`^Subscribed \\S+  (verifying|verified)  ${topic} at ${world.hub.url}$`, 'm'),
        );

        const all = await world.run(['subscribe', topic, '--all-hubs', '--json']);
        expect(all.code, all.stderr).to.equal(0);
        const records = parseJson<RequestsOutput>(all).subscriptions;
        expect(records.map((record) => record['hub'])).to.deep.equal([world.hub.url, second]);
        expect(new Set(records.map((record) => record['callbackUrl']))).to.have.property('size', 2);
        // The first hub's record is the one the first run created, asked again.
        expect(await world.store.count()).to.equal(2);
        expect(world.hub.requests.map((request) => request.url)).to.have.members([
          '/hub',
          '/hub',
          '/hub?tenant=2',
        ]);
      });

      it('exits 1 when the hub refuses, with the record in huberror', async () => {
        world.hub.failNext(1, { status: 500, body: 'over quota' });

        const run = await world.run([
          'subscribe',
          world.hub.topicUrl('/feed'),
          '--hub',
          world.hub.url,
          '--json',
        ]);

        expect(run.code).to.equal(1);
        const output = parseJson<RequestsOutput>(run);
        const [record] = output.subscriptions;
        expect(output.failed).to.deep.equal([record?.['id']]);
        expect(record).to.include({ subscribeStatus: 'huberror', hubErrors: 1 });
        expect(String(record?.['lastError'])).to.contain('500');
      });

      it('on a shared PostgreSQL queue, waits for the request whoever runs it', async () => {
        // The application's worker shares the jobs table with the command and may take the
        // request; the hub answers a moment late, so the command has to watch the record.
        const queue = createPostgresQueue({
          connectionString: DATABASE_URL,
          table: `${world.table}_jobs`,
        });
        const worker = createSubscriber({
          baseUrl: world.origin,
          handlers: { news: () => {}, sports: () => {} },
          store: world.store,
          queue,
          upkeep: false,
        });
        const slowHub: Server = createServer((request, response) => {
          void readRequestBody(request, 65_536).then(async (body) => {
            await new Promise((resolve) => setTimeout(resolve, 700));
            const answer = await fetch(world.hub.url, {
              method: 'POST',
              headers: { 'content-type': String(request.headers['content-type']) },
              body,
            });
            response.writeHead(answer.status).end(await answer.text());
          });
        });
        await new Promise<void>((resolve) => slowHub.listen(0, '127.0.0.1', resolve));
        const hubUrl = `http://127.0.0.1:${(slowHub.address() as AddressInfo).port}/hub`;
        await worker.start();
        try {
          const run = await world.run(
            ['subscribe', world.hub.topicUrl('/feed'), '--hub', hubUrl, '--json'],
            { WEBSUBSUB_TEST_QUEUE: 'postgres' },
          );
          const doctor = await world.run(['doctor', '--json'], {
            WEBSUBSUB_TEST_QUEUE: 'postgres',
          });

          expect(run.code, run.stderr).to.equal(0);
          expect(run.stderr).not.to.contain('not answered');
          const output = parseJson<RequestsOutput>(run);
          expect(output.pending).to.deep.equal([]);
          expect(['verifying', 'verified']).to.include(
            output.subscriptions[0]?.['subscribeStatus'],
          );
          expect(world.hub.requests).to.have.length(1);

          const queueCheck = parseJson<{ checks: Array<{ name: string; status: string }> }>(
            doctor,
          ).checks.find((check) => check.name === 'queue');
          expect(queueCheck).to.deep.include({ status: 'ok' });
        } finally {
          await worker.stop();
          slowHub.closeAllConnections();
          await new Promise<void>((resolve) => slowHub.close(() => resolve()));
        }
      });

      it('with --no-wait only stores the request, warning that nothing sends it here', async () => {
        const run = await world.run([
          'subscribe',
          world.hub.topicUrl('/feed'),
          '--hub',
          world.hub.url,
          '--no-wait',
        ]);

        expect(run.code, run.stderr).to.equal(0);
        expect(run.stderr).to.contain('--no-wait with the in-process queue');
        const { items } = await world.store.list();
        expect(items).to.have.length(1);
        expect(items[0]).to.include({ subscribeStatus: 'requesting', lastSubscribeAt: null });
        expect(world.hub.requests).to.deep.equal([]);
      });

      it('exits 2 for a topic that is not a URL or a handler that is not configured', async () => {
        const topic = await world.run(['subscribe', 'not-a-url', '--hub', world.hub.url]);
        expect(topic.code).to.equal(2);
        expect(topic.stderr).to.contain('topic is not an absolute URL');

        const handler = await world.run([
          'subscribe',
          world.hub.topicUrl('/feed'),
          '--hub',
          world.hub.url,
          '--handler',
          'weather',
        ]);
        expect(handler.code).to.equal(2);
        expect(handler.stderr).to.contain('No handler named weather is configured');
        expect(await world.store.count()).to.equal(0);
      });
    });

    describe('unsubscribe', () => {
      it('asks the hub to end the subscription; the application confirms it', async () => {
        const topic = world.hub.serveFeed('/feed');
        const record = await world.app.subscribe({ topic, hub: world.hub.url });
        await world.app.start();
        await stored(world, record.id, (found) => found.subscribeStatus === 'verified');
        await world.app.stop();

        const run = await world.run(['unsubscribe', record.id, '--json']);

        expect(run.code, run.stderr).to.equal(0);
        const [shown] = parseJson<RequestsOutput>(run).subscriptions;
        expect(['verifying', 'verified']).to.include(shown?.['unsubscribeStatus']);
        expect(world.hub.requests.map((request) => request.mode)).to.deep.equal([
          'subscribe',
          'unsubscribe',
        ]);
        await stored(world, record.id, (found) => found.unsubscribeStatus === 'verified');
        expect(world.hub.subscriptions()[0]?.state).to.equal('unsubscribed');
      });

      it('exits 1 and sends nothing when one of the ids is unknown', async () => {
        const record = await world.insert();

        const run = await world.run([
          'unsubscribe',
          record.id,
          'f0000000-0000-4000-8000-000000000000',
        ]);

        expect(run.code).to.equal(1);
        expect(run.stderr).to.contain(
          'No subscription with id f0000000-0000-4000-8000-000000000000',
        );
        expect(world.hub.requests).to.deep.equal([]);
        expect((await world.store.get(record.id))?.unsubscribeStatus).to.equal(null);
      });
    });

    describe('static-subscribe', () => {
      const declare = (declarations: Json[]) => ({
        WEBSUBSUB_TEST_STATIC: JSON.stringify(declarations),
      });

      it('exits 2 when the configuration declares no static subscriptions', async () => {
        const run = await world.run(['static-subscribe']);

        expect(run.code).to.equal(2);
        expect(run.stderr).to.contain('declares no staticSubscriptions');
      });

      it('creates what is missing, marked static, and re-subscribes it next run', async () => {
        const first = world.hub.topicUrl('/first');
        const second = world.hub.topicUrl('/second');
        const env = declare([
          { topic: first, hub: world.hub.url },
          { topic: second, hub: world.hub.url, handler: 'sports', leaseSeconds: 600 },
        ]);

        const created = await world.run(['static-subscribe', '--json'], env);
        expect(created.code, created.stderr).to.equal(0);
        const report = parseJson<StaticOutput>(created);
        expect(report.created).to.have.length(2);
        expect(report.resubscribed).to.deep.equal([]);
        expect(
          report.subscriptions.map((record) => [record['topic'], record['static']]),
        ).to.have.deep.members([
          [first, true],
          [second, true],
        ]);
        expect(world.hub.requests.map((request) => request.topic)).to.have.members([first, second]);
        expect(
          world.hub.requests.find((request) => request.topic === second)?.leaseSeconds,
        ).to.equal(600);
        for (const id of report.created) {
          await stored(world, id, (found) => found.subscribeStatus === 'verified');
        }

        const again = await world.run(['static-subscribe'], env);
        expect(again.code, again.stderr).to.equal(0);
        expect(again.stdout).to.contain(
          'Created 0, re-subscribed 2, skipped 0, purged 0, failed 0.',
        );
        expect(world.hub.requests).to.have.length(4);
        expect(await world.store.count()).to.equal(2);
      });

      it('keeps counters and skips denied records unless --reset-counters, --force', async () => {
        const counted = await world.insert({ static: true, hubErrors: 3, connectionErrors: 2 });
        const denied = await world.insert({
          static: true,
          subscribeStatus: 'denied',
          deniedReason: 'not allowed',
        });
        const env = declare([
          { topic: counted.topic, hub: counted.hub },
          { topic: denied.topic, hub: denied.hub },
        ]);

        const plain = parseJson<StaticOutput>(await world.run(['static-subscribe', '--json'], env));
        expect(plain.resubscribed).to.deep.equal([counted.id]);
        expect(plain.skipped).to.deep.equal([{ id: denied.id, reason: 'denied' }]);
        expect(await world.store.get(counted.id)).to.include({ hubErrors: 3, connectionErrors: 2 });
        expect((await world.store.get(denied.id))?.subscribeStatus).to.equal('denied');

        const forced = await world.run(
          ['static-subscribe', '--reset-counters', '--force', '--json'],
          env,
        );
        expect(forced.code, forced.stderr).to.equal(0);
        expect(parseJson<StaticOutput>(forced).resubscribed).to.have.members([
          counted.id,
          denied.id,
        ]);
        expect(await world.store.get(counted.id)).to.include({ hubErrors: 0, connectionErrors: 0 });
        await stored(world, denied.id, (found) => found.subscribeStatus === 'verified');
      });

      it('ends orphans only with --yes off a terminal: unsubscribed, then purged', async () => {
        const declared = await world.insert({ static: true });
        const held = await world.insert({ static: true });
        const lapsed = await world.insert({
          static: true,
          leaseExpiresAt: new Date(Date.now() - 1000),
        });
        const dynamic = await world.insert({ static: false });
        const env = declare([{ topic: declared.topic, hub: declared.hub }]);

        const refused = await world.run(['static-subscribe', '--purge-orphans'], env);
        expect(refused.code).to.equal(2);
        expect(refused.stderr).to.contain('pass --yes');
        expect(await world.store.count()).to.equal(4);
        expect(world.hub.requests).to.deep.equal([]);

        const args = ['static-subscribe', '--purge-orphans', '--yes', '--json'];
        const first = await world.run(args, env);
        expect(first.code, first.stderr).to.equal(0);
        const report = parseJson<StaticOutput>(first);
        expect(report.resubscribed).to.deep.equal([declared.id]);
        // The hub may still deliver to the one whose lease runs: it is told first.
        expect(report.purged).to.deep.equal([lapsed.id]);
        expect(report.unsubscribing).to.deep.equal([held.id]);
        expect(await world.store.get(lapsed.id)).to.equal(null);
        const ended = world.hub.requests.find((request) => request.mode === 'unsubscribe');
        expect(ended).to.include({ topic: held.topic, callback: held.callbackUrl });
        await stored(world, held.id, (found) => found.unsubscribeStatus === 'verified');

        const second = await world.run(args, env);
        expect(second.code, second.stderr).to.equal(0);
        expect(parseJson<StaticOutput>(second)).to.deep.include({
          purged: [held.id],
          unsubscribing: [],
        });
        expect(await world.store.get(held.id)).to.equal(null);
        expect(await world.store.get(dynamic.id)).not.to.equal(null);
      });

      it('exits 1 and reports declarations that could not be applied', async () => {
        const good = world.hub.topicUrl('/good');
        const env = declare([
          { topic: good, hub: world.hub.url },
          { topic: world.hub.topicUrl('/bad'), hub: world.hub.url, handler: 'retired' },
        ]);

        const run = await world.run(['static-subscribe'], env);

        expect(run.code).to.equal(1);
        expect(run.stdout).to.contain('Created 1, re-subscribed 0, skipped 0, purged 0, failed 1.');
        expect(run.stdout).to.contain(
          `failed       ${world.hub.topicUrl('/bad')}: No handler named retired`,
        );
        expect(world.hub.requests.map((request) => request.topic)).to.deep.equal([good]);
      });
    });

    describe('handle-url-changes', () => {
      it('re-subscribes only the records whose callback URL changed, at the new URL', async () => {
        const moved = await world.insert();
        await world.store.transition(moved.id, {
          set: { callbackUrl: `http://127.0.0.1:9/old-base/websub/news/${moved.id}` },
        });
        const current = await world.insert();

        const run = await world.run(['handle-url-changes', '--json']);

        expect(run.code, run.stderr).to.equal(0);
        const output = parseJson<RequestsOutput & { resubscribed: string[] }>(run);
        expect(output.resubscribed).to.deep.equal([moved.id]);
        expect(world.hub.requests).to.have.length(1);
        expect(world.hub.requests[0]?.callback).to.equal(`${world.origin}/websub/news/${moved.id}`);
        const fixed = await stored(
          world,
          moved.id,
          (found) => found.subscribeStatus === 'verified',
        );
        expect(fixed.callbackUrl).to.equal(`${world.origin}/websub/news/${moved.id}`);
        expect(await world.store.get(current.id)).to.deep.equal(current);

        const nothing = await world.run(['handle-url-changes']);
        expect(nothing.code).to.equal(0);
        expect(nothing.stdout).to.contain('Every callback URL is current.');
      });
    });
  },
);

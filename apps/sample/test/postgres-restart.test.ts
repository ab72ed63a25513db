import { randomUUID } from 'node:crypto';

import { skipUnlessCi } from '@websubsub/core/testing';
import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';
import pg from 'pg';

import { withUser } from '../src/roles.js';
import { freePort } from './helpers-cluster.js';
import { startSampleProcess } from './process.js';

const DATABASE_URL = withUser(process.env['DATABASE_URL'] ?? 'postgres://127.0.0.1:5432/test');

describe('sample app on PostgreSQL: subscriptions survive a restart', function () {
  this.timeout(60_000);
  const table = `websubsub_restart_${randomUUID().slice(0, 8)}`;
  let hub: TestHub;

  before(async function () {
    const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.end();
    } catch (error) {
      skipUnlessCi(this, `PostgreSQL at DATABASE_URL cannot be used (${(error as Error).message})`);
    }
    hub = await startTestHub({ verification: 'sync' });
  });

  after(async () => {
    await hub?.close();
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect().catch(() => undefined);
    await client
      .query(`DROP TABLE IF EXISTS "${table}", "${table}_notifications"`)
      .catch(() => undefined);
    await client.end().catch(() => undefined);
  });

  it('is still verified after a restart and still receives signed deliveries', async () => {
    const port = await freePort();
    const env = {
      PORT: String(port),
      SITE_URL: `http://127.0.0.1:${port}`,
      DATABASE_URL,
      WEBSUBSUB_POSTGRES_TABLE: table,
    };
    const api = `http://127.0.0.1:${port}`;
    const topic = hub.serveFeed('/restart/feed');

    const first = await startSampleProcess(env);
    expect(first.logs.some((entry) => String(entry['msg']).includes('PostgreSQL store'))).to.equal(
      true,
    );
    const created = await fetch(`${api}/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic, secret: 'restart-secret' }),
    });
    const { id } = (await created.json()) as { id: string };
    await hub.waitFor(() => hub.subscriptions().some((entry) => entry.state === 'active'), 10_000);
    expect(await first.stop()).to.equal(0);

    const second = await startSampleProcess(env);
    try {
      // The sweep on start may be renewing it (its lease ends within the renewal window).
      let record: Record<string, unknown> = {};
      for (let attempt = 0; attempt < 100; attempt++) {
        record = (await (await fetch(`${api}/subscriptions/${id}`)).json()) as typeof record;
        if (record['subscribeStatus'] === 'verified') break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(record['subscribeStatus']).to.equal('verified');
      expect(record['hasSecret']).to.equal(true);

      const [result] = await hub.publish(topic, { body: '<feed>after restart</feed>' });
      expect(result!.status).to.equal(202);
      let bodies: string[] = [];
      for (let attempt = 0; attempt < 100 && bodies.length === 0; attempt++) {
        const list = (await (await fetch(`${api}/notifications`)).json()) as Array<{
          body: string;
        }>;
        bodies = list.map((entry) => entry.body);
        if (bodies.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(bodies).to.deep.equal(['<feed>after restart</feed>']);
    } finally {
      expect(await second.stop()).to.equal(0);
    }
  });
});

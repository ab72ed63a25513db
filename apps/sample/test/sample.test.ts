import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';

import { silentLogger } from '@websubsub/core';
import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';
import pg from 'pg';

import { ConfigError } from '../src/config.js';
import { createSampleApp, readConfig, type SampleApp } from '../src/index.js';
import { withUser } from '../src/roles.js';
import { freePort } from './helpers-cluster.js';
import { discoveryDocument, notification } from './fixtures.js';
import { cleanUp, requireServers, startSample } from './servers.js';

async function until<T>(check: () => Promise<T | undefined>, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const REAL = {
  DATABASE_URL: withUser(process.env['DATABASE_URL'] ?? 'postgres://127.0.0.1:5432/test'),
  REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
};

for (const [setup, extraEnv] of [
  ['embedded defaults', {}],
  ['PostgreSQL store, Agenda on Redis, Redlock', REAL],
  [
    'PostgreSQL store and Agenda on PostgreSQL (WEBSUBSUB_QUEUE=agenda, no Redis)',
    { DATABASE_URL: REAL.DATABASE_URL, WEBSUBSUB_QUEUE: 'agenda' },
  ],
  [
    'PostgreSQL store, queue and locks (WEBSUBSUB_QUEUE=postgres, WEBSUBSUB_LOCK=postgres)',
    { DATABASE_URL: REAL.DATABASE_URL, WEBSUBSUB_QUEUE: 'postgres', WEBSUBSUB_LOCK: 'postgres' },
  ],
] as const)
  describe(`sample app on ${setup} against the test hub, over real sockets`, () => {
    let hub: TestHub;
    let sample: SampleApp;
    let api: string;

    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${api}${path}`, {
        method,
        ...(body === undefined
          ? {}
          : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, json: text ? JSON.parse(text) : null };
    };

    const verified = (id: string) =>
      until(async () => {
        const { json } = await call('GET', `/subscriptions/${id}`);
        return json.subscribeStatus === 'verified' ? json : undefined;
      }, `subscription ${id} to be verified`);

    const suffix = randomUUID().slice(0, 8);
    const isolation =
      'DATABASE_URL' in extraEnv
        ? {
            // Where the queue is not Agenda on Redis, a schema-qualified mixed-case name.
            WEBSUBSUB_POSTGRES_TABLE:
              'WEBSUBSUB_QUEUE' in extraEnv
                ? `public.Websubsub_E2E_${suffix}`
                : `websubsub_e2e_${suffix}`,
            WEBSUBSUB_REDIS_PREFIX: `websubsub-e2e-${suffix}:`,
          }
        : {};

    before(async function () {
      if ('DATABASE_URL' in extraEnv) await requireServers(this);
      hub = await startTestHub({ verification: 'sync' });
      const port = await freePort();
      const config = readConfig({
        PORT: String(port),
        SITE_URL: `http://127.0.0.1:${port}`,
        WEBSUBSUB_JOB_LOCK_LIFETIME: '5',
        ...extraEnv,
        ...isolation,
      });
      sample = await createSampleApp(config, silentLogger);
      await sample.listen();
      api = `http://127.0.0.1:${port}`;
    });

    after(async () => {
      await sample?.close();
      await hub?.close();
      if ('DATABASE_URL' in extraEnv) await cleanUp(isolation);
    });

    for (const name of ['link-headers-only', 'html-head-link', 'atom-feed', 'rss-atom-link']) {
      it(`discovers the hub of a real-world document (${name}) and is verified`, async () => {
        const selfUrl = hub.topicUrl(`/self/${name}`);
        const document = discoveryDocument(name, hub.url, selfUrl);
        const fetched = hub.serveTopic(`/${name}${document.path}`, {
          headers: document.headers,
          body: document.body,
        });

        const created = await call('POST', '/subscriptions', { topic: fetched });

        expect(created.status).to.equal(202);
        expect(created.json.hub).to.equal(hub.url);
        expect(created.json.topic).to.equal(selfUrl);
        expect(created.json.callbackUrl).to.equal(`${api}/websub/sample/${created.json.id}`);
        const done = await verified(created.json.id);
        expect(done.leaseExpiresAt).to.be.a('string');
        const request = hub.requests.find((entry) => entry.callback === created.json.callbackUrl);
        expect(request?.topic).to.equal(selfUrl);
        expect(request?.mode).to.equal('subscribe');
      });
    }

    /** The first delivery of a subscription that /notifications lists, once it does. */
    const shownFor = (id: string) =>
      until(async () => {
        const { json } = await call('GET', '/notifications');
        return json.find((entry: { subscriptionId: string }) => entry.subscriptionId === id);
      }, 'the delivery at /notifications');

    /** A verified subscription to a feed of the hub's, with a real fixture's secret. */
    const subscribedWithSecret = async (path: string) => {
      const fixture = notification('wordpress-atom-two-entries');
      const topic = hub.serveFeed(path, { body: '<feed/>', contentType: 'application/atom+xml' });
      const created = await call('POST', '/subscriptions', { topic, secret: fixture.secret });
      await verified(created.json.id);
      // The sample notes the verification before the hub has read its answer: wait for both.
      const active = (entry: { callback: string; state: string }) =>
        entry.callback === created.json.callbackUrl && entry.state === 'active';
      await hub.waitFor(() => hub.subscriptions().some(active));
      return { fixture, topic, created };
    };

    it('verifies within subscribing, then shows a signed delivery at /notifications', async () => {
      const { fixture, topic, created } = await subscribedWithSecret('/signed/feed');
      const verification = hub.verifications.find(
        (entry) => entry.callback === created.json.callbackUrl,
      );
      expect(verification?.confirmed).to.equal(true);

      const contentType = fixture.headers.find(
        ([name]) => name.toLowerCase() === 'content-type',
      )![1];
      const results = await hub.publish(topic, {
        body: fixture.body,
        contentType,
        algorithm: 'sha256',
      });
      expect(results.map((result) => result.status)).to.deep.equal([202]);

      const shown = await shownFor(created.json.id);
      expect(shown.body).to.equal(fixture.body.toString('utf8'));
      expect(shown.topic).to.equal(topic);
      expect(shown.contentType).to.equal(contentType);
      expect(Date.parse(shown.receivedAt)).to.be.a('number').and.not.NaN;
    });

    it('shows a compressed delivery inflated, signed over the bytes sent', async () => {
      const { fixture, topic, created } = await subscribedWithSecret('/gzip/feed');

      const results = await hub.publish(topic, {
        body: gzipSync(fixture.body),
        contentType: 'application/atom+xml',
        headers: { 'Content-Encoding': 'GZIP' },
        algorithm: 'sha256',
      });
      expect(results.map((result) => result.status)).to.deep.equal([202]);

      const shown = await shownFor(created.json.id);
      expect(shown.body).to.equal(fixture.body.toString('utf8'));
    });

    it('never shows a wrongly signed delivery', async () => {
      const topic = hub.serveFeed('/forged/feed', {
        body: '<feed/>',
        contentType: 'application/atom+xml',
      });
      const created = await call('POST', '/subscriptions', { topic, secret: 'shared-secret' });
      await verified(created.json.id);

      const forged = await hub.publish(topic, {
        body: '<feed>forged</feed>',
        signature: 'invalid',
      });
      const unsigned = await hub.publish(topic, {
        body: '<feed>unsigned</feed>',
        signature: 'none',
      });
      const genuine = await hub.publish(topic, { body: '<feed>genuine</feed>' });

      expect(forged[0]!.status).to.be.within(200, 299);
      expect(unsigned[0]!.status).to.equal(403);
      expect(genuine[0]!.status).to.equal(202);
      const shown = await until(async () => {
        const { json } = await call('GET', '/notifications');
        const mine = json.filter(
          (entry: { subscriptionId: string }) => entry.subscriptionId === created.json.id,
        );
        return mine.length > 0 ? mine : undefined;
      }, 'the genuine delivery');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const { json } = await call('GET', '/notifications');
      const bodies = json
        .filter((entry: { subscriptionId: string }) => entry.subscriptionId === created.json.id)
        .map((entry: { body: string }) => entry.body);
      expect(shown).to.have.length(1);
      expect(bodies).to.deep.equal(['<feed>genuine</feed>']);
    });

    it('lists, shows and unsubscribes through the JSON API', async () => {
      const topic = hub.serveFeed('/api/feed', {
        body: '<feed/>',
        contentType: 'application/atom+xml',
      });
      const created = await call('POST', '/subscriptions', { topic, leaseSeconds: 7200 });
      await verified(created.json.id);

      const list = await call('GET', '/subscriptions');
      expect(list.status).to.equal(200);
      expect(list.json.map((entry: { id: string }) => entry.id)).to.include(created.json.id);
      const one = await call('GET', `/subscriptions/${created.json.id}`);
      expect(one.json).to.include.keys(
        'id',
        'topic',
        'hub',
        'callbackUrl',
        'subscribeStatus',
        'unsubscribeStatus',
        'leaseExpiresAt',
        'createdAt',
      );
      expect(one.json).to.not.have.property('secret');
      expect(one.json.leaseSeconds).to.equal(7200);

      const removed = await call('DELETE', `/subscriptions/${created.json.id}`);
      expect(removed.status).to.equal(202);
      await until(async () => {
        const { json } = await call('GET', `/subscriptions/${created.json.id}`);
        return json.unsubscribeStatus === 'verified' ? json : undefined;
      }, 'the unsubscription to be verified');
      expect(
        hub.subscriptions().find((entry) => entry.callback === created.json.callbackUrl)?.state,
      ).to.equal('unsubscribed');
    });

    it('answers bad input or failed discovery 400 with an error, unknown ids 404', async () => {
      const notUrl = await call('POST', '/subscriptions', { topic: 'not a url' });
      expect(notUrl.status).to.equal(400);
      expect(notUrl.json.error.code).to.equal('invalid_input');
      expect(notUrl.json.error.message).to.be.a('string');

      const noHub = hub.serveTopic('/plain', {
        headers: { 'content-type': 'text/html' },
        body: '<p>hi</p>',
      });
      const undiscovered = await call('POST', '/subscriptions', { topic: noHub });
      expect(undiscovered.status).to.equal(400);
      expect(undiscovered.json.error.code).to.equal('no_hub');

      const missing = '00000000-0000-4000-8000-000000000000';
      expect((await call('GET', `/subscriptions/${missing}`)).status).to.equal(404);
      expect((await call('DELETE', `/subscriptions/${missing}`)).status).to.equal(404);
      expect((await call('POST', '/subscriptions', [1])).status).to.equal(400);
    });
  });

describe('sample app with WEBSUBSUB_BLOCK_PRIVATE_ADDRESSES=true', () => {
  let hub: TestHub;
  let sample: SampleApp;
  let api: string;

  before(async () => {
    hub = await startTestHub();
    ({ sample, api } = await startSample({ WEBSUBSUB_BLOCK_PRIVATE_ADDRESSES: 'true' }));
  });

  after(async () => {
    await sample?.close();
    await hub?.close();
  });

  for (const [name, body] of [
    ['a loopback topic to discover', () => ({ topic: hub.serveFeed('/private/feed') })],
    ['a loopback hub given outright', () => ({ topic: 'https://example.com/feed', hub: hub.url })],
    [
      'a host name that resolves to loopback',
      () => ({ topic: 'https://example.com/feed', hub: 'http://localhost:1/hub' }),
    ],
  ] as const) {
    it(`refuses ${name} with 400 blocked_address and sends nothing`, async () => {
      const response = await fetch(`${api}/subscriptions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body()),
      });
      const json = (await response.json()) as { error: { code: string; message: string } };
      expect(response.status).to.equal(400);
      expect(json.error.code).to.equal('blocked_address');
      expect(hub.requests).to.have.length(0);
      const list = (await (await fetch(`${api}/subscriptions`)).json()) as unknown[];
      expect(list).to.have.length(0);
    });
  }
});

describe('sample JSON API: malformed requests', () => {
  let sample: SampleApp;
  let api: string;

  before(async () => {
    const port = await freePort();
    sample = await createSampleApp(readConfig({ PORT: String(port) }), silentLogger);
    await sample.listen();
    api = `http://127.0.0.1:${port}`;
  });
  after(async () => sample?.close());

  for (const [name, contentType, body, status, code] of [
    ['malformed JSON', 'application/json', '{"topic": ', 400, 'invalid_input'],
    ['a JSON string', 'application/json', '"x"', 400, 'invalid_input'],
    ['JSON null', 'application/json', 'null', 400, 'invalid_input'],
    ['a plain-text body', 'text/plain', 'topic=x', 400, 'invalid_input'],
    [
      'a body over the parser limit',
      'application/json',
      `{"topic":"${'x'.repeat(2_000_000)}"}`,
      413,
      'too_large',
    ],
    [
      'a lease beyond 32 bits',
      'application/json',
      '{"topic":"https://a.example/","hub":"https://h.example/","leaseSeconds":3000000000}',
      400,
      'invalid_input',
    ],
    [
      'a NUL in the topic',
      'application/json',
      '{"topic":"https://a.example/\\u0000x","hub":"https://h.example/"}',
      400,
      'invalid_input',
    ],
  ] as const) {
    it(`answers ${name} with ${status} and the error shape`, async () => {
      const response = await fetch(`${api}/subscriptions`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
      expect(response.status).to.equal(status);
      const json = (await response.json()) as { error: { code: string; message: string } };
      expect(json.error.code).to.equal(code);
      expect(json.error.message).to.be.a('string');
    });
  }

  it('takes a content coding in any case, as HTTP says', async () => {
    const body = gzipSync('{"topic": "not a url"}');
    const response = await fetch(`${api}/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'GZIP' },
      body,
    });
    // Decompressed and read: the topic itself is what is refused.
    expect(response.status).to.equal(400);
    const json = (await response.json()) as { error: { code: string; message: string } };
    expect(json.error.message).to.match(/^topic is not an absolute URL/);
  });

  for (const encoding of ['gzip', 'deflate', 'br']) {
    it(`answers a ${encoding} body that does not decompress with 400 invalid_input`, async () => {
      const response = await fetch(`${api}/subscriptions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        body: '{"topic": "https://a.example/feed"} sent as is',
      });
      expect(response.status).to.equal(400);
      const json = (await response.json()) as { error: { code: string; message: string } };
      expect(json.error.code).to.equal('invalid_input');
      expect(json.error.message).to.contain(encoding);
    });
  }

  it('answers a Content-Encoding it cannot decode with 415, saying which it can', async () => {
    const response = await fetch(`${api}/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'zstd' },
      body: '{"topic": "https://a.example/feed"}',
    });
    expect(response.status).to.equal(415);
    const json = (await response.json()) as { error: { code: string; message: string } };
    expect(json.error.code).to.equal('invalid_input');
    expect(json.error.message).to.equal(
      'Unsupported Content-Encoding zstd: send the body as is, or in gzip, deflate or br',
    );
  });

  it('answers a topic or hub too long to store with 400 and stores nothing', async () => {
    const long = `https://a.example/${'x'.repeat(3000)}`;
    for (const input of [
      { topic: long, hub: 'https://h.example/' },
      { topic: 'https://a.example/', hub: long },
    ]) {
      const response = await fetch(`${api}/subscriptions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
      expect(response.status).to.equal(400);
      const json = (await response.json()) as { error: { code: string; message: string } };
      expect(json.error.code).to.equal('invalid_input');
      expect(json.error.message).to.match(/the longest (topic|hub) URL kept is/);
    }
    const list = (await (await fetch(`${api}/subscriptions`)).json()) as {
      topic: string;
      hub: string;
    }[];
    expect(list.filter(({ topic, hub }) => topic === long || hub === long)).to.deep.equal([]);
  });

  it('answers unknown paths and methods in the error shape too', async () => {
    const missing = await fetch(`${api}/nothing-here`);
    expect(missing.status).to.equal(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).to.equal(
      'not_found',
    );
    const wrongMethod = await fetch(`${api}/subscriptions`, { method: 'PUT' });
    expect(wrongMethod.status).to.equal(405);
    expect(((await wrongMethod.json()) as { error: { code: string } }).error.code).to.equal(
      'method_not_allowed',
    );
  });

  it('answers 404 for ids that are not UUIDs, whatever they hold', async () => {
    for (const id of ['%00', 'x'.repeat(5000), '..%2F..']) {
      expect((await fetch(`${api}/subscriptions/${id}`)).status).to.equal(404);
      expect((await fetch(`${api}/subscriptions/${id}`, { method: 'DELETE' })).status).to.equal(
        404,
      );
    }
  });
});

describe('sample configuration: yes/no values and timer intervals', () => {
  for (const [raw, value] of [
    ['true', true],
    ['TRUE', true],
    ['1', true],
    [' yes ', true],
    ['on', true],
    ['false', false],
    ['0', false],
    ['No', false],
    ['', false],
  ] as const) {
    it(`reads WEBSUBSUB_BLOCK_PRIVATE_ADDRESSES=${JSON.stringify(raw)} as ${value}`, () => {
      const config = readConfig({ WEBSUBSUB_BLOCK_PRIVATE_ADDRESSES: raw });
      expect(config.blockPrivateAddresses).to.equal(value);
    });
  }

  it('names WEBSUBSUB_POSTGRES_TABLE when the tables cannot be named after it', () => {
    for (const table of ['subs', 'Mixed_Case', 'app.subs', `${'t'.repeat(42)}`]) {
      expect(readConfig({ WEBSUBSUB_POSTGRES_TABLE: table }).postgresTable).to.equal(table);
    }
    for (const table of [
      'a-b',
      '1subs',
      'a.b.c',
      '"subs"',
      't'.repeat(43),
      'websubsub_migrations',
    ]) {
      expect(() => readConfig({ WEBSUBSUB_POSTGRES_TABLE: table }), table).to.throw(
        ConfigError,
        /^WEBSUBSUB_POSTGRES_TABLE must be a table name/,
      );
    }
  });

  it('names PORT when it is not a port number', () => {
    for (const port of ['99999', '-1', '80.5', 'http', '0x1F91', '1e3']) {
      expect(() => readConfig({ PORT: port }), port).to.throw(ConfigError, /^PORT must be/);
    }
    expect(() => readConfig({ PORT: '0' })).to.throw(ConfigError, /PORT=0 .* needs SITE_URL/);
    expect(readConfig({ PORT: '0', SITE_URL: 'https://subscriber.example' }).port).to.equal(0);
    expect(readConfig({ PORT: ' 8081 ' }).port).to.equal(8081);
  });

  it('refuses a yes/no value it cannot read rather than taking it as false', () => {
    expect(() => readConfig({ WEBSUBSUB_BLOCK_PRIVATE_ADDRESSES: 'ture' })).to.throw(
      ConfigError,
      /WEBSUBSUB_BLOCK_PRIVATE_ADDRESSES must be true or false, got "ture"/,
    );
  });

  it("names the variable when a count or a wait is out of the options' bounds", () => {
    expect(() => readConfig({ WEBSUBSUB_MAX_HUB_ERROR_RETRIES: '2000000' })).to.throw(
      ConfigError,
      /^WEBSUBSUB_MAX_HUB_ERROR_RETRIES must be a whole number from 0 to 1000000/,
    );
    expect(() => readConfig({ WEBSUBSUB_VERIFY_WAIT_TIME: '0.0001' })).to.throw(
      ConfigError,
      /^WEBSUBSUB_VERIFY_WAIT_TIME must be a number of seconds from 0.001/,
    );
  });

  it('refuses a renewal window or backoff cap beyond ten years', () => {
    for (const name of ['WEBSUBSUB_RENEW_BEFORE', 'WEBSUBSUB_RETRY_BACKOFF_MAX']) {
      expect(() => readConfig({ [name]: '1e300' })).to.throw(
        ConfigError,
        new RegExp(`${name} must be at most 315360000 seconds`),
      );
    }
  });

  it('refuses intervals and timeouts longer than a timer can wait (about 24.8 days)', () => {
    const month = String(30 * 86_400);
    expect(readConfig({ WEBSUBSUB_REFRESH_INTERVAL: '2147483' }).refreshInterval).to.equal(
      2_147_483,
    );
    for (const name of [
      'WEBSUBSUB_REFRESH_INTERVAL',
      'WEBSUBSUB_RETRY_INTERVAL',
      'WEBSUBSUB_HUB_TIMEOUT',
      'WEBSUBSUB_VERIFY_WAIT_TIME',
      'WEBSUBSUB_JOB_LOCK_LIFETIME',
    ]) {
      expect(() => readConfig({ [name]: month })).to.throw(
        ConfigError,
        new RegExp(`${name} must be at most 2147483 seconds`),
      );
    }
  });
});

describe('sample configuration: WEBSUBSUB_QUEUE', () => {
  const database = { DATABASE_URL: 'postgres://127.0.0.1:5432/test' };

  it('picks agenda with REDIS_URL, else memory, when not set', () => {
    expect(readConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).queue).to.equal('agenda');
    expect(readConfig(database).queue).to.equal('memory');
  });

  it('takes postgres with DATABASE_URL', () => {
    expect(readConfig({ ...database, WEBSUBSUB_QUEUE: 'postgres' }).queue).to.equal('postgres');
  });

  it('refuses postgres without DATABASE_URL, naming it', () => {
    expect(() => readConfig({ WEBSUBSUB_QUEUE: 'postgres' })).to.throw(
      ConfigError,
      /WEBSUBSUB_QUEUE=postgres needs DATABASE_URL/,
    );
  });

  it('refuses an unknown queue, naming the choices', () => {
    expect(() => readConfig({ ...database, WEBSUBSUB_QUEUE: 'rabbit' })).to.throw(
      ConfigError,
      /agenda, postgres or memory/,
    );
  });
});

describe('sample app on PostgreSQL alone (queue and locks too): its connections terminated', () => {
  const suffix = randomUUID().slice(0, 8);
  const names = { WEBSUBSUB_POSTGRES_TABLE: `websubsub_kill_${suffix}` };
  let sample: SampleApp | undefined;

  after(async () => {
    await sample?.close();
    await cleanUp(names);
  });

  it('keeps serving: no pool lets a failed idle connection end the process', async function () {
    await requireServers(this);
    const admin = new pg.Client({ connectionString: REAL.DATABASE_URL });
    await admin.connect();
    try {
      const pids = async () =>
        (
          await admin.query<{ pid: number }>(
            'SELECT pid FROM pg_stat_activity WHERE datname = current_database()',
          )
        ).rows.map((row) => row.pid);
      const before = new Set(await pids());

      let api: string;
      ({ sample, api } = await startSample({
        DATABASE_URL: REAL.DATABASE_URL,
        WEBSUBSUB_QUEUE: 'postgres',
        WEBSUBSUB_LOCK: 'postgres',
        ...names,
      }));
      // Every pool opens connections: the store, the queue, the locks, the notifications log.
      expect((await fetch(`${api}/subscriptions`)).status).to.equal(200);
      expect((await fetch(`${api}/notifications`)).status).to.equal(200);

      const theirs = (await pids()).filter((pid) => !before.has(pid));
      expect(theirs.length).to.be.at.least(3);
      await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [theirs]);
      await new Promise((resolve) => setTimeout(resolve, 300));

      expect((await fetch(`${api}/subscriptions`)).status).to.equal(200);
      expect((await fetch(`${api}/notifications`)).status).to.equal(200);
    } finally {
      await admin.end();
    }
  });
});

describe('sample configuration: WEBSUBSUB_LOCK', () => {
  it('picks redlock with REDIS_URL, else memory, when not set', () => {
    expect(readConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).lock).to.equal('redlock');
    expect(readConfig({ DATABASE_URL: 'postgres://127.0.0.1:5432/test' }).lock).to.equal('memory');
  });

  it('takes postgres with DATABASE_URL, and refuses it without', () => {
    const env = { DATABASE_URL: 'postgres://127.0.0.1:5432/test', WEBSUBSUB_LOCK: 'postgres' };
    expect(readConfig(env).lock).to.equal('postgres');
    expect(() => readConfig({ WEBSUBSUB_LOCK: 'postgres' })).to.throw(
      ConfigError,
      /WEBSUBSUB_LOCK=postgres needs DATABASE_URL/,
    );
  });

  it('refuses redlock without REDIS_URL and an unknown lock, naming the choices', () => {
    expect(() => readConfig({ WEBSUBSUB_LOCK: 'redlock' })).to.throw(ConfigError, /REDIS_URL/);
    expect(() => readConfig({ WEBSUBSUB_LOCK: 'zookeeper' })).to.throw(
      ConfigError,
      /redlock, postgres or memory/,
    );
  });
});

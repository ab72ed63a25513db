import { AdapterError, InvalidInputError, type Subscription } from '@websubsub/core';
import { makeSubscription } from '@websubsub/core/testing';
import { expect } from 'chai';
import pg from 'pg';

import { createPostgresStore, migrate, SCHEMA_VERSION, type PostgresStore } from '../src/index.js';
import {
  DATABASE_URL,
  describePostgres,
  randomName,
  toColumns,
  useTestSchema,
  type TestSchema,
} from './database.js';

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return expect.fail('expected the call to be rejected');
}

/** A connection string whose sessions start in the test schema. */
function inSchema(database: TestSchema): string {
  const url = new URL(DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${database.schema}`);
  return url.href;
}

async function seed(database: TestSchema, table: string, records: Subscription[]): Promise<void> {
  await database.pool.query(
    `INSERT INTO "${table}" SELECT * FROM json_populate_recordset(NULL::"${table}", $1)`,
    [JSON.stringify(records.map(toColumns))],
  );
}

describePostgres('PostgresStore', function () {
  const database = useTestSchema();
  const stores: PostgresStore[] = [];

  /** A store on a table of its own in the test schema, closed after the test. */
  function newStore(options: { table?: string; migrate?: boolean } = {}): PostgresStore {
    const store = createPostgresStore({
      pool: database.pool,
      table: randomName('subscriptions'),
      ...options,
    });
    stores.push(store);
    return store;
  }

  afterEach(async function () {
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  describe('migration', function () {
    it('creates table, indexes and version; changes nothing the second time', async function () {
      const table = randomName('subscriptions');
      const store = newStore({ table });

      expect(SCHEMA_VERSION).to.equal(3);
      expect(await store.migrate()).to.deep.equal({ table: `"${table}"`, from: 0, to: 3 });
      expect(await store.migrate()).to.deep.equal({ table: `"${table}"`, from: 3, to: 3 });

      const versions = await database.pool.query(
        'SELECT table_name, version FROM websubsub_migrations WHERE table_name = $1',
        [table],
      );
      expect(versions.rows).to.deep.equal([{ table_name: table, version: SCHEMA_VERSION }]);
      const indexes = await database.pool.query<{ indexname: string; indexdef: string }>(
        'SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2',
        [database.schema, table],
      );
      const definitions = Object.fromEntries(
        indexes.rows.map((row) => [row.indexname, row.indexdef]),
      );
      expect(Object.keys(definitions).sort()).to.deep.equal(
        [
          `${table}_handler_idx`,
          `${table}_key`,
          `${table}_lease_idx`,
          `${table}_pkey`,
          `${table}_retry_idx`,
        ].sort(),
      );
      expect(definitions[`${table}_key`]).to.match(/UNIQUE INDEX .* \(hub, topic, handler\)$/);
      expect(definitions[`${table}_lease_idx`]).to.match(
        /\(lease_expires_at\) WHERE .*subscribe_status = 'verified'.*unsubscribe_status IS NULL/,
      );
      expect(definitions[`${table}_retry_idx`]).to.match(
        /\(retry_at\) WHERE \(retry_at IS NOT NULL\)$/,
      );
    });

    it('creates a table again that was dropped by hand after its migration', async function () {
      const table = randomName('subscriptions');
      const store = newStore({ table });
      await store.migrate();
      await database.pool.query(`DROP TABLE "${table}"`);

      expect(await store.migrate()).to.deep.equal({ table: `"${table}"`, from: 0, to: 3 });
      const record = makeSubscription();
      await store.create(record);
      expect((await store.get(record.id))?.topic).to.equal(record.topic);
    });

    it('brings a version 1 table to the current version, its hubs kept as given', async () => {
      const table = randomName('subscriptions');
      const store = newStore({ table });
      await store.migrate();
      const record = makeSubscription({ hubDiscovered: true, secret: 'now' });
      await store.create(record);
      // Version 1 had none of the columns added since.
      await database.pool.query(
        `ALTER TABLE "${table}" DROP COLUMN hub_discovered, DROP COLUMN previous_secret,
          DROP COLUMN retired_callback_url`,
      );
      await database.pool.query(
        'UPDATE websubsub_migrations SET version = 1 WHERE table_name = $1',
        [table],
      );

      expect(await store.migrate()).to.deep.equal({ table: `"${table}"`, from: 1, to: 3 });
      const read = await store.get(record.id);
      expect(read).to.include({ hubDiscovered: false, secret: 'now', previousSecret: null });
      await store.transition(record.id, { set: { hubDiscovered: true, previousSecret: 'old' } });
      expect(await store.get(record.id)).to.include({ hubDiscovered: true, previousSecret: 'old' });
    });

    it('brings a version 2 table to version 3, no secret or callback change pending', async () => {
      const table = randomName('subscriptions');
      const store = newStore({ table });
      await store.migrate();
      const record = makeSubscription({ secret: 'now', previousSecret: 'before' });
      await store.create(record);
      await database.pool.query(
        `ALTER TABLE "${table}" DROP COLUMN previous_secret, DROP COLUMN retired_callback_url`,
      );
      await database.pool.query(
        'UPDATE websubsub_migrations SET version = 2 WHERE table_name = $1',
        [table],
      );

      expect(await store.migrate()).to.deep.equal({ table: `"${table}"`, from: 2, to: 3 });
      expect(await store.get(record.id)).to.include({
        secret: 'now',
        previousSecret: null,
        retiredCallbackUrl: null,
      });
    });

    it('stores dates as timestamptz and sorts ids by code unit', async function () {
      const table = randomName('subscriptions');
      await newStore({ table }).migrate();

      const columns = await database.pool.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns
          WHERE table_schema = $1 AND table_name = $2 AND column_name LIKE '%\\_at'`,
        [database.schema, table],
      );
      const collation = await database.pool.query<{ collation_name: string }>(
        `SELECT collation_name FROM information_schema.columns
          WHERE table_schema = $1 AND table_name = $2 AND column_name = 'id'`,
        [database.schema, table],
      );

      expect(columns.rows).to.have.length(6);
      for (const column of columns.rows)
        expect(column.data_type).to.equal('timestamp with time zone');
      expect(collation.rows[0]?.collation_name).to.equal('C');
    });

    it('runs before the first query unless told not to', async function () {
      const table = randomName('subscriptions');
      const unmigrated = newStore({ table, migrate: false });

      const error = await rejectionOf(unmigrated.get('x'));
      expect(error).to.be.instanceOf(AdapterError);
      expect((error as AdapterError).cause).to.have.property('code', '42P01');

      const store = newStore({ table });
      const record = makeSubscription();
      await store.create(record);
      expect(await unmigrated.get(record.id)).to.deep.equal(record);
    });

    it('lets eight instances starting at once migrate one table exactly once', async function () {
      const table = randomName('subscriptions');
      const pools = Array.from(
        { length: 8 },
        () => new pg.Pool({ connectionString: inSchema(database), max: 1 }),
      );

      try {
        const results = await Promise.all(
          pools.map((pool) => createPostgresStore({ pool, table }).migrate()),
        );

        expect(results.filter((result) => result.from === 0)).to.have.length(1);
        expect(results.every((result) => result.to === SCHEMA_VERSION)).to.equal(true);
      } finally {
        await Promise.all(pools.map((pool) => pool.end()));
      }
    });

    it('migrates different tables at once', async function () {
      const tables = Array.from({ length: 5 }, () => randomName('subscriptions'));

      const results = await Promise.all(tables.map((table) => newStore({ table }).migrate()));

      expect(results.map((result) => result.from)).to.deep.equal([0, 0, 0, 0, 0]);
    });

    it('can be run on its own with a connection string, as a deploy step would', async function () {
      const table = `${database.schema}.${randomName('subscriptions')}`;

      const first = await migrate({ connectionString: DATABASE_URL, table });
      const second = await migrate({ connectionString: DATABASE_URL, table });

      expect(first.from).to.equal(0);
      expect(second).to.deep.equal({ ...first, from: SCHEMA_VERSION });
      const store = createPostgresStore({ pool: database.pool, table, migrate: false });
      await store.create(makeSubscription());
      expect(await store.count()).to.equal(1);
    });

    it('refuses a table at a newer schema version than it knows', async function () {
      const table = randomName('subscriptions');
      await newStore({ table }).migrate();
      await database.pool.query(
        'UPDATE websubsub_migrations SET version = $1 WHERE table_name = $2',
        [SCHEMA_VERSION + 1, table],
      );

      const error = await rejectionOf(newStore({ table }).get('x'));

      expect(error).to.be.instanceOf(AdapterError);
      expect((error as Error).message).to.include('newer than');
    });

    it('uses the default table name on the search path', async function () {
      const store = newStore({ table: undefined });
      const record = makeSubscription();

      await store.create(record);

      const { rows } = await database.pool.query('SELECT id FROM websubsub_subscriptions');
      expect(rows).to.deep.equal([{ id: record.id }]);
    });
  });

  describe('options', function () {
    it('needs exactly one of pool and connectionString', function () {
      expect(() => createPostgresStore({})).to.throw(InvalidInputError);
      expect(() =>
        createPostgresStore({ pool: database.pool, connectionString: DATABASE_URL }),
      ).to.throw(InvalidInputError);
    });

    it('refuses table names that could not be used safely', function () {
      for (const table of [
        '',
        'subscriptions; DROP TABLE x',
        'a.b.c',
        '1subscriptions',
        'sub"scriptions',
        'sub-scriptions',
        'x'.repeat(49),
        'websubsub_migrations',
        'app.',
      ]) {
        expect(() => createPostgresStore({ pool: database.pool, table }), table).to.throw(
          InvalidInputError,
        );
      }
    });

    it('keeps the case of a mixed-case table name', async function () {
      const table = `Subscriptions_${randomName('T')}`;
      const store = newStore({ table });
      const record = makeSubscription();

      await store.create(record);

      const { rows } = await database.pool.query(`SELECT id FROM "${table}"`);
      expect(rows).to.deep.equal([{ id: record.id }]);
    });
  });

  describe('connections', function () {
    it('never ends a pool it was given', async function () {
      const store = newStore();
      await store.count();

      await store.close();

      expect(database.pool.ended).to.equal(false);
      expect((await database.pool.query('SELECT 1 AS one')).rows).to.deep.equal([{ one: 1 }]);
    });

    it('opens its own pool for a connection string and ends it on close', async function () {
      const store = createPostgresStore({
        connectionString: inSchema(database),
        table: randomName('subscriptions'),
      });
      const record = makeSubscription();
      await store.create(record);
      expect(await store.get(record.id)).to.deep.equal(record);

      await store.close();
      await store.close();

      const error = await rejectionOf(store.get(record.id));
      expect(error).to.be.instanceOf(AdapterError);
    });

    it('wraps a refused connection in AdapterError with the cause', async function () {
      const store = createPostgresStore({
        connectionString: 'postgres://websubsub@127.0.0.1:1/test',
      });

      const error = await rejectionOf(store.get('x'));
      await store.close();

      expect(error).to.be.instanceOf(AdapterError);
      expect(error).to.have.property('code', 'adapter_error');
      expect((error as AdapterError).cause).to.have.property('code', 'ECONNREFUSED');
    });

    it('lets exactly one transition win across two stores on two pools', async function () {
      const table = randomName('subscriptions');
      const other = createPostgresStore({ connectionString: inSchema(database), table });
      const store = newStore({ table });
      const record = makeSubscription({ subscribeStatus: 'verifying' });
      await store.create(record);

      try {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, attempt) =>
            (attempt % 2 === 0 ? store : other).transition(record.id, {
              when: { subscribeStatus: 'verifying' },
              set: { subscribeStatus: attempt % 2 === 0 ? 'verified' : 'denied' },
            }),
          ),
        );

        const winners = results.filter((result) => result !== null);
        expect(winners).to.have.length(1);
        expect((await store.get(record.id))?.subscribeStatus).to.equal(winners[0]?.subscribeStatus);
      } finally {
        await other.close();
      }
    });
  });

  describe('invalid input', function () {
    it('refuses page limits that are not positive integers', async function () {
      const store = newStore();

      for (const limit of [0, -1, 1.5, Number.NaN]) {
        const error = await rejectionOf(store.list({}, { limit }));
        expect(error, String(limit)).to.be.instanceOf(InvalidInputError);
      }
    });

    it('refuses unknown counters', async function () {
      const store = newStore();
      const record = makeSubscription();
      await store.create(record);

      const error = await rejectionOf(
        store.transition(record.id, { increment: { bogus: 1 } as never }),
      );

      expect(error).to.be.instanceOf(InvalidInputError);
    });

    it('wraps a constraint the database enforces in AdapterError', async function () {
      const store = newStore();

      const error = await rejectionOf(
        store.create(makeSubscription({ subscribeStatus: 'lost' as never })),
      );

      expect(error).to.be.instanceOf(AdapterError);
      expect((error as AdapterError).cause).to.have.property('code', '23514');
    });
  });

  describe('large sets', function () {
    it('reads one page of records at a time (query log over 10,000 records)', async function () {
      this.timeout(60_000);
      const table = randomName('subscriptions');
      const pool = new pg.Pool({ connectionString: inSchema(database), max: 2 });
      const log: Array<{ text: string; values: unknown[]; rows: number }> = [];
      type Statement = { text: string; values?: unknown[]; name?: string };
      const query = pool.query.bind(pool) as (statement: Statement) => Promise<pg.QueryResult>;
      // Record every statement the store sends and how many rows came back.
      (pool as unknown as { query: typeof query }).query = async (statement) => {
        const result = await query(statement);
        const { text, values = [] } = statement;
        log.push({ text, values, rows: result.rowCount ?? 0 });
        return result;
      };
      const store = createPostgresStore({ pool, table });
      const now = new Date('2030-01-01T00:00:00.000Z');

      try {
        await store.migrate();
        const records = Array.from({ length: 10_000 }, (_, index) =>
          makeSubscription({
            subscribeStatus: 'verified',
            leaseExpiresAt: new Date(now.getTime() + (index % 2 === 0 ? -1 - index : 1 + index)),
          }),
        );
        await seed(database, table, records);
        log.length = 0;

        const seen: string[] = [];
        let after: string | undefined;
        do {
          const page = await store.findLeasesEndingBefore(now, { after, limit: 250 });
          seen.push(...page.items.map((item) => item.id));
          after = page.next ?? undefined;
        } while (after !== undefined);

        expect(seen).to.have.length(5000);
        expect(new Set(seen).size).to.equal(5000);
        // One query for the due ids (ids only, found through the partial index), then one per
        // page reading at most a page of records.
        expect(log).to.have.length(21);
        const [ids, ...pages] = log;
        expect(ids!.text).to.match(/WITH due AS MATERIALIZED \(\s*SELECT id FROM/);
        expect(ids!.text).to.match(/SELECT id FROM due ORDER BY id\s*$/);
        expect(ids!.rows).to.equal(5000);
        for (const { text, values, rows } of pages) {
          expect(text).to.match(/id = ANY\(\$\d+::text\[\]\)/);
          expect(values[values.length - 1]).to.have.length.at.most(250);
          expect(rows).to.be.at.most(250);
        }
      } finally {
        await pool.end();
      }
    });
  });
});

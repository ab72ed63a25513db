import { AdapterError, InvalidInputError } from '@websubsub/core';
import { makeSubscription } from '@websubsub/core/testing';
import { expect } from 'chai';
import { MongoClient, type CommandStartedEvent } from 'mongodb';

import { createMongoStore, DEFAULT_COLLECTION, type MongoStore } from '../src/index.js';
import { describeMongo, MONGODB_URL, randomName, useTestDatabase } from './database.js';

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return expect.fail('expected the call to be rejected');
}

describe('MongoStore without a server', function () {
  it('needs exactly one of db and client', function () {
    const client = new MongoClient('mongodb://127.0.0.1:1/websubsub');

    expect(() => createMongoStore({})).to.throw(InvalidInputError);
    expect(() => createMongoStore({ client, db: client.db('websubsub') })).to.throw(
      InvalidInputError,
    );
  });

  it('uses the database of the client and the default collection', function () {
    const client = new MongoClient('mongodb://127.0.0.1:1/from_url');

    const fromUrl = createMongoStore({ client });
    const named = createMongoStore({ client, database: 'named', collection: 'subs' });

    expect(fromUrl.collection.dbName).to.equal('from_url');
    expect(fromUrl.collection.collectionName).to.equal(DEFAULT_COLLECTION);
    expect(named.collection.dbName).to.equal('named');
    expect(named.collection.collectionName).to.equal('subs');
  });

  it('wraps an unreachable server in AdapterError, the driver error as cause', async function () {
    // Port 1 on 127.0.0.1 refuses connections: the real driver, with nothing to reach.
    const client = new MongoClient('mongodb://127.0.0.1:1/websubsub', {
      serverSelectionTimeoutMS: 200,
    });
    const indexing = createMongoStore({ client });
    const reading = createMongoStore({ client, ensureIndexes: false });

    try {
      const indexError = await rejectionOf(indexing.get('x'));
      const readError = await rejectionOf(reading.get('x'));

      expect(indexError).to.be.instanceOf(AdapterError);
      expect((indexError as Error).message).to.include('creating the indexes');
      expect((indexError as AdapterError).cause).to.have.property(
        'name',
        'MongoServerSelectionError',
      );
      expect(readError).to.be.instanceOf(AdapterError);
      expect((readError as Error).message).to.include('get failed');
    } finally {
      await client.close();
    }
  });

  it('refuses bad page limits and unknown counters before calling the server', async function () {
    const client = new MongoClient('mongodb://127.0.0.1:1/websubsub', {
      serverSelectionTimeoutMS: 200,
    });
    const store = createMongoStore({ client, ensureIndexes: false });

    try {
      for (const limit of [0, -1, 1.5]) {
        expect(await rejectionOf(store.list({}, { limit })), String(limit)).to.be.instanceOf(
          InvalidInputError,
        );
      }
      const error = await rejectionOf(store.transition('x', { increment: { bogus: 1 } as never }));
      expect(error).to.be.instanceOf(InvalidInputError);
    } finally {
      await client.close();
    }
  });
});

describeMongo('MongoStore', function () {
  const database = useTestDatabase();
  const stores: MongoStore[] = [];

  function newStore(collection = randomName('subscriptions')): MongoStore {
    const store = createMongoStore({ db: database.db, collection });
    stores.push(store);
    return store;
  }

  afterEach(async function () {
    await Promise.all(stores.splice(0).map((store) => store.collection.drop().catch(() => false)));
  });

  it('creates its indexes idempotently, also from several instances at once', async function () {
    const collection = randomName('subscriptions');

    await Promise.all(Array.from({ length: 5 }, () => newStore(collection).ensureIndexes()));
    await newStore(collection).ensureIndexes();

    const indexes = await database.db.collection(collection).listIndexes().toArray();
    const byName = Object.fromEntries(indexes.map((index) => [index.name, index]));
    expect(Object.keys(byName).sort()).to.deep.equal(
      ['_id_', 'websubsub_handler', 'websubsub_key', 'websubsub_lease', 'websubsub_retry'].sort(),
    );
    expect(byName.websubsub_key?.key).to.deep.equal({ hub: 1, topic: 1, handler: 1 });
    expect(byName.websubsub_key?.unique).to.equal(true);
    expect(byName.websubsub_lease?.key).to.deep.equal({
      subscribeStatus: 1,
      unsubscribeStatus: 1,
      leaseExpiresAt: 1,
    });
    expect(byName.websubsub_retry?.key).to.deep.equal({ retryAt: 1 });
  });

  it('creates the indexes before its first operation', async function () {
    const store = newStore();

    await store.create(makeSubscription());

    const names = (await store.collection.listIndexes().toArray()).map((index) => index.name);
    expect(names).to.include('websubsub_key');
  });

  it('wraps a conflicting index of the same name in AdapterError', async function () {
    const collection = randomName('subscriptions');
    await database.db
      .collection(collection)
      .createIndex({ lastError: 1 }, { name: 'websubsub_retry' });

    const error = await rejectionOf(newStore(collection).ensureIndexes());

    expect(error).to.be.instanceOf(AdapterError);
  });

  it('stores the id as _id and dates as BSON dates', async function () {
    const store = newStore();
    const record = makeSubscription({ leaseExpiresAt: new Date('2027-01-01T00:00:00.123Z') });

    await store.create(record);

    const raw = await store.collection.findOne({ _id: record.id });
    expect(raw).to.not.have.property('id');
    expect(raw?.createdAt).to.be.instanceOf(Date);
    expect(raw?.leaseExpiresAt?.toISOString()).to.equal('2027-01-01T00:00:00.123Z');
  });

  it('never closes the client it was given', async function () {
    const store = newStore();

    await store.close();

    const ping = await database.client.db('admin').command({ ping: 1 });
    expect(ping.ok).to.equal(1);
  });

  it('asks the server for one page at a time (command log over 10,000 records)', async function () {
    this.timeout(60_000);
    const collection = randomName('subscriptions');
    const client = new MongoClient(MONGODB_URL ?? '', { monitorCommands: true });
    const finds: CommandStartedEvent[] = [];
    client.on('commandStarted', (event) => {
      if (event.commandName === 'find') finds.push(event);
    });
    const now = new Date('2030-01-01T00:00:00.000Z');

    try {
      await client.connect();
      const store = createMongoStore({ db: client.db(database.db.databaseName), collection });
      stores.push(store);
      await store.ensureIndexes();
      await store.collection.insertMany(
        Array.from({ length: 10_000 }, (_, index) => {
          const { id, ...fields } = makeSubscription({
            subscribeStatus: 'verified',
            leaseExpiresAt: new Date(now.getTime() + (index % 2 === 0 ? -1 - index : 1 + index)),
          });
          return { _id: id, ...fields };
        }),
      );

      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await store.findLeasesEndingBefore(now, { after, limit: 250 });
        seen.push(...page.items.map((item) => item.id));
        after = page.next ?? undefined;
      } while (after !== undefined);

      expect(seen).to.have.length(5000);
      expect(finds).to.have.length(20);
      for (const { command } of finds) expect(command.limit).to.equal(251);
    } finally {
      await client.close();
    }
  });
});

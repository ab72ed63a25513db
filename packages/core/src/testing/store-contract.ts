import { randomUUID } from 'node:crypto';

import { expect } from 'chai';

import type {
  Page,
  PageOptions,
  SubscriptionChanges,
  SubscriptionFilter,
  SubscriptionStore,
} from '../store.js';
import type { Subscription } from '../subscription.js';

/** One fresh, empty store handed to the contract for a single test, with a view around it. */
export interface StoreFixture {
  /** The store under test, over empty storage of its own. */
  store: SubscriptionStore;
  /**
   * The record as it really sits in storage (a row, a document), read without the store, or
   * `null` when there is none. Keys are matched to `Subscription` fields ignoring case and
   * underscores, so `lease_expires_at`, `leaseExpiresAt` and `_id` (for `id`) all do.
   */
  inspect(id: string): Promise<Record<string, unknown> | null>;
  /**
   * Write many records straight into storage, for the large paging test.
   * @default `store.create` in batches of 100
   */
  seed?(records: Subscription[]): Promise<void>;
  /** Drop the storage and release whatever the fixture opened. */
  teardown(): Promise<void>;
}

/** Builds the fixture of one test; called before every test of the contract. */
export type StoreFixtureSetup = () => Promise<StoreFixture>;

/**
 * A valid subscription with a random UUID id and a topic of its own, so that records made
 * this way never collide on (hub, topic, handler).
 */
export function makeSubscription(overrides: Partial<Subscription> = {}): Subscription {
  const id = overrides.id ?? randomUUID();

  return {
    id,
    topic: `https://feeds.example.com/${randomUUID()}.xml`,
    hub: 'https://hub.example.net/',
    handler: 'news',
    callbackUrl: `https://subscriber.example.org/websub/${id}`,
    retiredCallbackUrl: null,
    secret: null,
    previousSecret: null,
    leaseSeconds: null,
    leaseExpiresAt: null,
    subscribeStatus: 'requesting',
    unsubscribeStatus: null,
    connectionErrors: 0,
    hubErrors: 0,
    verifyTimeouts: 0,
    verifyErrors: 0,
    lastSubscribeAt: null,
    lastUnsubscribeAt: null,
    createdAt: new Date(),
    lastDeliveryAt: null,
    deniedReason: null,
    lastError: null,
    retryAt: null,
    static: false,
    discoveredFrom: null,
    hubDiscovered: false,
    ...overrides,
  };
}

/** A record with every optional field filled, to prove that each one is stored and read back. */
function makeFullSubscription(overrides: Partial<Subscription> = {}): Subscription {
  return makeSubscription({
    hub: 'https://pubsubhubbub.example.net/subscribe?tenant=a%20b&x=1',
    handler: 'status-feed',
    retiredCallbackUrl: 'http://old.example.org/websub/status-feed/9f1c',
    secret: 'sëcret "with" quotes, \\ and ünïcode',
    previousSecret: "the secret before, 'quoted'",
    leaseSeconds: 432_000,
    leaseExpiresAt: new Date('2027-03-01T08:15:30.123Z'),
    subscribeStatus: 'verified',
    unsubscribeStatus: 'verifyerror',
    connectionErrors: 3,
    hubErrors: 2,
    verifyTimeouts: 1,
    verifyErrors: 4,
    lastSubscribeAt: new Date('2027-02-24T08:15:29.001Z'),
    lastUnsubscribeAt: new Date('2027-02-25T00:00:00.999Z'),
    createdAt: new Date('2027-02-24T08:15:28.500Z'),
    lastDeliveryAt: new Date('2027-02-26T13:37:00.042Z'),
    deniedReason: 'topic moved',
    lastError: 'hub answered 503 Service Unavailable',
    retryAt: new Date('2027-02-27T00:00:00.000Z'),
    static: true,
    discoveredFrom: 'https://www.example.com/blog/',
    hubDiscovered: true,
    ...overrides,
  });
}

const normalKey = (key: string): string => key.replace(/_/g, '').toLowerCase();

/**
 * Checks that storage holds exactly `expected`: dates as dates, numbers as numbers, nulls as nulls.
 */
async function expectStored(fixture: StoreFixture, expected: Subscription): Promise<void> {
  const raw = await fixture.inspect(expected.id);
  expect(raw, `record ${expected.id} in storage`).to.not.equal(null);

  const stored = new Map(Object.entries(raw ?? {}).map(([key, value]) => [normalKey(key), value]));
  for (const [field, value] of Object.entries(expected)) {
    const key = normalKey(field);
    expect(stored.has(key), `storage has a ${field}`).to.equal(true);

    const actual = stored.get(key);
    if (value instanceof Date) {
      expect(actual, `${field} stored as a date`).to.be.instanceOf(Date);
      expect((actual as Date).getTime(), `${field} stored`).to.equal(value.getTime());
    } else {
      expect(actual, `${field} stored`).to.deep.equal(value);
    }
  }
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return expect.fail('expected the call to be rejected');
}

/**
 * Checks the error by name and code rather than `instanceof`, so that a store built against
 * another copy of core (a bundled CJS build, say) is judged by what it threw, not by where from.
 */
function expectDuplicate(error: unknown): void {
  expect(error).to.be.instanceOf(Error);
  expect(error).to.have.property('name', 'DuplicateSubscriptionError');
  expect(error).to.have.property('code', 'duplicate_subscription');
}

const idsOf = (records: Subscription[]): string[] => records.map((record) => record.id);
const sortedIds = (records: Subscription[]): string[] => idsOf(records).sort();

interface Sweep {
  ids: string[];
  pages: number;
}

/**
 * Follows `next` cursors to the end, checking every page on the way: no page over `limit`,
 * ids strictly ascending across pages, and an empty page only as the last one.
 */
async function sweep(fetch: (page: PageOptions) => Promise<Page>, limit: number): Promise<Sweep> {
  const ids: string[] = [];
  let after: string | undefined;
  let pages = 0;

  for (;;) {
    const page = await fetch(after === undefined ? { limit } : { after, limit });
    pages++;
    expect(page.items.length, `page ${pages} size`).to.be.at.most(limit);

    for (const item of page.items) {
      const previous = ids[ids.length - 1];
      if (previous !== undefined)
        expect(item.id > previous, `${item.id} after ${previous}`).to.be.true;
      ids.push(item.id);
    }

    if (page.next === null) return { ids, pages };
    expect(page.items, `page ${pages} has a next cursor, so it is not empty`).to.not.be.empty;
    expect(page.next).to.equal(page.items[page.items.length - 1]?.id);
    after = page.next;
    if (pages > 100_000) expect.fail('paging does not end');
  }
}

async function createAll(store: SubscriptionStore, records: Subscription[]): Promise<void> {
  for (let start = 0; start < records.length; start += 100) {
    await Promise.all(records.slice(start, start + 100).map((record) => store.create(record)));
  }
}

/**
 * The contract every `SubscriptionStore` passes, as mocha suites with chai assertions. Call it
 * inside a test file; `setup` gives each test a fresh, empty store. Wrap the call in a
 * `describe` whose `before` hook calls `this.skip()` to skip it when a server is missing.
 */
export function storeContract(name: string, setup: StoreFixtureSetup): void {
  describe(`${name}: SubscriptionStore contract`, function () {
    let fixture: StoreFixture | undefined;
    let store: SubscriptionStore;
    const current = (): StoreFixture => fixture ?? expect.fail('no fixture');

    beforeEach(async function () {
      fixture = await setup();
      store = fixture.store;
    });

    afterEach(async function () {
      const done = fixture;
      fixture = undefined;
      await done?.teardown();
    });

    describe('create and get', function () {
      it('finds nothing (no error) for lookups with characters no record has', async function () {
        const record = await store.create(makeSubscription());

        expect(await store.get('\u0000')).to.equal(null);
        expect(await store.findByKey(record.hub, `${record.topic}\u0000`, record.handler)).to.equal(
          null,
        );
        expect((await store.list({ topic: 'a\u0000b' })).items).to.deep.equal([]);
        expect(await store.count({ handler: '\u0000' })).to.equal(0);
      });

      it('stores every field and reads each back with its type', async function () {
        const full = makeFullSubscription();

        const created = await store.create(full);

        expect(created).to.deep.equal(full);
        expect(await store.get(full.id)).to.deep.equal(full);
        await expectStored(current(), full);
      });

      it('stores nulls as nulls, zero counters and a false flag', async function () {
        const bare = makeSubscription();

        await store.create(bare);

        const read = await store.get(bare.id);
        expect(read).to.deep.equal(bare);
        expect(read?.secret).to.equal(null);
        expect(read?.leaseExpiresAt).to.equal(null);
        expect(read?.static).to.equal(false);
        await expectStored(current(), bare);
      });

      it('keeps an empty previousSecret apart from null (it means "was unsigned")', async () => {
        const record = await store.create(makeSubscription({ secret: 's', previousSecret: '' }));

        expect((await store.get(record.id))?.previousSecret).to.equal('');
        await store.transition(record.id, { set: { previousSecret: null } });
        expect((await store.get(record.id))?.previousSecret).to.equal(null);
      });

      it('reads dates back as Date objects', async function () {
        const full = makeFullSubscription();
        await store.create(full);

        const read = await store.get(full.id);

        for (const field of [
          'leaseExpiresAt',
          'lastSubscribeAt',
          'lastUnsubscribeAt',
          'createdAt',
          'lastDeliveryAt',
          'retryAt',
        ] as const) {
          expect(read?.[field], field).to.be.instanceOf(Date);
          expect(read?.[field]?.getTime(), field).to.equal(full[field]?.getTime());
        }
      });

      it('answers null for an unknown id', async function () {
        await store.create(makeSubscription());

        expect(await store.get(randomUUID())).to.equal(null);
      });

      it('hands out copies that do not change what is stored', async function () {
        const record = makeFullSubscription();
        const created = await store.create(record);

        record.lastError = 'changed by the caller';
        created.hubErrors = 99;
        const read = await store.get(record.id);
        (read as Subscription).leaseExpiresAt?.setTime(0);

        const again = await store.get(record.id);
        expect(again?.lastError).to.equal('hub answered 503 Service Unavailable');
        expect(again?.hubErrors).to.equal(2);
        expect(again?.leaseExpiresAt?.toISOString()).to.equal('2027-03-01T08:15:30.123Z');
      });
    });

    describe('the unique key (hub, topic, handler)', function () {
      it('refuses a second record with the same key', async function () {
        const first = makeSubscription();
        await store.create(first);

        const error = await rejectionOf(
          store.create(makeSubscription({ ...first, id: randomUUID() })),
        );

        expectDuplicate(error);
        expect(await store.count()).to.equal(1);
        expect(await store.get(first.id)).to.deep.equal(first);
      });

      it('refuses a second record with the same id', async function () {
        const first = makeSubscription();
        await store.create(first);

        expectDuplicate(await rejectionOf(store.create(makeSubscription({ id: first.id }))));

        expect(await store.get(first.id)).to.deep.equal(first);
      });

      it('accepts records that differ in any one part of the key', async function () {
        const first = makeSubscription();
        await store.create(first);

        await store.create(makeSubscription({ hub: first.hub, handler: first.handler }));
        await store.create(
          makeSubscription({ topic: first.topic, hub: 'https://other-hub.example.com/' }),
        );
        await store.create(makeSubscription({ topic: first.topic, handler: 'alerts' }));

        expect(await store.count({ topic: first.topic })).to.equal(3);
        expect(await store.count()).to.equal(4);
      });

      it('finds a record by its key and by nothing less', async function () {
        const record = makeSubscription();
        await store.create(record);
        await store.create(makeSubscription({ topic: record.topic, handler: 'alerts' }));

        expect(await store.findByKey(record.hub, record.topic, record.handler)).to.deep.equal(
          record,
        );
        expect(await store.findByKey('https://hub.example.com/', record.topic, record.handler)).to
          .be.null;
        expect(await store.findByKey(record.hub, `${record.topic}?`, record.handler)).to.be.null;
        expect(await store.findByKey(record.hub, record.topic, 'other')).to.be.null;
      });
    });

    describe('transition', function () {
      it('sets fields, answers the updated record and stores it', async function () {
        const record = makeSubscription({ secret: 'old secret' });
        await store.create(record);
        const changes = {
          subscribeStatus: 'verified',
          leaseExpiresAt: new Date('2027-05-01T00:00:00.250Z'),
          leaseSeconds: 86_400,
          lastSubscribeAt: new Date('2027-04-30T23:59:59.000Z'),
          secret: null,
          static: true,
          discoveredFrom: 'https://www.example.org/',
        } satisfies SubscriptionChanges;

        const updated = await store.transition(record.id, { set: changes });

        const expected = { ...record, ...changes };
        expect(updated).to.deep.equal(expected);
        expect(await store.get(record.id)).to.deep.equal(expected);
        await expectStored(current(), expected);
      });

      it('applies when the subscribe status matches one value', async function () {
        const record = makeSubscription({ subscribeStatus: 'verifying' });
        await store.create(record);

        const updated = await store.transition(record.id, {
          when: { subscribeStatus: 'verifying' },
          set: { subscribeStatus: 'verified' },
        });

        expect(updated?.subscribeStatus).to.equal('verified');
        await expectStored(current(), { ...record, subscribeStatus: 'verified' });
      });

      it('does nothing and answers null when the condition fails', async function () {
        const record = makeSubscription({ subscribeStatus: 'verifying' });
        await store.create(record);

        const updated = await store.transition(record.id, {
          when: { subscribeStatus: 'requesting' },
          set: { subscribeStatus: 'verified', lastError: 'should not be written' },
          increment: { hubErrors: 1 },
        });

        expect(updated).to.equal(null);
        expect(await store.get(record.id)).to.deep.equal(record);
        await expectStored(current(), record);
      });

      it('applies when the subscribe status is any of several values', async function () {
        const record = makeSubscription({ subscribeStatus: 'huberror' });
        await store.create(record);

        const missed = await store.transition(record.id, {
          when: { subscribeStatus: ['requesting', 'connerror'] },
          set: { subscribeStatus: 'verifying' },
        });
        const hit = await store.transition(record.id, {
          when: { subscribeStatus: ['connerror', 'huberror'] },
          set: { subscribeStatus: 'verifying' },
        });

        expect(missed).to.equal(null);
        expect(hit?.subscribeStatus).to.equal('verifying');
      });

      it('matches nothing with an empty list of values', async function () {
        const record = makeSubscription();
        await store.create(record);

        const updated = await store.transition(record.id, {
          when: { subscribeStatus: [] },
          set: { lastError: 'should not be written' },
        });

        expect(updated).to.equal(null);
        expect((await store.get(record.id))?.lastError).to.equal(null);
      });

      it('matches a missing unsubscribe request with null', async function () {
        const quiet = makeSubscription({ subscribeStatus: 'verified' });
        const leaving = makeSubscription({
          subscribeStatus: 'verified',
          unsubscribeStatus: 'requesting',
        });
        await store.create(quiet);
        await store.create(leaving);
        const transition = {
          when: { unsubscribeStatus: null },
          set: { unsubscribeStatus: 'requesting' },
        } as const;

        expect((await store.transition(quiet.id, transition))?.unsubscribeStatus).to.equal(
          'requesting',
        );
        expect(await store.transition(leaving.id, transition)).to.equal(null);
        expect((await store.get(leaving.id))?.unsubscribeStatus).to.equal('requesting');
      });

      it('matches null among several unsubscribe values', async function () {
        const quiet = makeSubscription();
        const failed = makeSubscription({ unsubscribeStatus: 'connerror' });
        const verifying = makeSubscription({ unsubscribeStatus: 'verifying' });
        for (const record of [quiet, failed, verifying]) await store.create(record);
        const transition = {
          when: { unsubscribeStatus: [null, 'connerror'] },
          set: { unsubscribeStatus: 'requesting' },
        } as const;

        expect(await store.transition(quiet.id, transition)).to.not.equal(null);
        expect(await store.transition(failed.id, transition)).to.not.equal(null);
        expect(await store.transition(verifying.id, transition)).to.equal(null);
        expect((await store.get(verifying.id))?.unsubscribeStatus).to.equal('verifying');
      });

      it('matches a non-null unsubscribe status exactly', async function () {
        const record = makeSubscription({ unsubscribeStatus: 'verifying' });
        await store.create(record);

        expect(
          await store.transition(record.id, {
            when: { unsubscribeStatus: 'requesting' },
            set: { unsubscribeStatus: 'verified' },
          }),
        ).to.equal(null);
        expect(
          await store.transition(record.id, {
            when: { unsubscribeStatus: 'verifying' },
            set: { unsubscribeStatus: 'verified' },
          }),
        ).to.deep.equal({ ...record, unsubscribeStatus: 'verified' });
      });

      it('checks the topic and the handler', async function () {
        const record = makeSubscription({ handler: 'news' });
        await store.create(record);

        expect(
          await store.transition(record.id, {
            when: { topic: `${record.topic}x` },
            set: { hubErrors: 5 },
          }),
        ).to.equal(null);
        expect(
          await store.transition(record.id, { when: { handler: 'alerts' }, set: { hubErrors: 5 } }),
        ).to.equal(null);
        expect(
          await store.transition(record.id, {
            when: { topic: record.topic, handler: 'news' },
            set: { hubErrors: 5 },
          }),
        ).to.deep.equal({ ...record, hubErrors: 5 });
      });

      it('requires every condition given to hold', async function () {
        const record = makeSubscription({ subscribeStatus: 'verified', unsubscribeStatus: null });
        await store.create(record);

        const updated = await store.transition(record.id, {
          when: { subscribeStatus: 'verified', unsubscribeStatus: 'requesting' },
          set: { lastError: 'should not be written' },
        });

        expect(updated).to.equal(null);
        expect((await store.get(record.id))?.lastError).to.equal(null);
      });

      it('adds to counters, with or without fields to set', async function () {
        const record = makeSubscription({ hubErrors: 2, verifyErrors: 1 });
        await store.create(record);

        await store.transition(record.id, { increment: { hubErrors: 1 } });
        const updated = await store.transition(record.id, {
          set: { lastError: 'hub answered 500' },
          increment: { hubErrors: 2, connectionErrors: 1, verifyTimeouts: 3, verifyErrors: 1 },
        });

        const expected = {
          ...record,
          lastError: 'hub answered 500',
          hubErrors: 5,
          connectionErrors: 1,
          verifyTimeouts: 3,
          verifyErrors: 2,
        };
        expect(updated).to.deep.equal(expected);
        await expectStored(current(), expected);
      });

      it('loses no increment when 20 arrive at once', async function () {
        const record = makeSubscription();
        await store.create(record);

        const results = await Promise.all(
          Array.from({ length: 20 }, () =>
            store.transition(record.id, { increment: { connectionErrors: 1 } }),
          ),
        );

        expect(results.every((result) => result !== null)).to.equal(true);
        expect((await store.get(record.id))?.connectionErrors).to.equal(20);
      });

      it('lets exactly one of 20 concurrent transitions from one state win', async function () {
        const record = makeSubscription({ subscribeStatus: 'requesting' });
        await store.create(record);

        const results = await Promise.all(
          Array.from({ length: 20 }, (_, attempt) =>
            store.transition(record.id, {
              when: { subscribeStatus: 'requesting' },
              set: { subscribeStatus: 'verifying', lastError: `attempt ${attempt}` },
              increment: { hubErrors: 1 },
            }),
          ),
        );

        const winners = results.filter((result) => result !== null);
        expect(winners).to.have.length(1);
        const stored = await store.get(record.id);
        expect(stored?.lastError).to.equal(winners[0]?.lastError);
        expect(stored?.hubErrors).to.equal(1);
        await expectStored(current(), { ...record, ...winners[0] });
      });

      it('answers null for an unknown id and creates nothing', async function () {
        const id = randomUUID();

        const updated = await store.transition(id, {
          set: { lastError: 'x' },
          increment: { hubErrors: 1 },
        });

        expect(updated).to.equal(null);
        expect(await store.get(id)).to.equal(null);
        expect(await store.count()).to.equal(0);
      });

      it('answers the record unchanged for an empty transition', async function () {
        const record = makeSubscription({ subscribeStatus: 'verified' });
        await store.create(record);

        expect(await store.transition(record.id, {})).to.deep.equal(record);
        expect(
          await store.transition(record.id, { when: { subscribeStatus: 'verified' } }),
        ).to.deep.equal(record);
        expect(await store.transition(record.id, { when: { subscribeStatus: 'denied' } })).to.equal(
          null,
        );
        expect(await store.transition(randomUUID(), {})).to.equal(null);
      });

      it('never changes the id or the creation time', async function () {
        const record = makeSubscription({ createdAt: new Date('2026-06-01T00:00:00.000Z') });
        await store.create(record);
        const otherId = randomUUID();

        const updated = await store.transition(record.id, {
          set: { id: otherId, createdAt: new Date(0), lastError: 'x' } as SubscriptionChanges,
        });

        expect(updated).to.deep.equal({ ...record, lastError: 'x' });
        expect(await store.get(otherId)).to.equal(null);
        await expectStored(current(), { ...record, lastError: 'x' });
      });

      it('moves a record to a free key', async function () {
        const record = makeSubscription();
        await store.create(record);
        const topic = `${record.topic}?moved=1`;

        const updated = await store.transition(record.id, { set: { topic, handler: 'alerts' } });

        expect(updated).to.deep.equal({ ...record, topic, handler: 'alerts' });
        expect((await store.findByKey(record.hub, topic, 'alerts'))?.id).to.equal(record.id);
        expect(await store.findByKey(record.hub, record.topic, record.handler)).to.equal(null);
        await store.create(makeSubscription({ topic: record.topic }));
      });

      it('refuses to move a record onto the key of another', async function () {
        const first = makeSubscription();
        const second = makeSubscription({
          hub: 'https://other-hub.example.com/',
          handler: 'alerts',
        });
        await store.create(first);
        await store.create(second);

        const error = await rejectionOf(
          store.transition(second.id, {
            set: { hub: first.hub, topic: first.topic, handler: first.handler, lastError: 'x' },
          }),
        );

        expectDuplicate(error);
        expect(await store.get(second.id)).to.deep.equal(second);
        await expectStored(current(), second);
        expect((await store.findByKey(first.hub, first.topic, first.handler))?.id).to.equal(
          first.id,
        );
      });
    });

    describe('delete', function () {
      it('removes the record and frees its key', async function () {
        const record = makeSubscription();
        const other = makeSubscription();
        await store.create(record);
        await store.create(other);

        expect(await store.delete(record.id)).to.equal(true);

        expect(await store.get(record.id)).to.equal(null);
        expect(await current().inspect(record.id)).to.equal(null);
        expect(await store.findByKey(record.hub, record.topic, record.handler)).to.equal(null);
        expect(await store.transition(record.id, { set: { lastError: 'x' } })).to.equal(null);
        expect(await store.count()).to.equal(1);
        expect(await store.get(other.id)).to.deep.equal(other);
        await store.create(makeSubscription({ topic: record.topic }));
      });

      it('answers false when there was nothing to delete', async function () {
        const record = makeSubscription();
        await store.create(record);
        await store.delete(record.id);

        expect(await store.delete(record.id)).to.equal(false);
        expect(await store.delete(randomUUID())).to.equal(false);
      });
    });

    describe('list and count', function () {
      const hubA = 'https://hub.example.net/';
      const hubB = 'https://websub.example.com/hub';
      let a: Subscription;
      let b: Subscription;
      let c: Subscription;
      let d: Subscription;
      let e: Subscription;

      beforeEach(async function () {
        a = makeSubscription({
          handler: 'news',
          hub: hubA,
          subscribeStatus: 'verified',
          static: true,
        });
        b = makeSubscription({ handler: 'news', hub: hubB, subscribeStatus: 'requesting' });
        c = makeSubscription({
          handler: 'alerts',
          hub: hubA,
          subscribeStatus: 'verified',
          unsubscribeStatus: 'requesting',
        });
        d = makeSubscription({ handler: 'alerts', hub: hubA, subscribeStatus: 'denied' });
        e = makeSubscription({
          handler: 'news',
          hub: hubA,
          subscribeStatus: 'verified',
          unsubscribeStatus: 'verified',
        });
        await createAll(store, [a, b, c, d, e]);
      });

      const cases: Array<[string, () => SubscriptionFilter, () => Subscription[]]> = [
        ['no filter', () => ({}), () => [a, b, c, d, e]],
        ['handler', () => ({ handler: 'news' }), () => [a, b, e]],
        ['hub', () => ({ hub: hubB }), () => [b]],
        ['topic', () => ({ topic: c.topic }), () => [c]],
        ['one subscribe status', () => ({ subscribeStatus: 'verified' }), () => [a, c, e]],
        [
          'several subscribe statuses',
          () => ({ subscribeStatus: ['requesting', 'denied'] }),
          () => [b, d],
        ],
        ['no unsubscribe request', () => ({ unsubscribeStatus: null }), () => [a, b, d]],
        ['one unsubscribe status', () => ({ unsubscribeStatus: 'requesting' }), () => [c]],
        [
          'null among unsubscribe statuses',
          () => ({ unsubscribeStatus: [null, 'verified'] }),
          () => [a, b, d, e],
        ],
        ['static', () => ({ static: true }), () => [a]],
        ['not static', () => ({ static: false }), () => [b, c, d, e]],
        [
          'several fields at once',
          () => ({ handler: 'news', subscribeStatus: 'verified', unsubscribeStatus: null }),
          () => [a],
        ],
        ['a handler nobody has', () => ({ handler: 'nobody' }), () => []],
      ];

      for (const [title, filter, expected] of cases) {
        it(`filters by ${title}, in ascending id order, and counts alike`, async function () {
          const page = await store.list(filter(), { limit: 50 });

          expect(idsOf(page.items)).to.deep.equal(sortedIds(expected()));
          expect(page.next).to.equal(null);
          expect(await store.count(filter())).to.equal(expected().length);
        });
      }

      it('lists and counts everything without arguments', async function () {
        expect(idsOf((await store.list()).items)).to.deep.equal(sortedIds([a, b, c, d, e]));
        expect(await store.count()).to.equal(5);
      });

      it('returns whole records', async function () {
        const page = await store.list({ topic: e.topic });

        expect(page.items).to.deep.equal([e]);
      });
    });

    describe('paging', function () {
      it('pages through every record once, in ascending id order', async function () {
        const records = Array.from({ length: 25 }, () => makeSubscription());
        await createAll(store, records);

        const { ids, pages } = await sweep((page) => store.list({}, page), 7);

        expect(ids).to.deep.equal(sortedIds(records));
        expect(pages).to.equal(4);
      });

      it('pages through a filtered list without omissions', async function () {
        const records = Array.from({ length: 30 }, (_, index) =>
          makeSubscription({ handler: index % 3 === 0 ? 'alerts' : 'news' }),
        );
        await createAll(store, records);

        const { ids } = await sweep((page) => store.list({ handler: 'alerts' }, page), 4);

        expect(ids).to.deep.equal(
          sortedIds(records.filter((record) => record.handler === 'alerts')),
        );
      });

      it('starts after the cursor, whether or not it is a stored id', async function () {
        const records = Array.from({ length: 6 }, () => makeSubscription());
        await createAll(store, records);
        const ids = sortedIds(records);

        const fromStored = await store.list({}, { after: ids[1] });
        const fromBetween = await store.list({}, { after: `${ids[2]}-` });
        const fromLast = await store.list({}, { after: ids[5] });
        const fromEmpty = await store.list({}, { after: '' });

        expect(idsOf(fromStored.items)).to.deep.equal(ids.slice(2));
        expect(idsOf(fromBetween.items)).to.deep.equal(ids.slice(3));
        expect(fromLast).to.deep.equal({ items: [], next: null });
        expect(idsOf(fromEmpty.items)).to.deep.equal(ids);
      });

      it('orders ids by code unit, the same in every store', async function () {
        const ids = ['b', 'A', '~', 'a', '-', '0', '_', 'B', 'a-', 'aa'];
        await createAll(
          store,
          ids.map((id) => makeSubscription({ id })),
        );

        const { ids: listed } = await sweep((page) => store.list({}, page), 3);

        expect(listed).to.deep.equal(['-', '0', 'A', 'B', '_', 'a', 'a-', 'aa', 'b', '~']);
      });

      it('returns pages of 100 when no limit is given', async function () {
        const records = Array.from({ length: 130 }, () => makeSubscription());
        await createAll(store, records);

        const first = await store.list();
        const second = await store.list({}, { after: first.next ?? undefined });

        expect(first.items).to.have.length(100);
        expect(idsOf(first.items)).to.deep.equal(sortedIds(records).slice(0, 100));
        expect(idsOf(second.items)).to.deep.equal(sortedIds(records).slice(100));
        expect(second.next).to.equal(null);
      });
    });

    describe('findLeasesEndingBefore', function () {
      const before = new Date('2030-01-01T00:00:00.000Z');
      const at = (offset: number): Date => new Date(before.getTime() + offset);

      it('finds verified, not unsubscribing records whose lease ends earlier', async function () {
        const due = makeSubscription({ subscribeStatus: 'verified', leaseExpiresAt: at(-1) });
        const lapsed = makeSubscription({
          subscribeStatus: 'verified',
          leaseExpiresAt: new Date('2020-01-01T00:00:00.000Z'),
        });
        const excluded = [
          makeSubscription({ subscribeStatus: 'verified', leaseExpiresAt: at(0) }),
          makeSubscription({ subscribeStatus: 'verified', leaseExpiresAt: at(1) }),
          makeSubscription({ subscribeStatus: 'verified', leaseExpiresAt: null }),
          makeSubscription({
            subscribeStatus: 'verified',
            unsubscribeStatus: 'requesting',
            leaseExpiresAt: at(-1),
          }),
          makeSubscription({
            subscribeStatus: 'verified',
            unsubscribeStatus: 'verified',
            leaseExpiresAt: at(-1),
          }),
          makeSubscription({
            subscribeStatus: 'verified',
            unsubscribeStatus: 'connerror',
            leaseExpiresAt: at(-1),
          }),
          makeSubscription({ subscribeStatus: 'verifying', leaseExpiresAt: at(-1) }),
          makeSubscription({ subscribeStatus: 'requesting', leaseExpiresAt: at(-1) }),
          makeSubscription({ subscribeStatus: 'denied', leaseExpiresAt: at(-1) }),
          makeSubscription({ subscribeStatus: 'verifyerror', leaseExpiresAt: at(-1) }),
        ];
        await createAll(store, [due, lapsed, ...excluded]);

        const page = await store.findLeasesEndingBefore(before);

        expect(idsOf(page.items)).to.deep.equal(sortedIds([due, lapsed]));
        expect(page.next).to.equal(null);
        expect(page.items.find((item) => item.id === due.id)).to.deep.equal(due);
      });

      it('pages through them', async function () {
        const due = Array.from({ length: 9 }, (_, index) =>
          makeSubscription({
            subscribeStatus: 'verified',
            leaseExpiresAt: at(-1000 * (index + 1)),
          }),
        );
        const later = Array.from({ length: 9 }, () =>
          makeSubscription({ subscribeStatus: 'verified', leaseExpiresAt: at(60_000) }),
        );
        await createAll(store, [...due, ...later]);

        const { ids } = await sweep((page) => store.findLeasesEndingBefore(before, page), 2);

        expect(ids).to.deep.equal(sortedIds(due));
      });
    });

    describe('findDueForRetry', function () {
      const now = new Date('2030-01-01T00:00:00.000Z');
      const at = (offset: number): Date => new Date(now.getTime() + offset);

      it('finds records whose retry time has come, whatever their status', async function () {
        const due = [
          makeSubscription({ subscribeStatus: 'connerror', retryAt: at(-86_400_000) }),
          makeSubscription({ subscribeStatus: 'huberror', retryAt: at(0) }),
          makeSubscription({ subscribeStatus: 'verifying', retryAt: at(-1) }),
          makeSubscription({
            subscribeStatus: 'verified',
            unsubscribeStatus: 'connerror',
            retryAt: at(-1),
          }),
        ];
        const excluded = [
          makeSubscription({ subscribeStatus: 'connerror', retryAt: at(1) }),
          makeSubscription({ subscribeStatus: 'connerror', retryAt: null }),
          makeSubscription({ subscribeStatus: 'verified', retryAt: null }),
        ];
        await createAll(store, [...due, ...excluded]);

        const page = await store.findDueForRetry(now);

        expect(idsOf(page.items)).to.deep.equal(sortedIds(due));
        expect(page.next).to.equal(null);
        expect(page.items.find((item) => item.id === due[1]?.id)).to.deep.equal(due[1]);
      });

      it('pages through them', async function () {
        const due = Array.from({ length: 11 }, (_, index) =>
          makeSubscription({ subscribeStatus: 'connerror', retryAt: at(-index) }),
        );
        const later = Array.from({ length: 5 }, () =>
          makeSubscription({ subscribeStatus: 'connerror', retryAt: at(1000) }),
        );
        await createAll(store, [...later, ...due]);

        const { ids } = await sweep((page) => store.findDueForRetry(now, page), 3);

        expect(ids).to.deep.equal(sortedIds(due));
      });
    });

    describe('large sets', function () {
      it('sweeps 10,000 records through the upkeep queries page by page', async function () {
        this.timeout(120_000);
        const now = new Date('2030-01-01T00:00:00.000Z');
        const records = Array.from({ length: 10_000 }, (_, index) => {
          const kind = index % 4;
          return makeSubscription({
            handler: index % 2 === 0 ? 'news' : 'alerts',
            subscribeStatus: kind === 2 ? 'connerror' : kind === 3 ? 'requesting' : 'verified',
            leaseExpiresAt:
              kind === 0 ? new Date(now.getTime() - 1 - index) : new Date(now.getTime() + index),
            retryAt: kind === 2 ? new Date(now.getTime() - index) : null,
          });
        });
        const target = current();
        if (target.seed) await target.seed(records);
        else await createAll(store, records);
        expect(await store.count()).to.equal(10_000);

        const leases = await sweep((page) => store.findLeasesEndingBefore(now, page), 500);
        const retries = await sweep((page) => store.findDueForRetry(now, page), 500);
        const news = await sweep((page) => store.list({ handler: 'news' }, page), 1000);
        const all = await sweep((page) => store.list({}, page), 1000);

        const expected = (keep: (index: number) => boolean): string[] =>
          sortedIds(records.filter((_, index) => keep(index)));
        expect(leases.ids).to.deep.equal(expected((index) => index % 4 === 0));
        expect(leases.pages).to.be.within(5, 6);
        expect(retries.ids).to.deep.equal(expected((index) => index % 4 === 2));
        expect(retries.pages).to.be.within(5, 6);
        expect(news.ids).to.deep.equal(expected((index) => index % 2 === 0));
        expect(news.pages).to.be.within(5, 6);
        expect(all.ids).to.deep.equal(sortedIds(records));
        expect(all.pages).to.equal(10);
      });
    });
  });
}

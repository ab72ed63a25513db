import {
  AdapterError,
  DuplicateSubscriptionError,
  InvalidInputError,
  silentLogger,
  type Logger,
  type Match,
  type Page,
  type PageOptions,
  type Subscription,
  type SubscriptionChanges,
  type SubscriptionFilter,
  type SubscriptionStore,
  type Transition,
} from '@websubsub/core';
import pg from 'pg';

import { isUniqueViolation, messageOf } from './driver-errors.js';
import { adapterPool } from './pool.js';
import { Migrations, runMigrations, type MigrationResult } from './migrations.js';
import {
  COLUMNS,
  COUNTER_COLUMNS,
  FIELDS,
  SELECT_LIST,
  fromRow,
  type SubscriptionRow,
} from './rows.js';
import { tableNames, type TableNames } from './table-names.js';

/** Options of `createPostgresStore`. Give `pool` or `connectionString`. */
export interface PostgresStoreOptions {
  /** A pool of the application's. The store borrows connections from it and never ends it. */
  pool?: pg.Pool;
  /**
   * Where to connect when no pool is given; the store opens its own pool and ends it on `close()`.
   */
  connectionString?: string;
  /**
   * The subscriptions table, optionally schema-qualified (`app.subscriptions`). @default
   * 'websubsub_subscriptions'
   */
  table?: string;
  /**
   * Create or upgrade the table before the first query. Turn off when a deploy step runs `migrate`.
   * @default true
   */
  migrate?: boolean;
  /** Where the store reports migrations and failures of idle connections. @default silentLogger */
  logger?: Logger;
}

const DEFAULT_PAGE = 100;

/** Collects the parameters of one statement and hands out their placeholders. */
class Parameters {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * SQL for a `Match`: `null` becomes `IS NULL`, a list becomes `= ANY`, an empty list matches
 * nothing.
 */
function matchClause(params: Parameters, column: string, match: Match<string | null>): string {
  if (match === null) return `${column} IS NULL`;
  if (!Array.isArray(match)) return `${column} = ${params.add(match)}`;

  const values = (match as ReadonlyArray<string | null>).filter((value) => value !== null);
  const clauses: string[] = [];
  if (values.length > 0) clauses.push(`${column} = ANY(${params.add(values)}::text[])`);
  if (values.length < match.length) clauses.push(`${column} IS NULL`);
  return clauses.length === 0 ? 'FALSE' : `(${clauses.join(' OR ')})`;
}

function filterClauses(params: Parameters, filter: SubscriptionFilter): string[] {
  const clauses: string[] = [];
  if (filter.handler !== undefined) clauses.push(`handler = ${params.add(filter.handler)}`);
  if (filter.hub !== undefined) clauses.push(`hub = ${params.add(filter.hub)}`);
  if (filter.topic !== undefined) clauses.push(`topic = ${params.add(filter.topic)}`);
  if (filter.subscribeStatus !== undefined) {
    clauses.push(matchClause(params, 'subscribe_status', filter.subscribeStatus));
  }
  if (filter.unsubscribeStatus !== undefined) {
    clauses.push(matchClause(params, 'unsubscribe_status', filter.unsubscribeStatus));
  }
  if (filter.static !== undefined) clauses.push(`static = ${params.add(filter.static)}`);
  return clauses;
}

/** `SET` items for the fields given; `id`, `createdAt` and `undefined` values are left alone. */
function setClauses(params: Parameters, changes: SubscriptionChanges): string[] {
  const clauses: string[] = [];
  for (const [field, value] of Object.entries(changes)) {
    if (value === undefined || field === 'id' || field === 'createdAt') continue;
    if (!Object.hasOwn(COLUMNS, field)) continue;
    clauses.push(`${COLUMNS[field as keyof Subscription]} = ${params.add(value)}`);
  }
  return clauses;
}

function incrementClauses(params: Parameters, increment: Transition['increment']): string[] {
  const clauses: string[] = [];
  for (const [counter, by] of Object.entries(increment ?? {})) {
    if (by === undefined) continue;
    if (!Object.hasOwn(COUNTER_COLUMNS, counter)) {
      throw new InvalidInputError(`Unknown counter ${JSON.stringify(counter)}`);
    }
    if (!Number.isSafeInteger(by)) {
      throw new InvalidInputError(`Counter ${counter} must be incremented by an integer`);
    }
    const column = COUNTER_COLUMNS[counter as keyof typeof COUNTER_COLUMNS];
    clauses.push(`${column} = ${column} + ${params.add(by)}`);
  }
  return clauses;
}

const where = (clauses: string[]): string =>
  clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`;

function pageLimit(page: PageOptions): number {
  const limit = page.limit ?? DEFAULT_PAGE;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new InvalidInputError(`A page limit must be a positive integer, not ${limit}`);
  }
  return limit;
}

/**
 * A `SubscriptionStore` in one PostgreSQL table. Every change is a single conditional
 * `UPDATE ... WHERE`, so concurrent transitions of a record serialise on its row lock and
 * only those whose condition still holds afterwards apply. Create it with `createPostgresStore`.
 */
export class PostgresStore implements SubscriptionStore {
  /** The table, quoted and qualified as given. */
  readonly table: string;
  private readonly names: TableNames;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly logger: Logger;
  private readonly migrations: Migrations;
  private closed = false;
  /** The due ids of the sweep under way, kept between its pages. */
  private dueIds: { key: string; ids: string[] } | null = null;

  constructor(options: PostgresStoreOptions) {
    this.names = tableNames(options.table);
    this.table = this.names.table;
    this.logger = options.logger ?? silentLogger;
    this.migrations = new Migrations(
      () => runMigrations(this.pool, this.names, this.logger),
      options.migrate ?? true,
    );
    ({ pool: this.pool, ownsPool: this.ownsPool } = adapterPool(
      'The Postgres store',
      options,
      this.logger,
      this.table,
    ));
  }

  /** Create or upgrade the table now rather than before the first query. */
  migrate(): Promise<MigrationResult> {
    return this.migrations.apply();
  }

  async create(subscription: Subscription): Promise<Subscription> {
    const params = new Parameters();
    const placeholders = FIELDS.map((field) => params.add(subscription[field]));

    const { rows } = await this.execute(
      'create',
      `INSERT INTO ${this.table} (${SELECT_LIST}) VALUES (${placeholders.join(', ')})
        RETURNING ${SELECT_LIST}`,
      params.values,
      async () =>
        new DuplicateSubscriptionError(subscription.hub, subscription.topic, subscription.handler),
    );

    return fromRow(rows[0] as SubscriptionRow);
  }

  async get(id: string): Promise<Subscription | null> {
    if (hasNul(id)) return null;
    // Read on every delivery: prepared once per connection rather than parsed every time.
    const { rows } = await this.execute(
      'get',
      {
        name: `websubsub get ${this.table}`,
        text: `SELECT ${SELECT_LIST} FROM ${this.table} WHERE id = $1`,
      },
      [id],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async findByKey(hub: string, topic: string, handler: string): Promise<Subscription | null> {
    if (hasNul(hub, topic, handler)) return null;
    const { rows } = await this.execute(
      'findByKey',
      `SELECT ${SELECT_LIST} FROM ${this.table} WHERE hub = $1 AND topic = $2 AND handler = $3`,
      [hub, topic, handler],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async transition(id: string, transition: Transition): Promise<Subscription | null> {
    const params = new Parameters();
    const conditions = [`id = ${params.add(id)}`, ...filterClauses(params, transition.when ?? {})];
    const changes = [
      ...setClauses(params, transition.set ?? {}),
      ...incrementClauses(params, transition.increment),
    ];

    // Nothing to change: answer the record if the condition holds, as an update would.
    const text =
      changes.length === 0
        ? `SELECT ${SELECT_LIST} FROM ${this.table} ${where(conditions)}`
        : `UPDATE ${this.table} SET ${changes.join(', ')} ${where(conditions)}
            RETURNING ${SELECT_LIST}`;
    const { rows } = await this.execute('transition', text, params.values, () =>
      this.duplicateOf(id, transition.set ?? {}),
    );

    return rows[0] ? fromRow(rows[0]) : null;
  }

  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.execute('delete', `DELETE FROM ${this.table} WHERE id = $1`, [
      id,
    ]);
    return (rowCount ?? 0) > 0;
  }

  async list(filter: SubscriptionFilter = {}, page: PageOptions = {}): Promise<Page> {
    if (hasNul(filter.handler, filter.hub, filter.topic)) return { items: [], next: null };
    const params = new Parameters();
    return this.page('list', params, filterClauses(params, filter), page);
  }

  async findLeasesEndingBefore(before: Date, page: PageOptions = {}): Promise<Page> {
    // The same predicate as the partial lease index, so that the planner can use it.
    const conditions = (params: Parameters) => [
      `subscribe_status = 'verified'`,
      'unsubscribe_status IS NULL',
      'lease_expires_at IS NOT NULL',
      `lease_expires_at < ${params.add(before)}`,
    ];
    return this.duePage('findLeasesEndingBefore', before, conditions, page);
  }

  async findDueForRetry(now: Date, page: PageOptions = {}): Promise<Page> {
    const conditions = (params: Parameters) => [`retry_at <= ${params.add(now)}`];
    return this.duePage('findDueForRetry', now, conditions, page);
  }

  async count(filter: SubscriptionFilter = {}): Promise<number> {
    if (hasNul(filter.handler, filter.hub, filter.topic)) return 0;
    const params = new Parameters();
    const conditions = filterClauses(params, filter);

    const { rows } = await this.execute<{ count: string }>(
      'count',
      `SELECT count(*) AS count FROM ${this.table} ${where(conditions)}`,
      params.values,
    );
    return Number(rows[0]?.count ?? 0);
  }

  /** End the pool opened for `connectionString`; a pool passed in is left open. */
  async close(): Promise<void> {
    if (!this.ownsPool || this.closed) return;

    this.closed = true;
    await this.pool.end();
  }

  /** One page in id order; asks for one row more than the page to know whether another follows. */
  private async page(
    operation: string,
    params: Parameters,
    conditions: string[],
    page: PageOptions,
  ): Promise<Page> {
    const limit = pageLimit(page);
    if (page.after !== undefined) conditions.push(`id > ${params.add(page.after)}`);

    const { rows } = await this.execute(
      operation,
      `SELECT ${SELECT_LIST} FROM ${this.table} ${where(conditions)}
        ORDER BY id LIMIT ${params.add(limit + 1)}`,
      params.values,
    );
    const items = rows.slice(0, limit).map(fromRow);
    const last = items[items.length - 1];
    return { items, next: rows.length > limit && last ? last.id : null };
  }

  /**
   * One page of an upkeep query. The first page finds every due id through the partial upkeep
   * index (a materialised CTE, so the planner cannot walk the primary key filtering the whole
   * table) and keeps the sorted list; the pages after it read their rows by id from that list,
   * checking the condition again, so a sweep costs its due records, not the table, and not the
   * due records once per page.
   */
  private async duePage(
    operation: string,
    at: Date,
    conditions: (params: Parameters) => string[],
    page: PageOptions,
  ): Promise<Page> {
    const limit = pageLimit(page);
    const key = `${operation}:${at.toISOString()}`;

    let ids: string[];
    if (page.after !== undefined && this.dueIds?.key === key) {
      ids = this.dueIds.ids;
    } else {
      const params = new Parameters();
      const { rows } = await this.execute<{ id: string }>(
        operation,
        `WITH due AS MATERIALIZED (
           SELECT id FROM ${this.table} ${where(conditions(params))}
         ) SELECT id FROM due ORDER BY id`,
        params.values,
      );
      ids = rows.map((row) => row.id);
      this.dueIds = { key, ids };
    }

    const items: Subscription[] = [];
    let position = page.after === undefined ? 0 : firstAfter(ids, page.after);
    while (items.length < limit && position < ids.length) {
      const slice = ids.slice(position, position + limit - items.length);
      position += slice.length;

      const params = new Parameters();
      const clauses = [...conditions(params), `id = ANY(${params.add(slice)}::text[])`];
      const { rows } = await this.execute(
        operation,
        `SELECT ${SELECT_LIST} FROM ${this.table} ${where(clauses)} ORDER BY id`,
        params.values,
      );
      items.push(...rows.map(fromRow));
    }

    const last = items[items.length - 1];
    return { items, next: position < ids.length && last ? last.id : null };
  }

  /** Names the key a transition collided on, from the changes and the record as it stands. */
  private async duplicateOf(
    id: string,
    changes: SubscriptionChanges,
  ): Promise<DuplicateSubscriptionError> {
    const current = await this.get(id).catch(() => null);
    return new DuplicateSubscriptionError(
      changes.hub ?? current?.hub ?? '',
      changes.topic ?? current?.topic ?? '',
      changes.handler ?? current?.handler ?? '',
    );
  }

  /**
   * Run one statement after the migration; unique violations become `duplicate()`, the rest
   * `AdapterError`.
   */
  private async execute<Row extends pg.QueryResultRow = SubscriptionRow>(
    operation: string,
    statement: string | { name: string; text: string },
    values: unknown[],
    duplicate?: () => Promise<DuplicateSubscriptionError>,
  ): Promise<pg.QueryResult<Row>> {
    await this.migrations.ready();

    try {
      return await this.pool.query<Row>(
        typeof statement === 'string' ? { text: statement, values } : { ...statement, values },
      );
    } catch (error) {
      if (duplicate && isUniqueViolation(error)) throw await duplicate();
      throw new AdapterError('postgres', `${operation} failed: ${messageOf(error)}`, error);
    }
  }
}

/** Create a subscription store over PostgreSQL. */
export function createPostgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options);
}

/** PostgreSQL text cannot hold NUL: no stored value has one, so a lookup with one finds nothing. */
function hasNul(...values: Array<string | undefined>): boolean {
  return values.some((value) => typeof value === 'string' && value.includes('\u0000'));
}

/** Index of the first id after `after` in ids sorted by code unit (the column's "C" order). */
function firstAfter(sorted: string[], after: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] as string) <= after) low = middle + 1;
    else high = middle;
  }
  return low;
}

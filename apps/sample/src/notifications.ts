import { createHash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync, inflateSync, type ZlibOptions } from 'node:zlib';

import type { Notification } from '@websubsub/core';
import type pg from 'pg';

/** A received notification as `GET /notifications` shows it. */
export interface NotificationEntry {
  subscriptionId: string;
  topic: string;
  contentType: string | null;
  body: string;
  receivedAt: string;
}

/** Where the sample's handler keeps what it received, for `GET /notifications`. */
export interface NotificationLog {
  /** Remember one notification; the same delivery handled twice is kept once. */
  add(notification: Notification): Promise<NotificationEntry>;
  /** The kept notifications, newest first. */
  newestFirst(): Promise<NotificationEntry[]>;
  /** Where the log lives, for the startup log line. */
  readonly description: string;
}

/** The most a compressed delivery is inflated to for display. */
const MAX_INFLATED_BYTES = 10 * 1024 * 1024;

const DECODERS: Record<string, (body: Buffer, options: ZlibOptions) => Buffer> = {
  gzip: gunzipSync,
  'x-gzip': gunzipSync,
  deflate: inflateSync,
  br: brotliDecompressSync,
};

/**
 * The body as text. Core hands on the bytes as the hub signed them, compressed if the hub sent
 * them so: those are shown inflated; a body that does not inflate is shown as it came.
 */
function bodyText(notification: Notification): string {
  const coding = notification.headers['content-encoding']?.trim().toLowerCase();
  const decode = coding === undefined ? undefined : DECODERS[coding];
  if (decode === undefined) return notification.body.toString('utf8');
  try {
    return decode(notification.body, { maxOutputLength: MAX_INFLATED_BYTES }).toString('utf8');
  } catch {
    return notification.body.toString('utf8');
  }
}

function entryOf(notification: Notification): NotificationEntry {
  return {
    subscriptionId: notification.subscription.id,
    topic: notification.topic,
    contentType: notification.contentType,
    body: bodyText(notification),
    receivedAt: notification.receivedAt.toISOString(),
  };
}

/** The last notifications, in this process's memory. */
export class MemoryNotificationLog implements NotificationLog {
  readonly description = 'in memory (this instance only)';
  private readonly entries: NotificationEntry[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly kept: number) {}

  async add(notification: Notification): Promise<NotificationEntry> {
    const entry = entryOf(notification);
    const key = deliveryKey(notification);
    if (this.seen.has(key)) return entry;

    this.seen.add(key);
    this.entries.push(entry);
    if (this.entries.length > this.kept) {
      this.entries.splice(0, this.entries.length - this.kept);
    }
    if (this.seen.size > this.kept * 2) this.seen.clear();
    return entry;
  }

  async newestFirst(): Promise<NotificationEntry[]> {
    return [...this.entries].reverse();
  }
}

/** One delivery: its subscription, when the callback accepted it, and its bytes. */
function deliveryKey(notification: Notification): string {
  const digest = createHash('sha256').update(notification.body).digest('hex');
  return `${notification.subscription.id}:${notification.receivedAt.toISOString()}:${digest}`;
}

/** How many adds an instance makes between two cuts of the notifications table. */
const PRUNE_EVERY = 100;

/** `name` or `schema.name`, each part quoted (both checked to hold no quote). */
const quoted = (table: string): string =>
  table
    .split('.')
    .map((part) => `"${part}"`)
    .join('.');

/**
 * Notifications in a PostgreSQL table, so every instance of the sample shows the same list and
 * a delivery handled twice (a worker died before its job was marked done) is listed once. The
 * table keeps about the newest `kept`: every hundredth add of an instance deletes the rest.
 */
export class PostgresNotificationLog implements NotificationLog {
  readonly description: string;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly table: string,
    private readonly kept: number,
  ) {
    this.description = `PostgreSQL table ${table} (shared by every instance)`;
  }

  /** Adds since the table was last cut down to the newest `kept` rows. */
  private addsSincePrune = 0;

  /** Create the table when missing. */
  static async open(pool: pg.Pool, table: string, kept: number): Promise<PostgresNotificationLog> {
    const name = /^(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$/;
    if (!name.test(table)) throw new Error(`Invalid table name ${table}`);
    // Instances starting together would race CREATE TABLE IF NOT EXISTS: serialise them.
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`websubsub:${table}`]);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${quoted(table)} (
          delivery_key text PRIMARY KEY,
          subscription_id text NOT NULL,
          topic text NOT NULL,
          content_type text,
          body text NOT NULL,
          received_at timestamptz NOT NULL,
          stored_at timestamptz NOT NULL DEFAULT now()
        )`);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    return new PostgresNotificationLog(pool, table, kept);
  }

  async add(notification: Notification): Promise<NotificationEntry> {
    const entry = entryOf(notification);
    await this.pool.query(
      `INSERT INTO ${quoted(this.table)}
         (delivery_key, subscription_id, topic, content_type, body, received_at)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (delivery_key) DO NOTHING`,
      [
        deliveryKey(notification),
        entry.subscriptionId,
        entry.topic,
        entry.contentType,
        entry.body.replace(/\u0000/g, '\uFFFD'),
        notification.receivedAt,
      ],
    );
    // Cut the table down now and then, not on every add: it holds at most `kept` plus what
    // each instance added since its last cut.
    if (++this.addsSincePrune >= PRUNE_EVERY) {
      this.addsSincePrune = 0;
      await this.prune();
    }
    return entry;
  }

  /** Delete every row but the newest `kept`. */
  async prune(): Promise<void> {
    await this.pool.query(
      `DELETE FROM ${quoted(this.table)} WHERE delivery_key IN (
         SELECT delivery_key FROM ${quoted(this.table)}
          ORDER BY received_at DESC, stored_at DESC OFFSET $1)`,
      [this.kept],
    );
  }

  async newestFirst(): Promise<NotificationEntry[]> {
    const { rows } = await this.pool.query<{
      subscription_id: string;
      topic: string;
      content_type: string | null;
      body: string;
      received_at: Date;
    }>(
      `SELECT subscription_id, topic, content_type, body, received_at FROM ${quoted(this.table)}
       ORDER BY received_at DESC, stored_at DESC LIMIT $1`,
      [this.kept],
    );
    return rows.map((row) => ({
      subscriptionId: row.subscription_id,
      topic: row.topic,
      contentType: row.content_type,
      body: row.body,
      receivedAt: row.received_at.toISOString(),
    }));
  }
}

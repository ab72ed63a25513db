import type { Subscription } from '@websubsub/core';

/** A stream that may be a terminal. */
export interface CliStream {
  isTTY?: boolean;
}

/** The process streams, environment and directory the command runs with. */
export interface CliIo {
  stdin: NodeJS.ReadableStream & CliStream;
  stdout: NodeJS.WritableStream & CliStream;
  stderr: NodeJS.WritableStream & CliStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** The fields never printed: the secrets. */
type SecretField = 'secret' | 'previousSecret';

/** A record as printed: dates as ISO strings and `hasSecret` in place of the secrets. */
export type RecordJson = {
  [K in Exclude<keyof Subscription, SecretField>]: Subscription[K] extends Date | null
    ? string | null
    : Subscription[K] extends Date
      ? string
      : Subscription[K];
} & { hasSecret: boolean };

// Every field but the secrets, in the order printed; the type makes a new field impossible to miss.
const FIELD_ORDER: Record<Exclude<keyof Subscription, SecretField>, null> = {
  id: null,
  topic: null,
  hub: null,
  handler: null,
  callbackUrl: null,
  retiredCallbackUrl: null,
  static: null,
  subscribeStatus: null,
  unsubscribeStatus: null,
  leaseSeconds: null,
  leaseExpiresAt: null,
  connectionErrors: null,
  hubErrors: null,
  verifyTimeouts: null,
  verifyErrors: null,
  lastSubscribeAt: null,
  lastUnsubscribeAt: null,
  lastDeliveryAt: null,
  createdAt: null,
  retryAt: null,
  deniedReason: null,
  lastError: null,
  discoveredFrom: null,
  hubDiscovered: null,
};
const FIELDS = Object.keys(FIELD_ORDER) as Array<keyof typeof FIELD_ORDER>;

/** A record fit for printing: never a secret itself, only whether there is one. */
export function serialiseRecord(record: Subscription): RecordJson {
  const json: Record<string, unknown> = {};
  for (const field of FIELDS) {
    const value = record[field];
    json[field] = value instanceof Date ? value.toISOString() : value;
    if (field === 'callbackUrl') json['hasSecret'] = record.secret !== null;
  }
  return json as RecordJson;
}

/** One word for where a record stands: its subscribe status, or `unsubscribe:<status>`. */
export function statusOf(record: Subscription): string {
  return record.unsubscribeStatus === null
    ? record.subscribeStatus
    : `unsubscribe:${record.unsubscribeStatus}`;
}

/** A date to the second, for tables; `-` when absent. */
export function shortDate(date: Date | null): string {
  return date === null ? '-' : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Writes what a command answers: the result on stdout, notes and progress on stderr, so that
 * stdout can be piped. Writes wait for the stream to drain, so long dumps never pile up.
 */
export class Output {
  /** Whether anything was written to stdout yet. */
  written = false;

  constructor(
    private readonly io: CliIo,
    /** One JSON document on stdout instead of text. */
    readonly json: boolean,
  ) {}

  /** Write text to stdout as it is. */
  write(text: string): Promise<void> {
    this.written = true;
    return writeTo(this.io.stdout, text);
  }

  /** Write one line to stdout. */
  line(text = ''): Promise<void> {
    return this.write(`${text}\n`);
  }

  /** Write a whole JSON document to stdout. */
  document(value: unknown): Promise<void> {
    return this.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A line for the person at the terminal (warnings, hints), on stderr. */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  /** A progress line on stderr, shown only on a terminal and never with `--json`. */
  progress(): Progress {
    return new Progress(this.io.stderr, Boolean(this.io.stderr.isTTY) && !this.json);
  }
}

/** Write and wait until the stream takes more, so a slow reader slows the command down. */
export function writeTo(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ready = stream.write(text, (error) => (error ? reject(error) : undefined));
    if (ready) resolve();
    else stream.once('drain', () => resolve());
  });
}

/** One line on stderr rewritten in place; does nothing when disabled. */
export class Progress {
  private shown = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly enabled: boolean,
  ) {}

  /** Replace the line with this text. */
  update(text: string): void {
    if (!this.enabled) return;
    this.stream.write(`\r\x1b[2K${text}`);
    this.shown = true;
  }

  /** Show a label with the seconds spent, for work that reports no steps of its own. */
  tick(label: string): void {
    if (!this.enabled) return;
    const started = Date.now();
    const show = () => this.update(`${label} (${Math.round((Date.now() - started) / 1000)}s)`);
    show();
    this.timer = setInterval(show, 1000);
    this.timer.unref();
  }

  /** Clear the line. */
  done(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.shown) this.stream.write('\r\x1b[2K');
    this.shown = false;
  }
}

/** A column of a streamed table: its heading and the widest it may grow. */
export interface Column {
  heading: string;
  max: number;
}

function fit(value: string, width: number): string {
  return value.length > width ? `${value.slice(0, width - 1)}…` : value.padEnd(width);
}

/**
 * A table printed a page at a time. Widths come from the first page (within each column's
 * maximum) and hold for the rest, so a long listing never has to be kept in memory.
 */
export class StreamedTable {
  private widths: number[] | null = null;

  constructor(private readonly columns: Column[]) {}

  /** The lines of one page of rows; the heading comes with the first page. */
  lines(rows: string[][]): string[] {
    const lines: string[] = [];
    if (this.widths === null) {
      this.widths = this.columns.map((column, index) =>
        Math.min(
          column.max,
          Math.max(column.heading.length, ...rows.map((row) => (row[index] ?? '').length)),
        ),
      );
      lines.push(this.format(this.columns.map((column) => column.heading)));
    }
    for (const row of rows) lines.push(this.format(row));
    return lines;
  }

  private format(cells: string[]): string {
    const widths = this.widths as number[];
    const last = widths.length - 1;
    return cells
      .map((cell, index) => {
        const width = widths[index] as number;
        // The last column is not padded: trailing blanks only get in the way of `grep`.
        return index === last ? fit(cell, width).trimEnd() : fit(cell, width);
      })
      .join('  ');
  }
}

import {
  SUBSCRIBE_STATUSES,
  SubscriptionNotFoundError,
  UNSUBSCRIBE_STATUSES,
  type Subscriber,
  type Subscription,
  type SubscriptionFilter,
} from '@websubsub/core';

import type { CommandContext } from '../context.js';
import { EXIT, UsageError } from '../errors.js';
import { serialiseRecord, shortDate, statusOf, StreamedTable, type Output } from '../output.js';

/**
 * Every value `--status` takes: a subscribe status, or `unsubscribe:` and an unsubscribe status.
 */
export const STATUS_CHOICES: readonly string[] = [
  ...SUBSCRIBE_STATUSES,
  ...UNSUBSCRIBE_STATUSES.map((status) => `unsubscribe:${status}`),
];

/** The filters of `list` and `dump`. */
export interface FilterOptions {
  status?: string;
  handler?: string;
  hub?: string;
  topic?: string;
  static?: boolean;
  limit?: number;
}

/** A store filter from the command's options; a status names what `list` shows in its column. */
export function filterFrom(options: FilterOptions): SubscriptionFilter {
  const filter: SubscriptionFilter = {};
  if (options.handler !== undefined) filter.handler = options.handler;
  if (options.hub !== undefined) filter.hub = options.hub;
  if (options.topic !== undefined) filter.topic = options.topic;
  if (options.static !== undefined) filter.static = options.static;

  if (options.status !== undefined) {
    const [first, second] = options.status.split(':');
    if (second !== undefined) {
      const status = UNSUBSCRIBE_STATUSES.find((value) => value === second);
      if (first !== 'unsubscribe' || !status)
        throw new UsageError(`Unknown status ${options.status}`);
      filter.unsubscribeStatus = status;
    } else {
      const status = SUBSCRIBE_STATUSES.find((value) => value === first);
      if (!status) throw new UsageError(`Unknown status ${options.status}`);
      // A record being unsubscribed shows as unsubscribe:<status>, whatever its subscribe status.
      filter.subscribeStatus = status;
      filter.unsubscribeStatus = null;
    }
  }
  return filter;
}

/**
 * Records one page at a time, up to `limit`. On a terminal a counter shows while each page is
 * read, and is cleared before the page is printed, so it never mixes with the output.
 */
async function* pages(
  subscriber: Subscriber,
  filter: SubscriptionFilter,
  limit: number | undefined,
  out: Output,
): AsyncGenerator<Subscription[]> {
  const pageSize = 500;
  const progress = out.progress();
  let seen = 0;
  let after: string | undefined;

  do {
    const wanted = limit === undefined ? pageSize : Math.min(pageSize, limit - seen);
    if (wanted <= 0) return;

    progress.update(`Reading subscriptions: ${seen} so far`);
    const page = await subscriber
      .list(filter, { limit: wanted, ...(after ? { after } : {}) })
      .finally(() => progress.done());
    seen += page.items.length;

    if (page.items.length > 0) yield page.items;
    after = page.next ?? undefined;
  } while (after !== undefined);
}

/** Write a JSON array one record at a time, so that no listing is held whole in memory. */
async function streamArray(out: Output, source: AsyncGenerator<Subscription[]>): Promise<number> {
  let count = 0;
  await out.write('[');
  for await (const page of source) {
    const text = page
      .map((record) => `${count++ === 0 ? '' : ','}\n  ${JSON.stringify(serialiseRecord(record))}`)
      .join('');
    await out.write(text);
  }
  await out.write(count === 0 ? ']\n' : '\n]\n');
  return count;
}

const COLUMNS = [
  { heading: 'ID', max: 36 },
  { heading: 'STATUS', max: 22 },
  { heading: 'TOPIC', max: 60 },
  { heading: 'HUB', max: 40 },
  { heading: 'HANDLER', max: 16 },
  { heading: 'LEASE ENDS', max: 20 },
  { heading: 'LAST DELIVERY', max: 20 },
  { heading: 'LAST ERROR', max: 60 },
];

/** `list`: a table of the records matching the filters. */
export async function listCommand(
  context: CommandContext,
  options: FilterOptions,
): Promise<number> {
  const filter = filterFrom(options);
  const { config } = await context.load();
  const { out } = context;
  const source = pages(config.subscriber, filter, options.limit, out);

  if (out.json) {
    await streamArray(out, source);
    return EXIT.ok;
  }

  const table = new StreamedTable(COLUMNS);
  let count = 0;
  for await (const page of source) {
    count += page.length;
    const rows = page.map((record) => [
      record.id,
      statusOf(record),
      record.topic,
      record.hub,
      record.handler,
      shortDate(record.leaseExpiresAt),
      shortDate(record.lastDeliveryAt),
      (record.lastError ?? '-').replace(/\s+/g, ' '),
    ]);
    await out.line(table.lines(rows).join('\n'));
  }
  await out.line(count === 0 ? 'No subscriptions match.' : `\n${count} subscription(s)`);
  return EXIT.ok;
}

/** `dump`: every matching record in full, one JSON object per line (an array with `--json`). */
export async function dumpCommand(
  context: CommandContext,
  options: FilterOptions,
): Promise<number> {
  const filter = filterFrom(options);
  const { config } = await context.load();
  const { out } = context;
  const source = pages(config.subscriber, filter, options.limit, out);

  if (out.json) {
    await streamArray(out, source);
    return EXIT.ok;
  }
  for await (const page of source) {
    await out.write(page.map((record) => `${JSON.stringify(serialiseRecord(record))}\n`).join(''));
  }
  return EXIT.ok;
}

const LABELS: Array<[keyof ReturnType<typeof serialiseRecord>, string]> = [
  ['id', 'ID'],
  ['topic', 'Topic'],
  ['discoveredFrom', 'Discovered from'],
  ['hub', 'Hub'],
  ['hubDiscovered', 'Hub discovered'],
  ['handler', 'Handler'],
  ['callbackUrl', 'Callback URL'],
  ['retiredCallbackUrl', 'Old callback URL'],
  ['hasSecret', 'Secret'],
  ['static', 'Static'],
  ['subscribeStatus', 'Subscribe status'],
  ['unsubscribeStatus', 'Unsubscribe status'],
  ['leaseSeconds', 'Lease asked (s)'],
  ['leaseExpiresAt', 'Lease ends'],
  ['lastSubscribeAt', 'Last subscribe'],
  ['lastUnsubscribeAt', 'Last unsubscribe'],
  ['lastDeliveryAt', 'Last delivery'],
  ['createdAt', 'Created'],
  ['retryAt', 'Next retry'],
  ['connectionErrors', 'Connection errors'],
  ['hubErrors', 'Hub errors'],
  ['verifyTimeouts', 'Verify timeouts'],
  ['verifyErrors', 'Verify errors'],
  ['deniedReason', 'Denied reason'],
  ['lastError', 'Last error'],
];

/** `show <id>`: one record in full. */
export async function showCommand(context: CommandContext, id: string): Promise<number> {
  const { config } = await context.load();
  const record = await config.subscriber.get(id);
  if (!record) throw new SubscriptionNotFoundError(id);

  const json = serialiseRecord(record);
  if (context.out.json) {
    await context.out.document(json);
    return EXIT.ok;
  }

  const width = Math.max(...LABELS.map(([, label]) => label.length));
  const lines = LABELS.map(([field, label]) => {
    const value = json[field];
    const shown =
      field === 'hasSecret' ? (value ? 'set' : 'none') : value === null ? '-' : String(value);
    // A hub's text may hold line breaks: its further lines stay under the value, indented.
    const indented = shown.replace(/\r\n?|\n/g, `\n${' '.repeat(width + 2)}`);
    return `${`${label}:`.padEnd(width + 2)}${indented}`;
  });

  // Say what the CLI can tell that the record cannot: whether its handler still exists.
  if (!config.subscriber.settings.handlers.has(record.handler)) {
    lines.push(
      '',
      `The handler ${record.handler} is not configured: purge-unresolvable deletes it.`,
    );
  }
  await context.out.line(lines.join('\n'));
  return EXIT.ok;
}

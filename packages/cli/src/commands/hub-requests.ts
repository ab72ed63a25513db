import { SubscriptionNotFoundError, type Subscription } from '@websubsub/core';

import type { CommandContext } from '../context.js';
import { CliConfigError, EXIT, UsageError } from '../errors.js';
import { serialiseRecord, statusOf } from '../output.js';
import { confirm } from '../prompt.js';
import { prepareRequests, settleRequests, type RequestOptions } from '../requests.js';

/** Options of `subscribe`. */
export interface SubscribeOptions extends RequestOptions {
  hub?: string;
  handler?: string;
  leaseSeconds?: number;
  secret?: string;
  secretEnv?: string;
  allHubs?: boolean;
}

/** Options of `static-subscribe`. */
export interface StaticCommandOptions extends RequestOptions {
  purgeOrphans?: boolean;
  resetCounters?: boolean;
  force?: boolean;
  yes?: boolean;
}

/** One line per record: id, status and what it is about. */
const describeRecord = (record: Subscription): string =>
  `${record.id}  ${statusOf(record)}  ${record.topic} at ${record.hub}${
    record.lastError ? `  (${record.lastError})` : ''
  }`;

function secretFrom(context: CommandContext, options: SubscribeOptions): string | undefined {
  // Commander already refuses both at once (`conflicts`).
  if (options.secretEnv === undefined) return options.secret;

  const secret = context.io.env[options.secretEnv];
  if (secret === undefined || secret === '') {
    throw new UsageError(
      `The environment variable ${options.secretEnv} (from --secret-env) is not set`,
    );
  }
  return secret;
}

/** `subscribe <topic>`: subscribe, discovering the hub unless given, and send the request. */
export async function subscribeCommand(
  context: CommandContext,
  topic: string,
  options: SubscribeOptions,
): Promise<number> {
  const secret = secretFrom(context, options);
  const { config } = await context.load();
  const { subscriber } = config;
  const { out } = context;

  await prepareRequests(subscriber, options, out);
  const input = {
    topic,
    ...(options.hub !== undefined ? { hub: options.hub } : {}),
    ...(options.handler !== undefined ? { handler: options.handler } : {}),
    ...(options.leaseSeconds !== undefined ? { leaseSeconds: options.leaseSeconds } : {}),
    ...(secret !== undefined ? { secret } : {}),
  };
  const stored = options.allHubs
    ? await subscriber.subscribeEach(input)
    : [await subscriber.subscribe(input)];

  const ids = stored.map((record) => record.id);
  const outcome = await settleRequests(subscriber, ids, 'subscribe', options, out);
  return reportRequests(out, outcome, 'Subscribed');
}

/** `unsubscribe <id...>`: ask the hubs to end these subscriptions. */
export async function unsubscribeCommand(
  context: CommandContext,
  ids: string[],
  options: RequestOptions,
): Promise<number> {
  const { config } = await context.load();
  const { subscriber } = config;
  const { out } = context;

  // Every id must exist before anything is sent, so that a typo changes nothing.
  for (const id of ids) {
    if (!(await subscriber.get(id))) throw new SubscriptionNotFoundError(id);
  }

  await prepareRequests(subscriber, options, out);
  for (const id of ids) await subscriber.unsubscribe(id);

  const outcome = await settleRequests(subscriber, ids, 'unsubscribe', options, out);
  return reportRequests(out, outcome, 'Unsubscribing');
}

/** Print what became of the requests (one JSON document, or a line each); the exit code. */
async function reportRequests(
  out: CommandContext['out'],
  outcome: Awaited<ReturnType<typeof settleRequests>>,
  verb: string,
): Promise<number> {
  if (out.json) {
    await out.document({
      subscriptions: outcome.records.map(serialiseRecord),
      failed: outcome.failed,
      pending: outcome.pending,
    });
  } else {
    await out.line(outcome.records.map((record) => `${verb} ${describeRecord(record)}`).join('\n'));
  }
  return outcome.failed.length + outcome.pending.length > 0 ? EXIT.failed : EXIT.ok;
}

/** `static-subscribe`: materialise the subscriptions the configuration declares. */
export async function staticSubscribeCommand(
  context: CommandContext,
  options: StaticCommandOptions,
): Promise<number> {
  const { config, file } = await context.load();
  const { subscriber } = config;
  const { out, io } = context;
  const declarations = config.staticSubscriptions;
  if (declarations === undefined) {
    throw new CliConfigError(`${file} declares no staticSubscriptions`);
  }

  if (options.purgeOrphans) {
    await confirm(
      io,
      options.yes,
      async () => {
        const stored = await subscriber.store.count({ static: true });
        return (
          `End the static subscriptions the configuration no longer declares ` +
          `(${stored} stored, ${declarations.length} declared)? Those a hub may still hold ` +
          `are unsubscribed, and deleted by a later run once the hub has confirmed.`
        );
      },
      'static-subscribe --purge-orphans',
    );
  }

  await prepareRequests(subscriber, options, out);
  const progress = out.progress();
  progress.tick(`Applying ${declarations.length} static subscription(s)`);
  const report = await subscriber
    .applyStaticSubscriptions(declarations, {
      purgeOrphans: options.purgeOrphans ?? false,
      resetCounters: options.resetCounters ?? false,
      force: options.force ?? false,
    })
    .finally(() => progress.done());

  const ids = [...report.created, ...report.resubscribed];
  const outcome = await settleRequests(subscriber, ids, 'subscribe', options, out);
  const ending = await settleRequests(
    subscriber,
    report.unsubscribing,
    'unsubscribe',
    options,
    out,
  );
  if (out.json) {
    await out.document({
      ...report,
      subscriptions: outcome.records.map(serialiseRecord),
      requestFailed: [...outcome.failed, ...ending.failed],
      pending: [...outcome.pending, ...ending.pending],
    });
  } else {
    const byId = new Map(outcome.records.map((record) => [record.id, record]));
    const lines = [
      `Created ${report.created.length}, re-subscribed ${report.resubscribed.length}, ` +
        `skipped ${report.skipped.length}, purged ${report.purged.length}, ` +
        (report.unsubscribing.length > 0 ? `unsubscribing ${report.unsubscribing.length}, ` : '') +
        `failed ${report.failed.length}.`,
    ];
    const show = (label: string, id: string) => {
      const record = byId.get(id);
      lines.push(`  ${label.padEnd(12)} ${record ? describeRecord(record) : id}`);
    };
    report.created.forEach((id) => show('created', id));
    report.resubscribed.forEach((id) => show('resubscribed', id));
    report.skipped.forEach(({ id, reason }) =>
      lines.push(`  ${'skipped'.padEnd(12)} ${id}  ${reason} (--force re-subscribes it)`),
    );
    report.purged.forEach((id) => lines.push(`  ${'purged'.padEnd(12)} ${id}`));
    report.unsubscribing.forEach((id) =>
      lines.push(`  ${'unsubscribing'.padEnd(12)} ${id}  (deleted by a later run once ended)`),
    );
    report.failed.forEach(({ topic, error }) =>
      lines.push(`  ${'failed'.padEnd(12)} ${topic}: ${error}`),
    );
    await out.line(lines.join('\n'));
  }

  const failures =
    report.failed.length +
    [outcome, ending].reduce((sum, { failed, pending }) => sum + failed.length + pending.length, 0);
  return failures > 0 ? EXIT.failed : EXIT.ok;
}

/** `handle-url-changes`: re-subscribe records whose callback URL no longer matches. */
export async function handleUrlChangesCommand(
  context: CommandContext,
  options: RequestOptions,
): Promise<number> {
  const { config } = await context.load();
  const { subscriber } = config;
  const { out } = context;

  await prepareRequests(subscriber, options, out);
  const progress = out.progress();
  progress.tick('Looking for changed callback URLs');
  const ids = await subscriber.handleUrlChanges().finally(() => progress.done());

  const outcome = await settleRequests(subscriber, ids, 'subscribe', options, out);
  if (out.json) {
    await out.document({
      resubscribed: ids,
      subscriptions: outcome.records.map(serialiseRecord),
      failed: outcome.failed,
      pending: outcome.pending,
    });
  } else if (ids.length === 0) {
    await out.line('Every callback URL is current.');
  } else {
    await out.line(
      [
        `Re-subscribed ${ids.length} subscription(s) with their new callback URL:`,
        ...outcome.records.map((record) => `  ${describeRecord(record)}  ${record.callbackUrl}`),
      ].join('\n'),
    );
  }
  return outcome.failed.length + outcome.pending.length > 0 ? EXIT.failed : EXIT.ok;
}

import type { CommandContext } from '../context.js';
import { EXIT } from '../errors.js';
import { confirm } from '../prompt.js';

/** Options of the commands that delete or reset records. */
export interface ConfirmOptions {
  yes?: boolean;
}

/** `purge-unresolvable`: delete records whose handler is no longer configured. */
export async function purgeUnresolvableCommand(
  context: CommandContext,
  options: ConfirmOptions,
): Promise<number> {
  const { config } = await context.load();
  const { subscriber } = config;
  const { out } = context;
  const handlers = [...subscriber.settings.handlers.keys()];

  await confirm(
    context.io,
    options.yes,
    async () =>
      `Delete every subscription whose handler is not one of ${handlers.join(', ')}? ` +
      'Hubs are not told.',
    'purge-unresolvable',
  );

  const progress = out.progress();
  progress.tick('Purging subscriptions without a handler');
  const purged = await subscriber.purgeUnresolvable().finally(() => progress.done());

  if (out.json) await out.document({ purged });
  else if (purged.length === 0) await out.line('Every subscription has a configured handler.');
  else
    await out.line(
      [`Purged ${purged.length} subscription(s):`, ...purged.map((id) => `  ${id}`)].join('\n'),
    );
  return EXIT.ok;
}

/** `reset-counters [id...]`: zero the error counters of these records, or of all of them. */
export async function resetCountersCommand(
  context: CommandContext,
  ids: string[],
  options: ConfirmOptions,
): Promise<number> {
  const { config } = await context.load();
  const { subscriber } = config;
  const { out } = context;

  // Naming the records is deliberate enough; resetting all of them asks first.
  if (ids.length === 0) {
    await confirm(
      context.io,
      options.yes,
      async () =>
        `Zero the error counters of all ${await subscriber.store.count()} subscription(s)?`,
      'reset-counters (without ids)',
    );
  }

  const progress = out.progress();
  progress.tick('Resetting counters');
  const reset = await subscriber
    .resetCounters(ids.length > 0 ? ids : undefined)
    .finally(() => progress.done());
  const notFound = ids.filter((id) => !reset.includes(id));

  if (out.json) {
    await out.document({ reset, notFound });
  } else {
    const lines = [`Reset the counters of ${reset.length} subscription(s).`];
    for (const id of notFound) lines.push(`  not found: ${id}`);
    await out.line(lines.join('\n'));
  }
  return notFound.length > 0 ? EXIT.failed : EXIT.ok;
}

/** `purge-all`: delete every record without telling the hubs. */
export async function purgeAllCommand(
  context: CommandContext,
  options: ConfirmOptions,
): Promise<number> {
  const { config } = await context.load();
  const { subscriber } = config;
  const { out } = context;

  await confirm(
    context.io,
    options.yes,
    async () =>
      `Delete all ${await subscriber.store.count()} subscription(s)? Hubs are not told, ` +
      'so they keep sending content until the leases end.',
    'purge-all',
  );

  const progress = out.progress();
  progress.tick('Deleting every subscription');
  const deleted = await subscriber.purgeAll().finally(() => progress.done());

  if (out.json) await out.document({ deleted });
  else await out.line(`Deleted ${deleted} subscription(s).`);
  return EXIT.ok;
}

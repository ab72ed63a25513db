import type { CommandContext } from '../context.js';
import { EXIT } from '../errors.js';

/** `migrate`: run the configuration's `migrate()` (e.g. create or upgrade the PostgreSQL table). */
export async function migrateCommand(context: CommandContext): Promise<number> {
  const { config, file } = await context.load();
  const { out } = context;

  if (!config.migrate) {
    if (out.json) await out.document({ migrated: false, result: null });
    else await out.line(`Nothing to migrate: ${file} has no migrate().`);
    return EXIT.ok;
  }

  const progress = out.progress();
  progress.tick('Migrating');
  const result = await config.migrate().finally(() => progress.done());

  if (out.json) {
    await out.document({ migrated: true, result: result ?? null });
  } else {
    const detail = result === undefined ? '' : `: ${JSON.stringify(result)}`;
    await out.line(`Migrated${detail}`);
  }
  return EXIT.ok;
}

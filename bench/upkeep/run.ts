import { startChild } from '../lib/child.js';
import { cleanUp, scratchName } from '../lib/services.js';

/** One sweep's measurements. */
export interface SweepFigure {
  ms: number;
  peakHeapBytes: number;
  peakRssBytes: number;
  queued: number;
  result: { examined: number };
}

/** What one (store, size) step measured. */
export interface UpkeepResult {
  store: 'memory' | 'postgres';
  total: number;
  seedMs: number;
  refresh: SweepFigure | null;
  retry: SweepFigure | null;
  /** Refresh and retry sweeps again, with nothing left due. */
  idle: { ms: number; result: { examined: number } } | null;
  skipped?: string;
}

/** Settings of the upkeep benchmark. */
export interface UpkeepSettings {
  sizes: number[];
  postgres: boolean;
  log: (line: string) => void;
}

async function step(store: 'memory' | 'postgres', total: number, log: (line: string) => void) {
  const scratch = store === 'postgres' ? { table: scratchName('upkeep') } : {};
  const child = startChild('upkeep/child.ts', [store, String(total)], {
    execArgv: ['--expose-gc', '--max-old-space-size=8192'],
    env: scratch.table ? { BENCH_TABLE: scratch.table } : {},
  });

  try {
    const failed = child.next('failed', 1_200_000).then((message) => {
      throw new Error(String(message['error']));
    });
    failed.catch(() => {});
    const done = await Promise.race([child.next('result', 1_200_000), failed]);

    const result = done as unknown as UpkeepResult;
    log(
      `  ${store} ${total}: seeded in ${Math.round(result.seedMs)} ms; refresh ` +
        `${result.refresh?.queued} renewals in ${Math.round(result.refresh?.ms ?? 0)} ms; retry ` +
        `${result.retry?.queued} in ${Math.round(result.retry?.ms ?? 0)} ms; nothing due ` +
        `${(result.idle?.ms ?? 0).toFixed(1)} ms`,
    );
    return { ...result, store, total };
  } finally {
    await child.stop();
    await cleanUp(scratch);
  }
}

/** Seed each store at each size in a fresh process and time one refresh and one retry sweep. */
export async function runUpkeep(settings: UpkeepSettings): Promise<UpkeepResult[]> {
  const results: UpkeepResult[] = [];
  for (const store of ['memory', 'postgres'] as const) {
    for (const total of settings.sizes) {
      if (store === 'postgres' && !settings.postgres) {
        results.push(empty(store, total, 'not measured: PostgreSQL is unreachable'));
        continue;
      }
      settings.log(`upkeep: ${store} store, ${total} subscriptions`);
      try {
        results.push(await step(store, total, settings.log));
      } catch (error) {
        settings.log(`  failed: ${String(error)}`);
        results.push(empty(store, total, `failed: ${String(error)}`));
      }
    }
  }
  return results;
}

function empty(store: 'memory' | 'postgres', total: number, skipped: string): UpkeepResult {
  return { store, total, seedMs: 0, refresh: null, retry: null, idle: null, skipped };
}

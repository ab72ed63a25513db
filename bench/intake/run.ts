import { startChild, type Child } from '../lib/child.js';
import { atomBody, CALLBACK_PATH, deliveryHeaders } from '../lib/delivery.js';
import { runLoad, type LoadResult } from '../lib/load.js';
import { cleanUp, postgresCommits, redisCpuSeconds, scratchName } from '../lib/services.js';
import { INTAKE_CASES, type IntakeCase } from './cases.js';

/** Settings of the intake benchmark. */
export interface IntakeSettings {
  connections: number;
  warmupS: number;
  /** Length of each saturation run and of the fixed-rate run. */
  durationS: number;
  /** Saturation runs per case; the cases take turns, and the median run is reported. */
  rounds: number;
  /** Run the durable cases (PostgreSQL and Redis are up). */
  durable: boolean;
  /** Only these cases, when given. */
  only?: string[];
  log: (line: string) => void;
}

/** One saturation run, with the server's CPU time per request during it. */
export interface SaturationRun extends LoadResult {
  cpuMicrosPerRequest: number | null;
  /** Share of one core Redis used during the run (durable cases). */
  redisCpuShare: number | null;
  /** PostgreSQL transactions committed per request answered during the run (durable cases). */
  commitsPerRequest: number | null;
}

/** What one case measured. */
export interface IntakeResult {
  case: IntakeCase;
  /** Every saturation run, in the order run. */
  runs: SaturationRun[];
  /** The run of median throughput. */
  saturation: SaturationRun | null;
  fixedRate: (LoadResult & { target: number }) | null;
  /** Deliveries the server accepted, refused, and handed to its handler over the whole case. */
  accepted: number;
  rejected: number;
  handled: number;
  rssBytes: number;
  /** Why the case was not measured. */
  skipped?: string;
}

/** A case's server process, listening. */
interface RunningServer {
  entry: IntakeCase;
  child: Child;
  url: string;
  scratch: { table?: string; redisPrefix?: string };
}

const body = atomBody();
const headers = deliveryHeaders(body);

/**
 * Start a case's server in its own process; durable cases get a table and key prefix of their own.
 */
export async function openServer(
  entry: IntakeCase,
  execArgv: string[] = [],
): Promise<RunningServer> {
  const scratch = entry.durable
    ? { table: scratchName('intake'), redisPrefix: `${scratchName('intake')}:` }
    : {};
  const child = startChild('intake/server.ts', [entry.name], {
    execArgv,
    env: {
      ...(scratch.table ? { BENCH_TABLE: scratch.table } : {}),
      ...(scratch.redisPrefix ? { BENCH_REDIS_PREFIX: scratch.redisPrefix } : {}),
    },
  });

  try {
    const ready = await child.ready(60_000);
    const url = `http://127.0.0.1:${String(ready['port'])}${CALLBACK_PATH}`;
    return { entry, child, url, scratch };
  } catch (error) {
    await child.stop();
    await cleanUp(scratch);
    throw error;
  }
}

/** Stop a case's server and drop what it created in PostgreSQL and Redis. */
export async function closeServer(server: RunningServer): Promise<void> {
  await server.child.stop();
  await cleanUp(server.scratch);
}

/** Load a server as hard as it goes, with these settings. */
export function loadServer(
  server: RunningServer,
  options: { connections: number; durationS: number; rate?: number },
): Promise<LoadResult> {
  return runLoad({ url: server.url, body, headers, ...options });
}

async function saturate(server: RunningServer, settings: IntakeSettings): Promise<SaturationRun> {
  await server.child.ask({ type: 'mark' });
  const redisBefore = server.entry.durable ? await redisCpuSeconds() : null;
  const commitsBefore = server.entry.durable ? await postgresCommits() : null;
  const began = performance.now();
  const result = await loadServer(server, settings);
  const seconds = (performance.now() - began) / 1000;
  const redisAfter = server.entry.durable ? await redisCpuSeconds() : null;
  // Let the statistics of the last transactions reach the shared counters.
  if (server.entry.durable) await new Promise((resolve) => setTimeout(resolve, 1100));
  const commitsAfter = server.entry.durable ? await postgresCommits() : null;
  const answered = Object.values(result.statuses).reduce((sum, count) => sum + count, 0);
  const stats = await server.child.ask({ type: 'stats' });
  const cpu = stats['cpuMicrosPerRequest'];

  const run = {
    ...result,
    cpuMicrosPerRequest: typeof cpu === 'number' ? cpu : null,
    redisCpuShare:
      redisBefore !== null && redisAfter !== null ? (redisAfter - redisBefore) / seconds : null,
    commitsPerRequest:
      commitsBefore !== null && commitsAfter !== null && answered > 0
        ? (commitsAfter - commitsBefore) / answered
        : null,
  };
  settings.log(
    `  ${server.entry.name}: ${Math.round(run.rps)} req/s, p50 ${run.p50.toFixed(2)} ms, ` +
      `p99 ${run.p99.toFixed(2)} ms, ` +
      `${run.cpuMicrosPerRequest?.toFixed(1) ?? '?'} µs CPU/request ` +
      `${JSON.stringify(run.statuses)}${run.errors > 0 ? `, ${run.errors} errors` : ''}` +
      (run.redisCpuShare === null
        ? ''
        : `, Redis at ${Math.round(run.redisCpuShare * 100)} % of a core`) +
      (run.commitsPerRequest === null
        ? ''
        : `, ${run.commitsPerRequest.toFixed(1)} commits/request`),
  );
  return run;
}

function medianRun(runs: SaturationRun[]): SaturationRun | null {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? null;
}

/** Half the median saturation, evenly paced, then what the server counted. */
async function finish(
  server: RunningServer,
  runs: SaturationRun[],
  settings: IntakeSettings,
): Promise<IntakeResult> {
  const saturation = medianRun(runs);
  const target = Math.max(1, Math.floor((saturation?.rps ?? 2) / 2));
  const fixed = await loadServer(server, { ...settings, rate: target });
  settings.log(
    `  ${server.entry.name}: ${Math.round(fixed.rps)} req/s at a fixed ${target}/s, ` +
      `p50 ${fixed.p50.toFixed(2)} ms, p99 ${fixed.p99.toFixed(2)} ms`,
  );

  const stats = await server.child.ask({ type: 'stats' });
  return {
    case: server.entry,
    runs,
    saturation,
    fixedRate: { ...fixed, target },
    accepted: Number(stats['accepted']),
    rejected: Number(stats['rejected']),
    handled: Number(stats['handled']),
    rssBytes: Number(stats['rss']),
  };
}

/**
 * Run the intake cases. The embedded ones run side by side in their own processes and take
 * turns, round after round, so that a slow spell of the machine falls on every case alike; the
 * durable ones run one at a time, each with its own table and key prefix, since their queue
 * backlog keeps their process busy after the load stops.
 */
export async function runIntake(settings: IntakeSettings): Promise<IntakeResult[]> {
  const chosen = INTAKE_CASES.filter(
    (entry) => !settings.only || settings.only.includes(entry.name),
  );
  const results = new Map<string, IntakeResult>();

  const embedded: RunningServer[] = [];
  try {
    for (const entry of chosen.filter((candidate) => !candidate.durable)) {
      try {
        embedded.push(await openServer(entry));
      } catch (error) {
        results.set(entry.name, skipped(entry, `failed to start: ${String(error)}`));
      }
    }

    settings.log(`intake: warming up ${embedded.length} servers`);
    for (const server of embedded)
      await loadServer(server, { ...settings, durationS: settings.warmupS });

    const runs = new Map<string, SaturationRun[]>(
      embedded.map((server) => [server.entry.name, []]),
    );
    for (let round = 1; round <= settings.rounds; round++) {
      settings.log(`intake: saturation round ${round} of ${settings.rounds}`);
      for (const server of embedded) {
        runs.get(server.entry.name)?.push(await saturate(server, settings));
      }
    }

    settings.log('intake: fixed rate at half of saturation');
    for (const server of embedded) {
      results.set(
        server.entry.name,
        await finish(server, runs.get(server.entry.name) ?? [], settings),
      );
    }
  } finally {
    for (const server of embedded) await closeServer(server);
  }

  for (const entry of chosen.filter((candidate) => candidate.durable)) {
    if (!settings.durable) {
      results.set(entry.name, skipped(entry, 'not measured: PostgreSQL or Redis is unreachable'));
      continue;
    }

    settings.log(`intake: ${entry.label}`);
    let server: RunningServer | null = null;
    try {
      server = await openServer(entry);
      await loadServer(server, { ...settings, durationS: settings.warmupS });
      const runs: SaturationRun[] = [];
      for (let round = 1; round <= settings.rounds; round++)
        runs.push(await saturate(server, settings));
      results.set(entry.name, await finish(server, runs, settings));
    } catch (error) {
      settings.log(`  ${entry.name} failed: ${String(error)}`);
      results.set(entry.name, skipped(entry, `failed: ${String(error)}`));
    } finally {
      if (server) await closeServer(server);
    }
  }

  return chosen.map((entry) => results.get(entry.name) ?? skipped(entry, 'not run'));
}

function skipped(entry: IntakeCase, reason: string): IntakeResult {
  return {
    case: entry,
    runs: [],
    saturation: null,
    fixedRate: null,
    accepted: 0,
    rejected: 0,
    handled: 0,
    rssBytes: 0,
    skipped: reason,
  };
}

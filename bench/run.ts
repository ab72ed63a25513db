/**
 * `npm run bench`: measures delivery intake, upkeep sweeps at scale and the sample app's
 * memory, then writes BENCHMARKS.md at the repository root.
 *
 *   --quick                  shorter runs, no million-record step
 *   --only=intake,profile,upkeep,memory
 *   --cases=bare-node,core-node   intake cases to run (all by default)
 *   --out=PATH               where to write the report (default: BENCHMARKS.md)
 *   --json=PATH              also write the raw figures there
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import prettier from 'prettier';

import { profileCase, type CaseProfile } from './intake/profile.js';
import { runIntake } from './intake/run.js';
import { machineInfo } from './lib/machine.js';
import { renderReport, type BenchResults } from './lib/report.js';
import { checkPostgres, checkRedis, serverVersions } from './lib/services.js';
import { runMemory } from './memory/run.js';
import { runUpkeep } from './upkeep/run.js';

const SECTIONS = ['intake', 'profile', 'upkeep', 'memory'] as const;

const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      cases: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const sections = new Set(values.only ? values.only.split(',') : SECTIONS);
  for (const section of sections) {
    if (!(SECTIONS as readonly string[]).includes(section))
      throw new Error(`Unknown section ${section}`);
  }
  const quick = values.quick ?? false;
  const out = values.out ?? fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

  // Say at the start which server is missing, rather than fail half-way through.
  const [postgresDown, redisDown] = await Promise.all([checkPostgres(), checkRedis()]);
  for (const reason of [postgresDown, redisDown]) if (reason) log(`warning: ${reason}`);

  const settings = {
    connections: 50,
    warmupS: quick ? 1 : 2,
    durationS: quick ? 2 : 4,
    rounds: quick ? 1 : 3,
  };
  const startedAt = new Date();
  const machine = machineInfo();
  const results: BenchResults = {
    command: [
      'npm run bench',
      ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : []),
    ].join(' '),
    startedAt,
    finishedAt: startedAt,
    machine,
    servers: await serverVersions(),
    settings,
    intake: null,
    profiles: null,
    upkeep: null,
    memory: null,
  };

  if (sections.has('intake')) {
    results.intake = await runIntake({
      ...settings,
      durable: !postgresDown && !redisDown,
      ...(values.cases ? { only: values.cases.split(',') } : {}),
      log,
    });
  }

  if (sections.has('profile')) {
    const durable = !postgresDown && !redisDown;
    // --cases picks any intake cases, the bare ones included, to compare their profiles.
    const names = values.cases
      ? values.cases.split(',')
      : [
          'core-node',
          'core-koa',
          'core-express',
          ...(durable ? ['durable-node', 'durablepg-node', 'durablepgq-node'] : []),
        ];
    const profiles: CaseProfile[] = [];
    for (const name of names) {
      log(`profile: ${name}`);
      try {
        profiles.push(await profileCase(name, { ...settings, durationS: quick ? 3 : 5 }));
      } catch (error) {
        log(`  failed: ${String(error)}`);
      }
    }
    results.profiles = profiles;
  }

  if (sections.has('upkeep')) {
    const sizes = quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
    results.upkeep = await runUpkeep({ sizes, postgres: !postgresDown, log });
  }

  if (sections.has('memory')) {
    results.memory = await runMemory({ subscriptions: 100_000, deliveries: 20_000, log });
  }

  results.finishedAt = new Date();
  if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));

  // Formatted as the repository's prettier settings say, so that `format:check` passes on it.
  const markdown = renderReport(results, new URL('./notes.md', import.meta.url));
  const options = (await prettier.resolveConfig(out)) ?? {};
  writeFileSync(out, await prettier.format(markdown, { ...options, parser: 'markdown' }));
  log(`wrote ${out}`);
}

main().catch((error: unknown) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});

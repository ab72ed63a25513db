import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

import type { CaseProfile } from '../intake/profile.js';
import type { IntakeResult } from '../intake/run.js';
import type { MemoryResult } from '../memory/run.js';
import type { UpkeepResult } from '../upkeep/run.js';
import type { MachineInfo } from './machine.js';

/** Everything one run measured. */
export interface BenchResults {
  command: string;
  startedAt: Date;
  finishedAt: Date;
  machine: MachineInfo;
  servers: { postgres: string | null; redis: string | null };
  settings: { connections: number; warmupS: number; durationS: number; rounds: number };
  intake: IntakeResult[] | null;
  profiles: CaseProfile[] | null;
  upkeep: UpkeepResult[] | null;
  memory: MemoryResult | null;
}

const P99_LIMIT_MS = 10;

const num = (value: number, digits = 0) =>
  value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (value: number | undefined) =>
  value === undefined || Number.isNaN(value) ? 'n/a' : num(value, value < 10 ? 2 : 1);
const mib = (bytes: number) => num(bytes / 1_048_576, 1);
const percent = (share: number) => `${num(share * 100, 1)} %`;

function row(cells: Array<string | number>): string {
  return `| ${cells.map(String).join(' | ')} |`;
}

function table(head: string[], rows: Array<Array<string | number>>, align?: string[]): string[] {
  return [row(head), `|${(align ?? head.map(() => '---')).join('|')}|`, ...rows.map(row)];
}

function intakeSection(results: BenchResults): string[] {
  const intake = results.intake ?? [];
  const byName = new Map(intake.map((result) => [result.case.name, result]));
  const { connections, warmupS, durationS, rounds } = results.settings;

  const lines = [
    '## Delivery intake',
    '',
    `Signed 2 KB Atom deliveries (one WordPress entry cut from the shared fixture, ` +
      `\`X-Hub-Signature: sha256=…\` with the subscription's secret, a combined \`Link\` header) ` +
      `are POSTed by autocannon ${results.machine.packages['autocannon']} over ${connections} ` +
      `keep-alive connections, pipelining 1, to the real callback route of one verified ` +
      `subscription seeded in each server's store. Each server runs in its own process. After a ` +
      `${warmupS} s warm-up, the embedded cases take turns for ${rounds} saturation runs of ` +
      `${durationS} s each (so that a slow spell of this shared machine falls on every case ` +
      `alike) and the run of median throughput is reported; then one ${durationS} s run at a ` +
      `fixed rate of half that median. The durable cases run one at a time afterwards, with a ` +
      `table and Redis key prefix of their own.`,
    '',
    `Latencies are measured per response at sub-millisecond precision. For the fixed rate, ` +
      `autocannon's limiter would release each connection's whole per-second quota at the top ` +
      `of every second, which is saturation for half a second and idleness for the rest; the ` +
      `bench spreads each connection's requests evenly over the second instead ` +
      `(\`bench/lib/load.ts\`). "Server CPU" is the server process's user and system time per ` +
      `request during the run, which other processes on the machine disturb far less than ` +
      `throughput does; in the embedded cases it includes running the queued delivery and its ` +
      `(empty) handler.`,
    '',
    '### At saturation',
    '',
    ...table(
      [
        'Case',
        'req/s',
        'p50 ms',
        'p99 ms',
        'server CPU µs/req',
        'runs (req/s)',
        '× baseline',
        'target',
        'result',
      ],
      intake.map((result) => {
        const run = result.saturation;
        if (!run)
          return [
            result.case.label,
            'n/a',
            '',
            '',
            '',
            '',
            '',
            '',
            result.skipped ?? 'not measured',
          ];

        const baseline = result.case.baseline
          ? byName.get(result.case.baseline.name)?.saturation
          : null;
        const ratio = baseline ? run.rps / baseline.rps : null;
        const wanted = result.case.baseline?.atLeast ?? 0;
        const verdict =
          ratio === null || wanted === 0 ? '' : ratio >= wanted ? '**pass**' : '**fail**';
        return [
          result.case.label,
          num(run.rps),
          ms(run.p50),
          ms(run.p99),
          run.cpuMicrosPerRequest === null ? 'n/a' : num(run.cpuMicrosPerRequest, 1),
          result.runs.map((each) => num(each.rps)).join(' / '),
          ratio === null ? '' : `${num(ratio, 2)}× ${result.case.baseline?.name}`,
          wanted > 0 ? `≥ ${wanted}×` : '',
          verdict,
        ];
      }),
      ['---', '--:', '--:', '--:', '--:', '--:', '--:', '--:', '---'],
    ),
    '',
    '### At a fixed rate of half the saturation',
    '',
    ...table(
      ['Case', 'rate asked', 'req/s', 'p50 ms', 'p99 ms', `target p99 < ${P99_LIMIT_MS} ms`],
      intake
        .filter((result) => result.fixedRate)
        .map((result) => {
          const fixed = result.fixedRate!;
          return [
            result.case.label,
            num(fixed.target),
            num(fixed.rps),
            ms(fixed.p50),
            ms(fixed.p99),
            fixed.p99 < P99_LIMIT_MS ? '**pass**' : '**fail**',
          ];
        }),
      ['---', '--:', '--:', '--:', '--:', '---'],
    ),
    '',
    '### What each server did with the deliveries',
    '',
    ...table(
      [
        'Case',
        'accepted',
        'handled by the end',
        'refused',
        'RSS at the end MiB',
        'Redis CPU during saturation',
        'PostgreSQL commits per request',
      ],
      intake
        .filter((result) => !result.skipped)
        .map((result) => [
          result.case.label,
          num(result.accepted),
          num(result.handled),
          num(result.rejected),
          mib(result.rssBytes),
          result.saturation?.redisCpuShare == null
            ? ''
            : `${percent(result.saturation.redisCpuShare)} of a core`,
          result.saturation?.commitsPerRequest == null
            ? ''
            : num(result.saturation.commitsPerRequest, 1),
        ]),
      ['---', '--:', '--:', '--:', '--:', '--:', '--:'],
    ),
    '',
  ];
  return lines;
}

function profileSection(profiles: CaseProfile[]): string[] {
  const lines = [
    '### CPU profiles under saturation',
    '',
    'The V8 sampling profiler, started through the inspector in the server process after a ' +
      'warm-up (so start-up and compilation stay out), while autocannon saturates it. Self time ' +
      'only; "idle" is the event loop waiting for I/O.',
    '',
  ];
  for (const profile of profiles) {
    lines.push(`#### ${profile.label} (${num(profile.rps)} req/s while profiled)`, '');
    lines.push(
      ...table(
        ['Where the samples fell', 'share'],
        profile.summary.groups.map((group) => [group.group, percent(group.share)]),
        ['---', '--:'],
      ),
      '',
      ...table(
        ['Top functions (self time)', 'share'],
        profile.summary.topFrames.map((frame) => [`\`${frame.name}\``, percent(frame.selfShare)]),
        ['---', '--:'],
      ),
      '',
    );
  }
  return lines;
}

function upkeepSection(upkeep: UpkeepResult[]): string[] {
  return [
    '## Upkeep at scale',
    '',
    'Each store is seeded in a fresh process (PostgreSQL: one `INSERT … SELECT` from ' +
      '`generate_series` into a fresh table, then `ANALYZE`; in memory: `createMemoryStore({ ' +
      'initial })`). One record in ten is verified with a lease ending within the renewal ' +
      'window (a day); one in ten failed to reach its hub and is due for a retry; one in ten ' +
      'awaits a verification retried in half an hour; the rest hold leases ending in 5 to 30 ' +
      'days. Then one refresh sweep (renewals go to a queue that only counts them; locks are ' +
      'the embedded ones, so the store is what is measured), one retry sweep, and both sweeps ' +
      'again once nothing is due: that last figure is the part of a sweep that grows with the ' +
      'total rather than with the due records. Peak memory is the highest heap and resident ' +
      'size sampled every 5 ms during the sweep, above the size before it.',
    '',
    ...table(
      [
        'Store',
        'subscriptions',
        'seeding s',
        'refresh: renewals',
        'refresh ms',
        'µs per renewal',
        'peak heap MiB',
        'retry: queued',
        'retry ms',
        'µs per retry',
        'peak heap MiB',
        'nothing due: both sweeps ms',
      ],
      upkeep.map((result) =>
        result.skipped || !result.refresh || !result.retry || !result.idle
          ? [
              result.store,
              num(result.total),
              result.skipped ?? 'not measured',
              '',
              '',
              '',
              '',
              '',
              '',
              '',
              '',
              '',
            ]
          : [
              result.store === 'memory' ? 'in-memory' : 'PostgreSQL',
              num(result.total),
              num(result.seedMs / 1000, 1),
              num(result.refresh.queued),
              num(result.refresh.ms),
              num((result.refresh.ms * 1000) / Math.max(1, result.refresh.queued), 1),
              mib(result.refresh.peakHeapBytes),
              num(result.retry.queued),
              num(result.retry.ms),
              num((result.retry.ms * 1000) / Math.max(1, result.retry.queued), 1),
              mib(result.retry.peakHeapBytes),
              ms(result.idle.ms),
            ],
      ),
      ['---', '--:', '--:', '--:', '--:', '--:', '--:', '--:', '--:', '--:', '--:', '--:'],
    ),
    '',
  ];
}

function memorySection(memory: MemoryResult): string[] {
  const perSubscription = (memory.seededRss - memory.emptyRss) / memory.subscriptions;
  const perSubscriptionHeap = (memory.seededHeap - memory.emptyHeap) / memory.subscriptions;
  const perDelivery = (memory.inFlightRss - memory.seededRss) / Math.max(1, memory.inFlight);
  const perDeliveryHeap = (memory.inFlightHeap - memory.seededHeap) / Math.max(1, memory.inFlight);
  return [
    '## Memory',
    '',
    'The sample app (`apps/sample`, Koa, in-memory store, queue and lock) in its own process, ' +
      'listening, after three forced garbage collections. Its subscriber is not started, so ' +
      'every delivery it accepts (answered 202) stays in the in-process queue, waiting for its ' +
      'handler: that is a delivery in flight. Run from TypeScript sources through tsx, whose ' +
      'loader thread adds to the idle figure (not to the per-record ones).',
    '',
    ...table(
      ['State', 'RSS MiB', 'heap used MiB'],
      [
        ['idle, no subscriptions', mib(memory.emptyRss), mib(memory.emptyHeap)],
        [
          `idle, ${num(memory.subscriptions)} subscriptions`,
          mib(memory.seededRss),
          mib(memory.seededHeap),
        ],
        [
          `${num(memory.inFlight)} deliveries in flight`,
          mib(memory.inFlightRss),
          mib(memory.inFlightHeap),
        ],
      ],
      ['---', '--:', '--:'],
    ),
    '',
    `Per subscription: ${num(perSubscription)} bytes resident (${num(perSubscriptionHeap)} bytes ` +
      `of heap). Per delivery in flight (2 KB body): ${num(perDelivery)} bytes resident ` +
      `(${num(perDeliveryHeap)} bytes of heap, the rest the 2 KB body's Buffer, which the ` +
      `in-process queue keeps as it came).`,
    '',
  ];
}

/** The report, as Markdown. */
export function renderReport(results: BenchResults, notesFile: URL): string {
  const { machine } = results;
  const minutes = (results.finishedAt.getTime() - results.startedAt.getTime()) / 60_000;
  const lines = [
    '# Benchmarks',
    '',
    `Generated by \`${results.command}\` on ${results.startedAt.toISOString().slice(0, 10)} ` +
      `(${num(minutes, 1)} minutes). Run it again with \`npm run bench\` at the repository root ` +
      '(`npm run bench -- --quick` skips the million-record step and shortens the runs; ' +
      '`--only=intake,profile,upkeep,memory` picks sections). Benchmarks are not tests: nothing ' +
      'here fails a build.',
    '',
    '## Machine',
    '',
    ...table(
      ['', ''],
      [
        ['CPU', `${machine.cpu}, ${machine.cores} cores`],
        ['Memory', `${num(machine.memoryGiB, 1)} GiB`],
        ['OS', `${machine.os}, Linux ${machine.kernel}`],
        ['Node.js', machine.node],
        ['PostgreSQL', results.servers.postgres ?? 'unreachable'],
        ['Redis', results.servers.redis ?? 'unreachable'],
        ['Commit', machine.commit],
        [
          'Load average (1, 5, 15 min)',
          `${machine.loadBefore.map((value) => num(value, 2)).join(', ')} at the start; ` +
            `${loadavg()
              .map((value) => num(value, 2))
              .join(', ')} at the end`,
        ],
        [
          'Packages',
          Object.entries(machine.packages)
            .map(([name, version]) => `${name} ${version}`)
            .join(', '),
        ],
      ],
    ),
    '',
    'This machine is shared: other work running at the same time shows in the load average above ' +
      'and lowers every throughput figure. The ratios compare cases measured in alternation ' +
      'within one run; server CPU per request is the steadier figure.',
    '',
  ];

  if (results.intake) lines.push(...intakeSection(results));
  if (results.profiles && results.profiles.length > 0)
    lines.push(...profileSection(results.profiles));
  if (results.upkeep) lines.push(...upkeepSection(results.upkeep));
  if (results.memory) lines.push(...memorySection(results.memory));

  lines.push(readFileSync(notesFile, 'utf8').trim(), '');
  return lines.join('\n');
}

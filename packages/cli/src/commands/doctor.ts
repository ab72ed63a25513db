import { randomUUID } from 'node:crypto';

import {
  MemoryLock,
  MemoryStore,
  type HealthReport,
  type Subscriber,
  type Subscription,
} from '@websubsub/core';

import type { CliConfig } from '../config.js';
import type { CommandContext } from '../context.js';
import { describeError, EXIT, exitCodeOf } from '../errors.js';
import { serialiseRecord, statusOf, type Output } from '../output.js';

/** What one check found: `warning` is worth knowing, only `failed` makes the doctor unhappy. */
export interface DoctorCheck {
  name: string;
  status: 'ok' | 'warning' | 'failed';
  detail: string;
}

/** The record problems `checkHealth` reports, with how `doctor` names and explains them. */
const PROBLEMS: Array<[keyof Omit<HealthReport, 'total' | 'byStatus'>, string, string]> = [
  [
    'gaveUp',
    'Given up',
    'retries exhausted; fix the cause, then reset-counters and subscribe again',
  ],
  ['unresolvable', 'Unresolvable', 'their handler is not configured; see purge-unresolvable'],
  [
    'staleCallbackUrls',
    'Stale callback URL',
    'the base URL or a handler path changed; see handle-url-changes',
  ],
  [
    'overdue',
    'Overdue',
    'due retries nobody took up: is the application (and its upkeep) running?',
  ],
  ['expired', 'Expired lease', 'verified, but the lease ended without a renewal'],
];

const elapsed = (started: number) => `${Date.now() - started} ms`;

function isUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** What the configuration itself says, before any server is asked. */
function checkConfiguration(file: string, config: CliConfig): DoctorCheck[] {
  const { settings } = config.subscriber;
  const handlers = [...settings.handlers.keys()];
  const declarations = config.staticSubscriptions ?? [];
  const checks: DoctorCheck[] = [
    {
      name: 'configuration',
      status: 'ok',
      detail:
        `${file}: base URL ${settings.baseUrl}, handler(s) ${handlers.join(', ')}, ` +
        `${declarations.length} static subscription(s)`,
    },
  ];

  const wrong: string[] = [];
  declarations.forEach((declaration, index) => {
    const where = `staticSubscriptions[${index}]`;
    if (!isUrl(declaration.topic)) wrong.push(`${where}: topic is not an http(s) URL`);
    if (declaration.hub !== undefined && !isUrl(declaration.hub)) {
      wrong.push(`${where}: hub is not an http(s) URL`);
    }
    if (declaration.handler !== undefined && !settings.handlers.has(declaration.handler)) {
      wrong.push(`${where}: handler ${declaration.handler} is not configured`);
    }
  });
  if (wrong.length > 0) {
    checks.push({ name: 'static subscriptions', status: 'failed', detail: wrong.join('; ') });
  }
  return checks;
}

/** The store answers a list and a count. */
async function checkStore(subscriber: Subscriber): Promise<DoctorCheck> {
  const started = Date.now();
  try {
    await subscriber.store.list({}, { limit: 1 });
    const total = await subscriber.store.count();
    const kind = kindOf(subscriber.store, 'store');
    // By name too: a configuration may have been built with another copy of core.
    if (subscriber.store instanceof MemoryStore || kind === 'MemoryStore') {
      return {
        name: 'store',
        status: 'warning',
        detail:
          'the embedded in-memory store answers, but it lives in this process only: the ' +
          "CLI sees none of the application's records",
      };
    }
    return {
      name: 'store',
      status: 'ok',
      detail: `${kind} answers: ${total} record(s) (${elapsed(started)})`,
    };
  } catch (error) {
    return { name: 'store', status: 'failed', detail: describeError(error) };
  }
}

/** Take a private key, check that a second taker is refused, and let go. */
async function checkLock(subscriber: Subscriber): Promise<DoctorCheck> {
  const started = Date.now();
  const key = `websubsub:doctor:${randomUUID()}`;
  try {
    const held = await subscriber.lock.acquire(key, 10_000);
    if (!held)
      return { name: 'lock', status: 'failed', detail: `could not take the free key ${key}` };
    try {
      const second = await subscriber.lock.acquire(key, 10_000);
      if (second) {
        await second.release();
        return {
          name: 'lock',
          status: 'failed',
          detail: 'a held key was handed out a second time',
        };
      }
    } finally {
      await held.release();
    }
    const kind = kindOf(subscriber.lock, 'lock');
    if (subscriber.lock instanceof MemoryLock || kind === 'MemoryLock') {
      return {
        name: 'lock',
        status: 'warning',
        detail:
          'the embedded in-process lock works, but excludes only within one process: this ' +
          'command and the application do not exclude each other',
      };
    }
    return {
      name: 'lock',
      status: 'ok',
      detail: `${kind}: acquire, exclusion and release work (${elapsed(started)})`,
    };
  } catch (error) {
    return { name: 'lock', status: 'failed', detail: describeError(error) };
  }
}

/**
 * The queue has every method of the contract. It is not given a job: a test job would stay
 * in a shared durable queue, where no worker knows how to run it.
 */
function checkQueue(subscriber: Subscriber): DoctorCheck {
  const queue = subscriber.queue as unknown as Record<string, unknown>;
  const methods = ['define', 'enqueue', 'every', 'start', 'stop', 'onFailure'];
  const missing = methods.filter((name) => typeof queue[name] !== 'function');
  if (missing.length > 0) {
    return { name: 'queue', status: 'failed', detail: `missing ${missing.join(', ')}` };
  }
  const kind = kindOf(subscriber.queue, 'queue');
  // The contract's own mark: jobs never leave this process.
  if (subscriber.queue.inProcess === true) {
    return {
      name: 'queue',
      status: 'warning',
      detail:
        'the embedded in-process queue: jobs run only in the process that queued them ' +
        '(commands run their own requests before they exit)',
    };
  }
  return {
    name: 'queue',
    status: 'ok',
    detail: `${kind} is a complete queue (not exercised: no test job is left in it)`,
  };
}

/** Declared subscriptions with a hub that the store does not hold yet. */
async function checkDeclared(config: CliConfig): Promise<DoctorCheck | null> {
  const { subscriber } = config;
  const missing: string[] = [];
  for (const declaration of config.staticSubscriptions ?? []) {
    if (!declaration.hub) continue;
    const handler = declaration.handler ?? subscriber.settings.defaultHandler;
    const stored = await subscriber.store.findByKey(declaration.hub, declaration.topic, handler);
    if (!stored) missing.push(declaration.topic);
  }
  if (missing.length === 0) return null;
  return {
    name: 'static subscriptions',
    status: 'warning',
    detail:
      `${missing.length} declared but not stored (run static-subscribe): ` +
      `${missing.join(', ')}`,
  };
}

function recordsCheck(health: HealthReport): DoctorCheck {
  const counts = PROBLEMS.map(([key, label]) => [label, health[key].length] as const).filter(
    ([, count]) => count > 0,
  );
  if (counts.length === 0) {
    return {
      name: 'records',
      status: 'ok',
      detail: `${health.total} record(s), none in a bad state`,
    };
  }
  return {
    name: 'records',
    status: 'failed',
    detail: counts.map(([label, count]) => `${count} ${label.toLowerCase()}`).join(', '),
  };
}

const MARKS = { ok: '[ok]  ', warning: '[warn]', failed: '[FAIL]' } as const;

async function print(out: Output, checks: DoctorCheck[], health: HealthReport | null) {
  const healthy = !checks.some((check) => check.status === 'failed');
  if (out.json) {
    const records = health && {
      total: health.total,
      byStatus: health.byStatus,
      ...Object.fromEntries(
        PROBLEMS.map(([key]) => [key, health[key].map((record) => serialiseRecord(record))]),
      ),
    };
    await out.document({ healthy, checks, records });
    return;
  }

  const width = Math.max(...checks.map((check) => check.name.length));
  const lines = checks.map(
    (check) => `${MARKS[check.status]} ${check.name.padEnd(width)}  ${check.detail}`,
  );
  if (health) {
    const byStatus = Object.entries(health.byStatus)
      .map(([status, count]) => `${status} ${count}`)
      .join(', ');
    lines.push('', `Records by status: ${byStatus || 'none'}`);
    for (const [key, label, advice] of PROBLEMS) {
      const records: Subscription[] = health[key];
      if (records.length === 0) continue;
      lines.push('', `${label} (${records.length}): ${advice}`);
      for (const record of records.slice(0, 20)) {
        const error = record.lastError ? `  ${record.lastError}` : '';
        lines.push(`  ${record.id}  ${statusOf(record)}  ${record.topic}${error}`);
      }
      if (records.length > 20) lines.push(`  … and ${records.length - 20} more (see --json)`);
    }
  }
  lines.push('', healthy ? 'Healthy.' : 'Unhealthy: see the checks marked FAIL.');
  await out.line(lines.join('\n'));
}

/** `doctor`: check configuration, store, lock and queue, and report records in bad states. */
export async function doctorCommand(context: CommandContext): Promise<number> {
  const { out } = context;

  let loaded;
  try {
    loaded = await context.load();
  } catch (error) {
    const checks: DoctorCheck[] = [
      { name: 'configuration', status: 'failed', detail: describeError(error) },
    ];
    await print(out, checks, null);
    return exitCodeOf(error);
  }

  const { config, file } = loaded;
  const { subscriber } = config;
  const checks = checkConfiguration(file, config);
  const store = await checkStore(subscriber);
  checks.push(store, await checkLock(subscriber), checkQueue(subscriber));

  let health: HealthReport | null = null;
  if (store.status !== 'failed') {
    const progress = out.progress();
    progress.tick('Looking through every record');
    try {
      const declared = await checkDeclared(config);
      if (declared) checks.push(declared);
      health = await subscriber.checkHealth();
      checks.push(recordsCheck(health));
    } catch (error) {
      checks.push({ name: 'records', status: 'failed', detail: describeError(error) });
    } finally {
      progress.done();
    }
  }

  await print(out, checks, health);
  return checks.some((check) => check.status === 'failed') ? EXIT.failed : EXIT.ok;
}

/** A class name when the adapter has one; factories that return plain objects get the role. */
function kindOf(adapter: object, role: string): string {
  const name = adapter.constructor?.name;
  return name && name !== 'Object' ? name : `the ${role}`;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { withUser } from '../src/roles.js';

/** PostgreSQL and Redis of this machine, as the other sample tests read them. */
export const SERVERS = {
  DATABASE_URL: withUser(process.env['DATABASE_URL'] ?? 'postgres://127.0.0.1:5432/test'),
  REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
};

/**
 * The lease the test hubs grant, in seconds. With FAST_UPKEEP (renewal from 3 s before the end,
 * a sweep every second) each lease is renewed 2–3 s after it was verified, with 2–3 s to spare.
 */
export const SHORT_LEASE_SECONDS = 5;

/** Upkeep on a scale of seconds, so that renewals and retries happen while a test watches. */
export const FAST_UPKEEP = {
  WEBSUBSUB_JOB_LOCK_LIFETIME: '3',
  WEBSUBSUB_REFRESH_INTERVAL: '1',
  WEBSUBSUB_RETRY_INTERVAL: '1',
  WEBSUBSUB_RENEW_BEFORE: '3',
  WEBSUBSUB_VERIFY_WAIT_TIME: '3',
  WEBSUBSUB_RETRY_BACKOFF_MAX: '4',
  WEBSUBSUB_HUB_TIMEOUT: '2',
};

/** A table and a Redis prefix of a test's own, so that runs never see each other's data. */
export function isolation(name: string): {
  WEBSUBSUB_POSTGRES_TABLE: string;
  WEBSUBSUB_REDIS_PREFIX: string;
} {
  const suffix = randomUUID().slice(0, 8);
  return {
    WEBSUBSUB_POSTGRES_TABLE: `websubsub_${name}_${suffix}`,
    WEBSUBSUB_REDIS_PREFIX: `websubsub-${name}-${suffix}:`,
  };
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Poll `check` until it returns something other than `undefined`; throw naming `what` after `ms`.
 */
export async function until<T>(
  check: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      // A request that failed on the way (an instance restarting) is polled again.
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? ` (last error: ${(lastError as Error).message})` : '';
      throw new Error(`Timed out after ${ms} ms waiting for ${what}${detail}`);
    }
    await sleep(everyMs);
  }
}

/** One request the forwarder passed on (or could not). */
export interface Forwarded {
  method: string;
  path: string;
  /** Index of the instance chosen. */
  target: number;
  /** What the instance answered; 502 when it did not answer. */
  status: number;
}

/**
 * Stands where a load balancer would, without being one: each request goes to an instance
 * chosen at random, dead or alive, exactly as received (method, path, headers, body bytes), and
 * its answer comes back as it is. A dead instance means a 502, so the hub sees the failure.
 */
export interface Forwarder {
  /** `http://127.0.0.1:PORT`: the SITE_URL every instance shares. */
  url: string;
  /** Ports of the instances, by index. */
  targets: number[];
  /** Every request passed on, in the order answered. */
  log: Forwarded[];
  close(): Promise<void>;
}

/** Hop-by-hop fields belong to one connection and are not passed on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

function passOn(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

/** Start a forwarder on a free port of 127.0.0.1 over instances listening on `targets`. */
export async function startForwarder(targets: number[] = []): Promise<Forwarder> {
  const log: Forwarded[] = [];
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const target = Math.floor(Math.random() * targets.length);
      const entry = { method: incoming.method ?? 'GET', path: incoming.url ?? '/', target };

      let failed = false;
      const fail = () => {
        if (failed) return;
        failed = true;
        log.push({ ...entry, status: 502 });
        if (!outgoing.headersSent) outgoing.writeHead(502, { 'content-type': 'text/plain' });
        outgoing.end('Instance unreachable');
      };
      const upstream = httpRequest(
        {
          host: '127.0.0.1',
          port: targets[target],
          method: entry.method,
          path: entry.path,
          headers: { ...passOn(incoming.headers), 'content-length': String(body.length) },
        },
        (answer) => {
          const answerChunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => answerChunks.push(chunk));
          answer.on('error', fail);
          answer.on('end', () => {
            const answerBody = Buffer.concat(answerChunks);
            log.push({ ...entry, status: answer.statusCode ?? 502 });
            outgoing.writeHead(answer.statusCode ?? 502, {
              ...passOn(answer.headers),
              'content-length': String(answerBody.length),
            });
            outgoing.end(answerBody);
          });
        },
      );
      upstream.on('error', fail);
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    targets,
    log,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A sample process (from its TypeScript sources, as `npm start` runs it) on a port of its own. */
export interface Instance {
  child: ChildProcess;
  port: number;
  /** `http://127.0.0.1:PORT`: this instance's own address, for the JSON API. */
  api: string;
  /** Every pino line it wrote so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** What it wrote to stderr so far. */
  stderr: () => string;
  /** Resolves with the exit code (null after a signal) once the process ends. */
  exited: Promise<number | null>;
  /** Is the process still running? */
  alive: () => boolean;
}

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '../src/main.ts');

/**
 * Start one sample process on `port` and wait until it listens. Like `startSampleProcess`, but
 * a failure to start quotes the process's own log lines (pino writes errors to stdout).
 */
export async function startInstance(port: number, env: Record<string, string>): Promise<Instance> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );

  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
    }
  });

  const listening = () => logs.some((entry) => String(entry['msg']).includes('listening on port'));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const said = () => `${logs.map((entry) => JSON.stringify(entry)).join('\n')}\n${stderr}`;
  const deadline = Date.now() + 30_000;
  while (!listening()) {
    if (!alive()) throw new Error(`The sample on port ${port} exited before listening:\n${said()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`The sample on port ${port} did not listen within 30 s:\n${said()}`);
    }
    await sleep(50);
  }

  return {
    child,
    port,
    api: `http://127.0.0.1:${port}`,
    logs,
    stderr: () => stderr,
    exited,
    alive,
  };
}

/**
 * Start `count` sample processes at once, as the replicas of one deployment start, each on its
 * own port, sharing `env`; the forwarder starts sending to them once all listen.
 */
export async function startInstances(
  count: number,
  env: Record<string, string>,
  forwarder: Forwarder,
): Promise<Instance[]> {
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const started = await Promise.allSettled(ports.map((port) => startInstance(port, env)));
  const instances = started.flatMap((result) =>
    result.status === 'fulfilled' ? [result.value] : [],
  );
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await killAll(instances);
    throw (failed as PromiseRejectedResult).reason;
  }

  forwarder.targets.push(...ports);
  return instances;
}

/** Kill every instance still running; never throws, for after() hooks. */
export async function killAll(instances: Instance[]): Promise<void> {
  await Promise.all(
    instances.map(async (instance) => {
      if (!instance.alive()) return;
      instance.child.kill('SIGKILL');
      await instance.exited;
    }),
  );
}

/** A JSON API call; `json` is null for an empty body. */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const response = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

/** A subscription as `GET /subscriptions` shows it (the fields these tests read). */
export interface SubscriptionJson {
  id: string;
  topic: string;
  callbackUrl: string;
  subscribeStatus: string;
  unsubscribeStatus: string | null;
  retryAt: string | null;
  lastError: string | null;
  lastSubscribeAt: string | null;
  leaseExpiresAt: string | null;
  connectionErrors: number;
  hubErrors: number;
  verifyTimeouts: number;
  verifyErrors: number;
}

/** A notification as `GET /notifications` shows it. */
export interface NotificationJson {
  subscriptionId: string;
  topic: string;
  body: string;
  receivedAt: string;
}

/** Every handler run the instances logged: `Notification received` lines. */
export function handlerRuns(
  instances: Instance[],
): Array<{ instance: number; subscriptionId: string; bytes: number }> {
  return instances.flatMap((instance, index) =>
    instance.logs
      .filter((entry) => entry['msg'] === 'Notification received')
      .map((entry) => ({
        instance: index,
        subscriptionId: String(entry['subscriptionId']),
        bytes: Number(entry['bytes']),
      })),
  );
}

/**
 * Content whose length alone tells deliveries to one subscription apart: delivery `n` is
 * `base + n` bytes long, so a handler's `bytes` log field names the delivery it ran for.
 */
export function numberedBody(label: string, n: number, base = 200): string {
  const head = `<entry><id>${label}/${n}</id><content>`;
  const tail = '</content></entry>';
  return head + 'x'.repeat(base + n - head.length - tail.length) + tail;
}

/** A redis-server of the test's own, with nothing kept on disk, that can be stopped and started. */
export interface RedisServer {
  url: string;
  port: number;
  start(): Promise<void>;
  /** Kill it (SIGKILL: no goodbye to clients) and wait until it is gone. */
  kill(): Promise<void>;
}

/** Run `redis-server` on a free port of 127.0.0.1. */
export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | null = null;

  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      const started = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child = started;
      await new Promise<void>((resolve, reject) => {
        let output = '';
        const timer = setTimeout(
          () => reject(new Error(`redis-server did not start: ${output}`)),
          10_000,
        );
        started.stdout!.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('Ready to accept connections')) {
            clearTimeout(timer);
            resolve();
          }
        });
        // No redis-server installed: a clear error rather than an unhandled 'error' event.
        started.once('error', (error) => {
          clearTimeout(timer);
          reject(new Error(`redis-server could not be run: ${error.message}`));
        });
        started.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`redis-server exited with ${code}: ${output}`));
        });
      });
    },
    async kill() {
      const running = child;
      child = null;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
  };
  await server.start();
  return server;
}

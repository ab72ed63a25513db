import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { sharedFixturesDir, skipUnlessCi } from '@websubsub/core/testing';
import {
  createNodeListener,
  createSubscriber,
  type Subscriber,
  type Subscription,
} from '@websubsub/core';
import { createPostgresStore, type PostgresStore } from '@websubsub/postgres';
import { startTestHub, type TestHub } from '@websubsub/testing';
import pg from 'pg';

/** The CLI's entry point, run from its TypeScript source as the tests run everything. */
export const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

/** Where the real-world fixtures live. */
export const FIXTURES = sharedFixturesDir();

/** The server the tests use; pg takes a missing user from PGUSER or USER, so name one. */
export const DATABASE_URL = ((): string => {
  const url = new URL(process.env['DATABASE_URL'] ?? 'postgres://127.0.0.1:5432/test');
  if (!url.username && !process.env['PGUSER'] && !process.env['USER']) {
    url.username = userInfo().username;
  }
  return url.href;
})();

async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    const reason = error instanceof Error ? error.message || error.name : String(error);
    return (
      `PostgreSQL at ${DATABASE_URL.replace(/\/\/[^@/]*@/, '//***@')} ` +
      `cannot be used: ${reason}`
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** Why PostgreSQL cannot be used, or `null`; probed once when the tests load. */
export const unavailable: string | null = await probe();

/** A `describe` needing PostgreSQL: skipped with the reason without it, failed under CI=true. */
export function describePostgres(title: string, define: () => void): void {
  describe(unavailable ? `${title} (skipped: ${unavailable})` : title, function () {
    before(function () {
      if (!unavailable) return;
      skipUnlessCi(this, unavailable);
    });
    define();
  });
}

/** What one run of the command printed and how it ended. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Variables of the parent environment that would change what the command does. */
const SCRUBBED = ['WEBSUBSUB_CONFIG', 'WEBSUBSUB_STATIC_SUBSCRIPTIONS'];

function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SCRUBBED) delete merged[name];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete merged[name];
    else merged[name] = value;
  }
  return merged;
}

// tsx by absolute URL: the command runs in a temporary directory, where `tsx` would not resolve.
const NODE_ARGS = ['--conditions=source', '--import', import.meta.resolve('tsx'), BIN];

/** Run `websubsub <args>` in a child process with pipes (no terminal) and collect its output. */
export function runCommand(
  args: string[],
  options: { cwd: string; env?: Record<string, string | undefined>; input?: string },
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_ARGS, ...args], {
      cwd: options.cwd,
      env: childEnv(options.env ?? {}),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Run `websubsub <args>` inside a real pseudo-terminal (util-linux `script`), answer its
 * question once it is asked, and collect everything the terminal showed.
 */
export function runInTerminal(
  args: string[],
  options: { cwd: string; env?: Record<string, string | undefined>; answer: string },
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, ...NODE_ARGS, ...args].map(shellQuote).join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      cwd: options.cwd,
      env: childEnv(options.env ?? {}),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    let answered = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      if (!answered && output.includes('[y/N]')) {
        answered = true;
        child.stdin.write(`${options.answer}\r`);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      child.stdin.destroy();
      resolve({ code, stdout: output, stderr: '' });
    });
  });
}

const shellQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

/** Is `script` (a real pseudo-terminal) available here? */
export async function hasScript(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('script', ['--version'], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

/** A name no other test run uses. */
export const randomName = (prefix: string): string => `${prefix}_${randomBytes(6).toString('hex')}`;

/** The configuration every test runs the CLI with: the PostgreSQL store, from the environment. */
function configSource(): string {
  const core = import.meta.resolve('@websubsub/core');
  const postgres = import.meta.resolve('@websubsub/postgres');
  return `import { createSubscriber } from ${JSON.stringify(core)};
import { createPostgresQueue, createPostgresStore } from ${JSON.stringify(postgres)};

const env = process.env;

export default async function () {
  const store = createPostgresStore({
    connectionString: env.WEBSUBSUB_TEST_DATABASE_URL,
    table: env.WEBSUBSUB_TEST_TABLE,
    migrate: env.WEBSUBSUB_TEST_MIGRATE !== 'off',
  });
  // WEBSUBSUB_TEST_QUEUE=postgres: the jobs table the application's workers share.
  const queue = env.WEBSUBSUB_TEST_QUEUE === 'postgres'
    ? createPostgresQueue({
        connectionString: env.WEBSUBSUB_TEST_DATABASE_URL,
        table: env.WEBSUBSUB_TEST_TABLE + '_jobs',
      })
    : undefined;
  const subscriber = createSubscriber({
    baseUrl: env.WEBSUBSUB_TEST_BASE_URL,
    handlers: { news: () => {}, sports: () => {} },
    store,
    ...(queue ? { queue } : {}),
    hubTimeoutMs: 5000,
  });
  return {
    subscriber,
    ...(env.WEBSUBSUB_TEST_STATIC
      ? { staticSubscriptions: JSON.parse(env.WEBSUBSUB_TEST_STATIC) }
      : {}),
    close: () => store.close(),
    migrate: () => store.migrate(),
  };
}
`;
}

/** A test world: a test hub, the application's callback server and a fresh table per test. */
export interface World {
  /** A temporary directory holding `websubsub.config.mjs`, the command's working directory. */
  readonly dir: string;
  readonly hub: TestHub;
  /** The callback server's origin: the configured base URL. */
  readonly origin: string;
  /** This test's table, schema-qualified. */
  readonly table: string;
  /** The test's own store on that table, for setting records up and reading them back. */
  readonly store: PostgresStore;
  /** The application: answers the hub's verifications at `origin`. */
  readonly app: Subscriber;
  /** Run the command in `dir` against this test's table. */
  run(args: string[], env?: Record<string, string | undefined>): Promise<CliRun>;
  /** The environment `run` gives the command. */
  env(extra?: Record<string, string | undefined>): Record<string, string | undefined>;
  /** Store a record as the application would have, with these fields changed. */
  insert(fields?: Partial<Subscription>): Promise<Subscription>;
}

/** Set a world up around the tests of the surrounding `describe`. */
export function useWorld(): World {
  const schema = randomName('websubsub_cli');
  let dir: string | undefined;
  let hub: TestHub | undefined;
  let server: Server | undefined;
  let origin = '';
  let tables = 0;
  let table = '';
  let store: PostgresStore | undefined;
  let app: Subscriber | undefined;

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'websubsub-cli-'));
    await writeFile(join(dir, 'websubsub.config.mjs'), configSource());

    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.end();

    hub = await startTestHub();
    // Each test has its own application subscriber (its own table): answer with the current one.
    const listener: RequestListener = (request, response) =>
      createNodeListener(app as Subscriber)(request, response);
    server = createServer(listener);
    await new Promise<void>((resolve) => (server as Server).listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(async function () {
    table = `${schema}.t${++tables}`;
    store = createPostgresStore({ connectionString: DATABASE_URL, table });
    await store.migrate();
    app = createSubscriber({
      baseUrl: origin,
      handlers: { news: () => {}, sports: () => {} },
      store,
      upkeep: false,
    });
    hub?.reset();
  });

  afterEach(async function () {
    await store?.close();
  });

  after(async function () {
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => (server as Server).close(() => resolve()));
    }
    await hub?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (hub) {
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    }
  });

  const world: World = {
    get dir() {
      return dir as string;
    },
    get hub() {
      return hub as TestHub;
    },
    get origin() {
      return origin;
    },
    get table() {
      return table;
    },
    get store() {
      return store as PostgresStore;
    },
    get app() {
      return app as Subscriber;
    },
    env: (extra = {}) => ({
      WEBSUBSUB_TEST_DATABASE_URL: DATABASE_URL,
      WEBSUBSUB_TEST_TABLE: table,
      WEBSUBSUB_TEST_BASE_URL: origin,
      ...extra,
    }),
    run: (args, env = {}) => runCommand(args, { cwd: world.dir, env: world.env(env) }),
    insert: (fields = {}) => {
      const id = fields.id ?? randomUUID();
      const defaults = { id, hub: world.hub.url, topic: world.hub.topicUrl(`/topics/${id}`) };
      return world.store.create(makeRecord(origin, { ...defaults, ...fields }));
    },
  };
  return world;
}

/** A record as the application stores a verified subscription, with these fields changed. */
export function makeRecord(origin: string, fields: Partial<Subscription> = {}): Subscription {
  const id = fields.id ?? randomUUID();
  const handler = fields.handler ?? 'news';
  const now = Date.now();
  return {
    id,
    // Loopback addresses only, should a command ever send a request for this record.
    topic: `http://127.0.0.1:9/topics/${id}`,
    hub: 'http://127.0.0.1:9/hub',
    handler,
    callbackUrl: `${origin}/websub/${handler}/${id}`,
    secret: null,
    previousSecret: null,
    retiredCallbackUrl: null,
    leaseSeconds: null,
    leaseExpiresAt: new Date(now + 86_400_000),
    subscribeStatus: 'verified',
    unsubscribeStatus: null,
    connectionErrors: 0,
    hubErrors: 0,
    verifyTimeouts: 0,
    verifyErrors: 0,
    lastSubscribeAt: new Date(now - 60_000),
    lastUnsubscribeAt: null,
    createdAt: new Date(now - 120_000),
    lastDeliveryAt: null,
    deniedReason: null,
    lastError: null,
    retryAt: null,
    static: false,
    discoveredFrom: null,
    hubDiscovered: false,
    ...fields,
  };
}

/** Parse the single JSON document a `--json` run printed. */
export function parseJson<T = Record<string, unknown>>(run: CliRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document:\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

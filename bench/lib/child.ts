import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildSync } from 'esbuild';

/** A message between the bench and one of its child processes. */
export interface Message {
  type: string;
  [key: string]: unknown;
}

/** A child process running one bench script, spoken to over IPC. */
export interface Child {
  process: ChildProcess;
  /** Send a request and wait for the answer of the same type. */
  ask(request: Message, timeoutMs?: number): Promise<Message>;
  /** The next message of this type. */
  next(type: string, timeoutMs?: number): Promise<Message>;
  /** The child's `ready` message; rejects with the error of its `failed` message instead. */
  ready(timeoutMs?: number): Promise<Message>;
  /** Ask the child to exit, and kill it when it does not within a few seconds. */
  stop(): Promise<void>;
}

const BENCH = fileURLToPath(new URL('../', import.meta.url));
/** Beside `bench/`, so that paths relative to a script (fixtures, node_modules) still hold. */
const COMPILED = join(BENCH, '..', '.bench-build');
let compiled = false;

/**
 * The bench scripts as plain JavaScript, compiled once per run. Servers are measured as users
 * run them: workspace packages from their builds, and no loader in the process (tsx compiles
 * with esbuild's `keepNames`, which costs a call per closure created, on every request).
 */
function compiledScript(script: string): string {
  if (!compiled) {
    rmSync(COMPILED, { recursive: true, force: true });
    const entryPoints = (readdirSync(BENCH, { recursive: true }) as string[])
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
      .map((file) => join(BENCH, file));
    buildSync({
      entryPoints,
      outdir: COMPILED,
      outbase: BENCH,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'warning',
    });
    writeFileSync(join(COMPILED, 'package.json'), '{ "type": "module" }\n');
    compiled = true;
  }
  return join(COMPILED, script.replace(/\.ts$/, '.js'));
}

/**
 * Start a bench script in its own process, so that the load generator never shares its event
 * loop: compiled to JavaScript against the packages' builds (run `npm run build` first, as
 * `npm run bench` does), or with `fromSources` through tsx with the workspace's TypeScript
 * sources (for the sample app, which is run that way).
 */
export function startChild(
  script: string,
  args: string[] = [],
  options: { env?: NodeJS.ProcessEnv; execArgv?: string[]; fromSources?: boolean } = {},
): Child {
  const path = options.fromSources
    ? fileURLToPath(new URL(`../${script}`, import.meta.url))
    : compiledScript(script);
  const loader = options.fromSources ? ['--import', 'tsx', '--conditions=source'] : [];
  const child = fork(path, args, {
    execArgv: [...loader, ...(options.execArgv ?? [])],
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });

  const waiting = new Map<string, Array<(message: Message) => void>>();
  const backlog: Message[] = [];
  child.on('message', (raw) => {
    const message = raw as Message;
    const resolvers = waiting.get(message.type);
    const resolve = resolvers?.shift();
    if (resolve) resolve(message);
    else backlog.push(message);
  });

  const exited = once(child, 'exit');

  function next(type: string, timeoutMs = 120_000): Promise<Message> {
    const queued = backlog.findIndex((message) => message.type === type);
    if (queued >= 0) return Promise.resolve(backlog.splice(queued, 1)[0] as Message);

    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${script}: no "${type}" message within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const failed = (code: unknown) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited (${String(code)}) before sending "${type}"`));
      };
      child.once('exit', failed);

      const list = waiting.get(type) ?? [];
      list.push((message) => {
        clearTimeout(timer);
        child.off('exit', failed);
        resolve(message);
      });
      waiting.set(type, list);
    });
  }

  return {
    process: child,
    next,
    async ready(timeoutMs) {
      const failed = next('failed', timeoutMs).then((message) => {
        throw new Error(`${script} failed: ${String(message['error'])}`);
      });
      // Whichever loses the race rejects later, when the child exits; nobody waits for it then.
      failed.catch(() => {});
      return Promise.race([next('ready', timeoutMs), failed]);
    },
    async ask(request, timeoutMs) {
      const answer = next(request.type, timeoutMs);
      child.send(request);
      return answer;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;

      if (child.connected) child.send({ type: 'exit' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** In a child: answer requests of each type with the given function. */
export function serveParent(
  handlers: Record<string, (message: Message) => Promise<unknown>>,
): void {
  process.on('message', (raw) => {
    const message = raw as Message;
    if (message.type === 'exit') {
      process.exit(0);
    }
    const handler = handlers[message.type];
    if (!handler) return;

    handler(message).then(
      (answer) => process.send?.({ type: message.type, ...(answer as object) }),
      (error: unknown) => process.send?.({ type: message.type, error: String(error) }),
    );
  });
}

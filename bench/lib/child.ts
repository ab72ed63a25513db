import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

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

/**
 * Start a bench script in its own process (TypeScript through tsx, workspace packages from
 * their sources), so that the load generator never shares its event loop.
 */
export function startChild(
  script: string,
  args: string[] = [],
  options: { env?: NodeJS.ProcessEnv; execArgv?: string[] } = {},
): Child {
  const path = fileURLToPath(new URL(`../${script}`, import.meta.url));
  const child = fork(path, args, {
    execArgv: ['--import', 'tsx', '--conditions=source', ...(options.execArgv ?? [])],
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

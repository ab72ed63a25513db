import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  createMemoryQueue,
  JOBS,
  createNodeListener,
  type JobDefinition,
  type JobData,
  type JobFailureListener,
  type JobProcessor,
  type JobQueue,
  type EnqueueOptions,
  type MemoryQueue,
} from '@websubsub/core';

/** A real server for a subscriber's callbacks, listening before the subscriber exists. */
export interface CallbackServer {
  origin: string;
  attach(endpoint: Parameters<typeof createNodeListener>[0]): void;
  close(): Promise<void>;
}

export async function startCallbackServer(): Promise<CallbackServer> {
  let listener: ReturnType<typeof createNodeListener> | null = null;
  const server: Server = createServer((request, response) => {
    if (listener) listener(request, response);
    else response.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    attach(endpoint) {
      listener = createNodeListener(endpoint);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Poll until `check` gives a truthy value, or fail naming `what`. */
export async function eventually<T>(
  check: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The real in-process queue, with content deliveries allowed a single attempt (a failing handler
 * is given up at once instead of after 30 seconds of backoff) and quick retries of the rest.
 */
export class SingleDeliveryAttemptQueue implements JobQueue {
  readonly inner: MemoryQueue = createMemoryQueue({ backoffMs: 10 });

  define<T extends JobData>(name: string, processor: JobProcessor<T>, options: JobDefinition = {}) {
    this.inner.define(
      name,
      processor,
      name === JOBS.deliver ? { ...options, attempts: 1 } : options,
    );
  }
  enqueue(name: string, data: JobData, options?: EnqueueOptions) {
    return this.inner.enqueue(name, data, options);
  }
  every(name: string, intervalMs: number, data?: JobData) {
    return this.inner.every(name, intervalMs, data);
  }
  start() {
    return this.inner.start();
  }
  stop() {
    return this.inner.stop();
  }
  onFailure(listener: JobFailureListener) {
    this.inner.onFailure(listener);
  }
  idle() {
    return this.inner.idle();
  }
}

/**
 * The value of one sample in Prometheus text exposition, found by name and exact label set;
 * `undefined` when the registry printed no such line.
 */
export function sampleValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;

    const found: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      found[pair[1] as string] = pair[2] as string;
    }
    const same =
      Object.keys(found).length === Object.keys(labels).length &&
      Object.entries(labels).every(([key, value]) => found[key] === value);
    if (!same) continue;

    const raw = match[3] as string;
    return raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
  }
  return undefined;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

import { skipUnlessCi } from '@websubsub/core/testing';
import { Redis } from 'ioredis';

/** The Redis the tests use. */
export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Skip the calling suite when Redis is unreachable, or fail it when CI=true, where a missing
 * Redis is a broken setup rather than a developer machine without one.
 */
export async function requireRedis(context: Mocha.Context): Promise<void> {
  const probe = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});

  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    const message = `Redis is unreachable at ${redisUrl} (set REDIS_URL): ${String(error)}`;
    skipUnlessCi(context, message);
  } finally {
    probe.disconnect();
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on at the moment. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** A throwaway redis-server on a free port, for tests that need several independent nodes. */
export interface ExtraRedis {
  url: string;
  stop(): Promise<void>;
}

/** Start a redis-server of our own, or resolve null when the binary is not installed. */
export async function startRedisServer(): Promise<ExtraRedis | null> {
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', ''], {
      stdio: 'ignore',
    });
    await Promise.race([
      once(child, 'spawn'),
      once(child, 'error').then(([error]) => Promise.reject(error)),
    ]);
  } catch {
    return null;
  }

  // Wait until it answers, so that the test starts from a node that is up.
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 20 });
  probe.on('error', () => {});
  await probe.ping();
  probe.disconnect();

  return {
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createNodeListener, type CallbackEndpoint } from '../../src/index.js';

/** A real server for a subscriber's callbacks; its origin is known before the subscriber exists. */
export interface CallbackServer {
  origin: string;
  /** Start answering with this endpoint's callbacks. */
  attach(endpoint: CallbackEndpoint): void;
  close(): Promise<void>;
}

export async function startCallbackServer(): Promise<CallbackServer> {
  let listener: ReturnType<typeof createNodeListener> | null = null;
  const server: Server = createServer((request, response) => {
    if (listener) listener(request, response);
    else response.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${address.port}`,
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

/** A free port on 127.0.0.1, for a server whose URL must be known before it starts. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Poll until `check` holds, or fail with `what` after `timeoutMs`. */
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

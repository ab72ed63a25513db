/**
 * The sample app in its own process, for the memory figures: resident memory idle, then with
 * 100,000 subscriptions in its in-memory store, then with deliveries accepted and waiting for
 * their handler. The subscriber is not started, so every accepted delivery stays in the queue.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// The sample is an app, not a package with exports: its sources are loaded directly.
import { createSampleApp, readConfig } from '../../apps/sample/src/index.js';
import { silentLogger } from '@websubsub/core';

import { serveParent } from '../lib/child.js';
import { SUBSCRIPTION_ID } from '../lib/delivery.js';
import { verifiedRecord } from '../lib/records.js';

const subscriptions = Number(process.argv[2] ?? 100_000);

function settle(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let pass = 0; pass < 3; pass++) gc?.();
  return process.memoryUsage();
}

async function main(): Promise<void> {
  const config = readConfig({ PORT: '0', SITE_URL: 'http://127.0.0.1', LOG_LEVEL: 'silent' });
  const sample = await createSampleApp(config, silentLogger);
  const server: Server = sample.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));

  let accepted = 0;
  sample.subscriber.on('delivery:accepted', () => accepted++);
  const empty = settle();

  // The sample's one handler is named `sample`; its callbacks live under /websub/sample/.
  const now = new Date();
  const handler = 'sample';
  const path = (id: string) => `/websub/${handler}/${id}`;
  await sample.roles.store.create(
    verifiedRecord(SUBSCRIPTION_ID, now, {
      handler,
      callbackUrl: `http://127.0.0.1${path(SUBSCRIPTION_ID)}`,
    }),
  );
  for (let index = 1; index < subscriptions; index++) {
    const id = randomUUID();
    await sample.roles.store.create(
      verifiedRecord(id, now, {
        handler,
        callbackUrl: `http://127.0.0.1${path(id)}`,
        topic: `https://blog.example.com/feed/${index}`,
      }),
    );
  }
  const seeded = settle();

  serveParent({
    measure: async () => ({ accepted, usage: settle() }),
  });
  process.send?.({
    type: 'ready',
    port: (server.address() as AddressInfo).port,
    callbackPath: path(SUBSCRIPTION_ID),
    subscriptions,
    empty,
    seeded,
  });
}

main().catch((error: unknown) => {
  process.send?.({ type: 'failed', error: error instanceof Error ? error.stack : String(error) });
  process.exit(1);
});

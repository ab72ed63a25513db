/**
 * `npm run demo`: the whole WebSub cycle on this machine, with no outside service. A local test
 * hub serves a feed and distributes entries; the sample app discovers it, subscribes, answers
 * the verification of intent and receives the signed entries through its queue.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { silentLogger } from '@websubsub/core';
import { startTestHub } from '@websubsub/testing';

import { createSampleApp, readConfig } from './index.js';

const step = (text: string) => process.stdout.write(`\n▶ ${text}\n`);
const detail = (text: string) => process.stdout.write(`  ${text}\n`);

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function waitFor<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const entry = (n: number) =>
  `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Demo feed</title>
  <entry><id>urn:demo:${n}</id><title>Entry number ${n}</title>` +
  `<updated>${new Date().toISOString()}</updated></entry>
</feed>`;

async function main(): Promise<void> {
  step('Starting a local WebSub hub (a spec-following test hub from @websubsub/testing)');
  const hub = await startTestHub();
  detail(`hub endpoint: ${hub.url}`);
  const topic = hub.serveFeed('/demo/feed.xml', {
    body: entry(0),
    contentType: 'application/atom+xml; charset=utf-8',
  });
  detail(`topic feed:   ${topic} (advertises the hub in Link headers)`);
  hub.on('verified', (verification) =>
    detail(
      `hub → callback: verification of intent (${verification.mode}), ` +
        `answered ${verification.status}`,
    ),
  );

  step('Starting the sample app on the embedded store, queue and lock');
  const port = await freePort();
  const config = readConfig({
    ...process.env,
    PORT: String(port),
    SITE_URL: `http://127.0.0.1:${port}`,
  });
  const sample = await createSampleApp(config, silentLogger);
  await sample.listen();
  const api = `http://127.0.0.1:${port}`;
  detail(`sample app:   ${api}`);

  try {
    step(
      `POST ${api}/subscriptions  { "topic": "${topic}", "secret": "…" }  (no hub: discover it)`,
    );
    const created = await fetch(`${api}/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic, secret: 'demo-secret-0123456789', leaseSeconds: 3600 }),
    });
    const subscription = (await created.json()) as Record<string, string>;
    detail(`${created.status}: id ${subscription['id']}, hub ${subscription['hub']}`);
    detail(`callback URL: ${subscription['callbackUrl']}`);

    step('Waiting for the hub to verify intent');
    const verified = await waitFor(async () => {
      const response = await fetch(`${api}/subscriptions/${subscription['id']}`);
      const json = (await response.json()) as Record<string, string>;
      return json['subscribeStatus'] === 'verified' ? json : undefined;
    }, 'verification');
    detail(
      `subscribeStatus: ${verified['subscribeStatus']}, lease ends ${verified['leaseExpiresAt']}`,
    );

    step('Publishing three entries; the hub signs each with the subscription secret (HMAC-SHA256)');
    for (const n of [1, 2, 3]) {
      const [result] = await hub.publish(topic, {
        body: entry(n),
        contentType: 'application/atom+xml; charset=utf-8',
      });
      detail(`entry ${n}: callback answered ${result?.status}`);
    }
    const [forged] = await hub.publish(topic, { body: entry(99), signature: 'invalid' });
    detail(`a forged entry (wrong signature): callback answered ${forged?.status}, and drops it`);

    step(`GET ${api}/notifications`);
    const notifications = await waitFor(async () => {
      const response = await fetch(`${api}/notifications`);
      const list = (await response.json()) as Array<Record<string, string>>;
      return list.length >= 3 ? list : undefined;
    }, 'three notifications');
    for (const notification of notifications) {
      const title = /<entry>.*<title>([^<]*)<\/title>/s.exec(notification['body'] ?? '')?.[1];
      detail(`${notification['receivedAt']}  ${notification['contentType']}  "${title}"`);
    }

    step(`DELETE ${api}/subscriptions/${subscription['id']}`);
    await fetch(`${api}/subscriptions/${subscription['id']}`, { method: 'DELETE' });
    const gone = await waitFor(async () => {
      const response = await fetch(`${api}/subscriptions/${subscription['id']}`);
      const json = (await response.json()) as Record<string, string>;
      return json['unsubscribeStatus'] === 'verified' ? json : undefined;
    }, 'unsubscription');
    detail(`unsubscribeStatus: ${gone['unsubscribeStatus']}`);
    const [late] = await hub.publish(topic, { body: entry(4) });
    detail(
      `a later delivery is answered ${late?.status ?? 'not at all'} (the hub no longer delivers)`,
    );

    step(
      'Done: discovery, subscription, verification, signed delivery and unsubscription all worked.',
    );
  } finally {
    await sample.close();
    await hub.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`Demo failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

// CPU per delivery through core alone: the neutral handler, the signature check, the embedded
// queue and the handler run, with no HTTP.
// Run after `npm run build` (core from its build): node --import tsx bench/core-delivery.ts
import { createHmac, randomUUID } from 'node:crypto';
import { createMemoryQueue, createMemoryStore, createSubscriber } from '@websubsub/core';
import { makeSubscription } from '@websubsub/core/testing';

const store = createMemoryStore();
const queue = createMemoryQueue();
let handled = 0;
const subscriber = createSubscriber({
  baseUrl: 'http://127.0.0.1:1',
  handlers: { news: () => void handled++ },
  store,
  queue,
  upkeep: false,
});
const id = randomUUID();
await store.create(
  makeSubscription({
    id,
    handler: 'news',
    callbackUrl: `http://127.0.0.1:1/websub/news/${id}`,
    secret: 'secret',
    leaseExpiresAt: new Date(Date.now() + 1e9),
    subscribeStatus: 'verified',
  }),
);
await subscriber.start();
const body = Buffer.from('<entry>' + 'x'.repeat(2000) + '</entry>');
const sig = 'sha256=' + createHmac('sha256', 'secret').update(body).digest('hex');
const request = {
  method: 'POST',
  url: `/websub/news/${id}`,
  body,
  headers: {
    'content-type': 'application/atom+xml',
    'x-hub-signature': sig,
    host: 'x',
    'content-length': '2015',
    'user-agent': 'autocannon',
    connection: 'keep-alive',
  },
};
async function round(n: number) {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const answer = await subscriber.handle(request);
    if (answer.status !== 202) throw new Error(String(answer.status));
    if (i % 100 === 99) await queue.idle();
  }
  await queue.idle();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}
await round(20000);
const results = [];
for (let r = 0; r < 5; r++) results.push(await round(20000));
console.log(
  'µs CPU per delivery (accept + handle):',
  results.map((x) => x.toFixed(1)).join(' '),
  'handled',
  handled,
);
await subscriber.stop();

// Scratch: createNodeListener under load, for profiling.
import { createHmac, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { createMemoryStore, createNodeListener, createSubscriber } from '@websubsub/core';

const store = createMemoryStore();
let handled = 0;
const subscriber = createSubscriber({
  baseUrl: 'http://127.0.0.1:3999', handlers: { news: () => void handled++ }, store, upkeep: false,
});
const id = '6f1c1d2e-8a4b-4c3d-9e2f-0a1b2c3d4e5f';
await store.create({
  id, topic: 'https://t.example/feed', hub: 'https://h.example/', handler: 'news',
  callbackUrl: `http://127.0.0.1:3999/websub/news/${id}`, secret: 'secret', leaseSeconds: null,
  leaseExpiresAt: new Date(Date.now() + 1e9), subscribeStatus: 'verified', unsubscribeStatus: null,
  connectionErrors: 0, hubErrors: 0, verifyTimeouts: 0, verifyErrors: 0, lastSubscribeAt: null,
  lastUnsubscribeAt: null, createdAt: new Date(), lastDeliveryAt: null, deniedReason: null,
  lastError: null, retryAt: null, static: false, discoveredFrom: null,
});
await subscriber.start();
const server = createServer(process.argv[2] === 'bare' ? (req, res) => { req.resume(); req.on('end', () => { res.writeHead(202); res.end(); }); } : createNodeListener(subscriber));
server.listen(3999, '127.0.0.1');
let n = 0; let c0 = process.cpuUsage(); server.on('request', () => { if (n++ === 0) c0 = process.cpuUsage(); }); setTimeout(() => { const c = process.cpuUsage(c0); console.log('requests', n, 'µs CPU per request', ((c.user + c.system) / n).toFixed(1)); process.exit(0); }, 8000);

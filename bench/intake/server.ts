/**
 * One intake case's HTTP server, run in its own process by the intake benchmark: it listens on
 * 127.0.0.1, reports its port over IPC, and answers `stats` with what it accepted and handled.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';

import { PostgresBackend } from '@agendajs/postgres-backend';
import { RedisBackend } from '@agendajs/redis-backend';
import { createAgendaQueue } from '@websubsub/agenda';
import {
  createMemoryStore,
  createNodeListener,
  createSubscriber,
  endOfTurn,
  type SubscriberOptions,
} from '@websubsub/core';
import { createExpressMiddleware } from '@websubsub/express';
import { createKoaMiddleware } from '@websubsub/koa';
import { createPostgresQueue, createPostgresStore } from '@websubsub/postgres';
import { createRedlockLock } from '@websubsub/redlock';
import { Agenda } from 'agenda';
import express from 'express';
import { Redis } from 'ioredis';
import Koa from 'koa';
import pg from 'pg';
import pubsubhubbub from 'pubsubhubbub';

import { serveParent } from '../lib/child.js';
import { HANDLER, SECRET, SUBSCRIPTION_ID, TOPIC, HUB } from '../lib/delivery.js';
import { baseUrl, verifiedRecord } from '../lib/records.js';
import { databaseUrl, redisUrl } from '../lib/services.js';
import { mountOf } from './cases.js';

const name = process.argv[2] ?? '';
const counts = { accepted: 0, rejected: 0, handled: 0 };

/** Read the whole body, as the baselines must before answering. */
function readAll(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function bareNode(): RequestListener {
  return (request, response) => {
    readAll(request).then(() => {
      response.writeHead(202);
      response.end();
    });
  };
}

/**
 * Bare `node:http` answering as core's mount does: at the end of the event loop's turn, with
 * the other answers of that turn. Shows what that alone is worth, with no HMAC, store or queue.
 */
function bareNodeTurn(): RequestListener {
  return (request, response) => {
    readAll(request)
      .then(() => endOfTurn())
      .then(() => {
        response.writeHead(202);
        response.end();
      });
  };
}

/**
 * Bare `node:http` plus the one step the protocol asks of every subscriber with a secret before
 * it hands content on: the HMAC of the body, compared in constant time. No store, no queue.
 */
function bareNodeHmac(): RequestListener {
  return (request, response) => {
    readAll(request).then((body) => {
      const header = String(request.headers['x-hub-signature'] ?? '');
      const given = Buffer.from(header.slice(header.indexOf('=') + 1), 'hex');
      const expected = createHmac('sha256', SECRET).update(body).digest();
      response.writeHead(given.length === expected.length ? 202 : 403);
      if (given.length === expected.length && timingSafeEqual(given, expected)) counts.accepted++;
      response.end();
    });
  };
}

function bareKoa(): RequestListener {
  const app = new Koa();
  app.use(async (ctx) => {
    await readAll(ctx.req);
    ctx.status = 202;
  });
  return app.callback();
}

function bareExpress(): RequestListener {
  const app = express();
  app.use((request, response, next) => {
    readAll(request).then(() => response.status(202).end(), next);
  });
  return app;
}

function peer(): RequestListener {
  const subscriber = pubsubhubbub.createServer({
    callbackUrl: `${baseUrl}/pubsubhubbub`,
    secret: SECRET,
  });
  subscriber.on('feed', () => {
    counts.accepted++;
    counts.handled++;
  });
  subscriber.on('error', () => counts.rejected++);
  return subscriber.listener();
}

/**
 * The roles of the durable cases: PostgreSQL store, Redlock on Redis, and Agenda on Redis
 * (`durable-*`) or on PostgreSQL (`durablepg-*`), or the PostgreSQL queue (`durablepgq-*`).
 */
async function durableRoles(): Promise<Pick<SubscriberOptions, 'store' | 'queue' | 'lock'>> {
  const table = process.env['BENCH_TABLE'];
  const prefix = process.env['BENCH_REDIS_PREFIX'];
  if (!table || !prefix) throw new Error('BENCH_TABLE and BENCH_REDIS_PREFIX are required');

  const store = createPostgresStore({ connectionString: databaseUrl, table });
  await store.migrate();
  const lock = createRedlockLock({ clients: [new Redis(redisUrl)], prefix: `${prefix}lock:` });

  if (name.startsWith('durablepgq-')) {
    const queue = createPostgresQueue({ connectionString: databaseUrl, table: `${table}_jobs` });
    await queue.migrate();
    return { store, queue, lock };
  }

  const backend = name.startsWith('durablepg-')
    ? new PostgresBackend({
        pool: new pg.Pool({ connectionString: databaseUrl }),
        tableName: `${table}_jobs`,
        channelName: `${table}_jobs`,
      })
    : new RedisBackend({
        redis: new Redis(redisUrl),
        keyPrefix: prefix,
        channelName: `${prefix}jobs`,
      });
  const agenda = new Agenda({ backend, name: 'bench' });
  await agenda.ready;
  return { store, queue: createAgendaQueue({ agenda }), lock };
}

async function websub(durable: boolean): Promise<RequestListener> {
  const roles = durable ? await durableRoles() : { store: createMemoryStore() };
  await roles.store?.create(verifiedRecord(SUBSCRIPTION_ID, new Date()));

  const subscriber = createSubscriber({
    baseUrl,
    handlers: {
      [HANDLER]: async () => {
        counts.handled++;
      },
    },
    ...roles,
  });
  subscriber.on('delivery:accepted', () => counts.accepted++);
  subscriber.on('delivery:rejected', () => counts.rejected++);
  await subscriber.start();

  switch (mountOf(name)) {
    case 'koa': {
      const app = new Koa();
      app.use(createKoaMiddleware(subscriber));
      return app.callback();
    }
    case 'express': {
      const app = express();
      app.use(createExpressMiddleware(subscriber));
      return app;
    }
    default:
      return createNodeListener(subscriber);
  }
}

async function listener(): Promise<RequestListener> {
  switch (name) {
    case 'bare-node':
      return bareNode();
    case 'bare-koa':
      return bareKoa();
    case 'bare-express':
      return bareExpress();
    case 'bare-node-hmac':
      return bareNodeHmac();
    case 'bare-node-turn':
      return bareNodeTurn();
    case 'peer':
      return peer();
    default:
      if (!/^(core|durable|durablepg|durablepgq)-(node|koa|express)$/.test(name))
        throw new Error(`Unknown case ${name}`);
      return websub(name.startsWith('durable'));
  }
}

async function main(): Promise<void> {
  const server = createServer(await listener());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  let requests = 0;
  server.on('request', () => requests++);
  let mark = { cpu: process.cpuUsage(), requests: 0 };
  const profiler = new Session();

  serveParent({
    // Server CPU per request is the figure that contention from other processes disturbs least.
    mark: async () => {
      mark = { cpu: process.cpuUsage(), requests };
      return {};
    },
    stats: async () => {
      const cpu = process.cpuUsage(mark.cpu);
      const served = requests - mark.requests;
      return {
        ...counts,
        served,
        cpuMicrosPerRequest: served > 0 ? (cpu.user + cpu.system) / served : null,
        rss: process.memoryUsage().rss,
      };
    },
    // Profiling through the inspector leaves start-up and warm-up out of the profile.
    profileStart: async () => {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 500 });
      await profiler.post('Profiler.start');
      return {};
    },
    profileStop: async (message) => {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(String(message['file']), JSON.stringify(profile));
      profiler.disconnect();
      return {};
    },
  });
  const { port } = server.address() as AddressInfo;
  process.send?.({ type: 'ready', port, topic: TOPIC, hub: HUB });
}

main().catch((error: unknown) => {
  process.send?.({ type: 'failed', error: error instanceof Error ? error.stack : String(error) });
  process.exit(1);
});

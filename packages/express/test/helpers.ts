import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  createMemoryQueue,
  createSubscriber,
  type HandlerDefinition,
  type MemoryQueue,
  type Notification,
  type Subscriber,
  type Subscription,
} from '@websubsub/core';
import type { MountedAdapter } from '@websubsub/core/testing';
import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';

/** Listen on 127.0.0.1 with a port of the system's choosing. */
export async function listen(listener: RequestListener): Promise<MountedAdapter> {
  const server: Server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A subscriber, its app on a real port and the test hub, for one test. */
export interface Harness {
  origin: string;
  hub: TestHub;
  subscriber: Subscriber;
  queue: MemoryQueue;
  received: Notification[];
  /** Subscribe through the hub and wait until the callback confirmed the verification. */
  subscribed(secret?: string): Promise<Subscription>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Path of the subscriber's `baseUrl` under the origin, e.g. `/base`. @default '' */
  basePath?: string;
  /** `maxBodyBytes` of the subscriber. @default the subscriber's */
  maxBodyBytes?: number;
  /** Path of the one handler, `news`. @default `/websub/news` */
  handlerPath?: string;
}

/**
 * Start a server whose requests go to the app `build` makes for a subscriber whose `baseUrl`
 * is that server: the port must be known before the subscriber, the subscriber before the app.
 */
export async function harness(
  build: (subscriber: Subscriber) => RequestListener,
  options: HarnessOptions = {},
): Promise<Harness> {
  let app: RequestListener | null = null;
  const mounted = await listen((request, response) => app?.(request, response));
  const hub = await startTestHub();

  const received: Notification[] = [];
  const queue = createMemoryQueue({ backoffMs: 10 });
  const news: HandlerDefinition = {
    handle: (notification) => void received.push(notification),
    ...(options.handlerPath ? { path: options.handlerPath } : {}),
  };
  const subscriber = createSubscriber({
    baseUrl: `${mounted.origin}${options.basePath ?? ''}`,
    handlers: { news },
    queue,
    upkeep: false,
    ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}),
  });
  app = build(subscriber);
  await subscriber.start();

  return {
    origin: mounted.origin,
    hub,
    subscriber,
    queue,
    received,
    async subscribed(secret) {
      const topic = hub.topicUrl(`/topics/${Math.random().toString(36).slice(2)}`);
      const record = await subscriber.subscribe({ topic, hub: hub.url, secret: secret ?? null });

      await hub.waitFor(() => hub.verifications.some((entry) => entry.topic === topic));
      const verification = hub.verifications.find((entry) => entry.topic === topic)!;
      expect(verification.confirmed, verification.reason).to.equal(true);
      return (await subscriber.get(record.id)) as Subscription;
    },
    async close() {
      await subscriber.stop();
      await mounted.close();
      await hub.close();
    },
  };
}

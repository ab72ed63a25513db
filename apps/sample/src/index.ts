import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createSubscriber, type Logger, type Subscriber } from '@websubsub/core';
import { createKoaMiddleware } from '@websubsub/koa';
import Koa from 'koa';

import { createApiRouter, jsonErrors, parseJsonBody } from './api.js';
import { mountObservability } from './observability.js';
import type { SampleConfig } from './config.js';
import type { NotificationLog } from './notifications.js';
import { createRoles, type Roles } from './roles.js';

export { readConfig, ConfigError, type SampleConfig } from './config.js';

/** The assembled sample: Koa app, subscriber and received notifications. */
export interface SampleApp {
  app: Koa;
  subscriber: Subscriber;
  notifications: NotificationLog;
  roles: Roles;
  /** Listen on the configured port (0 for any); resolves with the bound port. */
  listen(port?: number): Promise<number>;
  /** Stop listening, drain running jobs, close what was opened. */
  close(): Promise<void>;
}

/** Build the sample app from its configuration. */
export async function createSampleApp(config: SampleConfig, logger: Logger): Promise<SampleApp> {
  const roles = await createRoles(config, logger);
  const notifications = roles.notifications;

  const subscriber = createSubscriber({
    baseUrl: config.siteUrl,
    handlers: {
      sample: async (notification) => {
        const entry = await notifications.add(notification);
        logger.info(
          {
            subscriptionId: entry.subscriptionId,
            topic: entry.topic,
            contentType: entry.contentType,
            bytes: notification.body.length,
          },
          'Notification received',
        );
      },
    },
    store: roles.store,
    queue: roles.queue,
    lock: roles.lock,
    logger,
    ...(config.defaultHub ? { defaultHub: config.defaultHub } : {}),
    http: { blockPrivateAddresses: config.blockPrivateAddresses },
    hubTimeoutMs: config.hubTimeout * 1000,
    refreshIntervalMs: config.refreshInterval * 1000,
    retryIntervalMs: config.retryInterval * 1000,
    renewBeforeMs: config.renewBefore * 1000,
    verifyWaitMs: config.verifyWaitTime * 1000,
    retryBackoffMaxMs: config.retryBackoffMax * 1000,
    maxRetries: {
      connectionErrors: config.maxConnectionRetries,
      hubErrors: config.maxHubErrorRetries,
      verifyTimeouts: config.maxVerifyTimeouts,
      verifyErrors: config.maxVerifyErrors,
    },
  });

  const app = new Koa();
  app.on('error', (error: unknown) => logger.error({ error }, 'Request failed'));
  // Callbacks first, so their signed bodies reach the subscriber before any parser.
  app.use(createKoaMiddleware(subscriber));
  const observability = mountObservability(app, subscriber, config, logger);
  app.use(jsonErrors);
  app.use(parseJsonBody());
  const api = createApiRouter(subscriber, notifications);
  app.use(api.routes());
  app.use(api.allowedMethods());

  let server: Server | null = null;
  return {
    app,
    subscriber,
    notifications,
    roles,
    async listen(port = config.port) {
      await subscriber.start();
      const listening = app.listen(port);
      // A client gets 30 s to send a whole request (Node allows 300): slow senders holding
      // connections and half-read bodies are cut off sooner.
      listening.requestTimeout = 30_000;
      listening.headersTimeout = 20_000;
      server = listening;
      await new Promise<void>((resolve, reject) => {
        listening.once('listening', resolve);
        listening.once('error', reject);
      });
      return (listening.address() as AddressInfo).port;
    },
    async close() {
      observability.close();
      if (server) {
        const closing = server;
        server = null;
        closing.closeAllConnections();
        await new Promise<void>((resolve) => closing.close(() => resolve()));
      }
      await subscriber.stop();
      await roles.close();
    },
  };
}

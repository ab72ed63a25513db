import { InvalidInputError, type Logger, type Subscriber } from '@websubsub/core';
import { createDashboard, type Dashboard } from '@websubsub/dashboard';
import { createKoaMiddleware } from '@websubsub/koa';
import {
  createMetrics,
  createMetricsEndpoint,
  type SubscriberMetrics,
} from '@websubsub/prometheus';
import type Koa from 'koa';

import { ConfigError, type SampleConfig } from './config.js';

/** Where the sample serves its Prometheus metrics. */
export const METRICS_PATH = '/metrics';

/** Where the sample serves its dashboard. */
export const DASHBOARD_PATH = '/dashboard';

/** The metrics and dashboard mounted on the sample's app. */
export interface Observability {
  metrics: SubscriberMetrics;
  /** `null` while `WEBSUBSUB_DASHBOARD_TOKEN` is not set. */
  dashboard: Dashboard | null;
  /** Stop listening to the subscriber's events. */
  close(): void;
}

/**
 * Serve Prometheus metrics at `/metrics` (open, as scrapers expect on an internal network) and
 * the dashboard at `/dashboard`, opened by `WEBSUBSUB_DASHBOARD_TOKEN` (as a bearer token, the
 * sign-in form or `?token=` once). Without a token the dashboard answers 404 and says how to
 * turn it on. Mount it before any body parser, so the dashboard reads its own forms.
 */
export function mountObservability(
  app: Koa,
  subscriber: Subscriber,
  config: Pick<SampleConfig, 'dashboardToken'>,
  logger: Logger,
): Observability {
  const metrics = createMetrics({ subscriber, logger, defaultMetrics: true });
  app.use(
    createKoaMiddleware(createMetricsEndpoint(metrics.registry, { path: METRICS_PATH, logger })),
  );

  if (config.dashboardToken === null) {
    logger.info(
      {},
      `Dashboard off: set WEBSUBSUB_DASHBOARD_TOKEN to serve it at ${DASHBOARD_PATH}`,
    );
    app.use(async (ctx, next) => {
      if (ctx.path !== DASHBOARD_PATH && !ctx.path.startsWith(`${DASHBOARD_PATH}/`)) return next();
      ctx.status = 404;
      ctx.type = 'text/plain';
      ctx.body = 'The dashboard is off: set WEBSUBSUB_DASHBOARD_TOKEN to turn it on.';
    });
    return { metrics, dashboard: null, close: () => metrics.close() };
  }

  let dashboard: Dashboard;
  try {
    dashboard = createDashboard({
      subscriber,
      token: config.dashboardToken,
      basePath: DASHBOARD_PATH,
      logger,
    });
  } catch (error) {
    metrics.close();
    if (error instanceof InvalidInputError) {
      throw new ConfigError(`WEBSUBSUB_DASHBOARD_TOKEN cannot be used: ${error.message}`);
    }
    throw error;
  }
  app.use(createKoaMiddleware(dashboard));
  logger.info(
    { path: DASHBOARD_PATH },
    `Dashboard at ${DASHBOARD_PATH}, metrics at ${METRICS_PATH}`,
  );

  return {
    metrics,
    dashboard,
    close() {
      dashboard.close();
      metrics.close();
    },
  };
}

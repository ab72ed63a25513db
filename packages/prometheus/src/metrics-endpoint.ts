import {
  silentLogger,
  type CallbackEndpoint,
  type CallbackRequest,
  type CallbackResponse,
  type Logger,
} from '@websubsub/core';
import type { Registry } from 'prom-client';

/** Options of `createMetricsEndpoint`. */
export interface MetricsEndpointOptions {
  /** The path the metrics are served at. @default '/metrics' */
  path?: string;
  /**
   * Decide whether a scrape may read the metrics; refused scrapes get 401. @default everyone may
   */
  authorize?: (request: CallbackRequest) => boolean | Promise<boolean>;
  /** Told when the registry fails to render. @default silent */
  logger?: Logger;
}

const plain = (
  status: number,
  body: string,
  headers: Record<string, string> = {},
): CallbackResponse => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8', ...headers },
  body,
});

/**
 * Serve a registry's text exposition at one path, as the same framework-neutral endpoint the
 * callback routes use, so any websubsub HTTP adapter mounts it:
 * `app.use(createKoaMiddleware(createMetricsEndpoint(metrics.registry)))`.
 */
export function createMetricsEndpoint(
  registry: Registry,
  options: MetricsEndpointOptions = {},
): CallbackEndpoint {
  const path = options.path ?? '/metrics';
  const logger = options.logger ?? silentLogger;

  return {
    // A scrape has no body; anything larger is refused by the adapter before it is read.
    maxBodyBytes: 1024,
    // Mount with the adapters' middleware: their route helpers add `/:id`, which fits callbacks
    // only.
    callbackPaths: [path],
    isCallbackPath: (pathname) => pathname === path,
    async handle(request) {
      const method = request.method.toUpperCase();
      if (method !== 'GET' && method !== 'HEAD') {
        return plain(405, 'Method not allowed', { allow: 'GET, HEAD' });
      }

      try {
        if (options.authorize && !(await options.authorize(request))) {
          return plain(401, 'Unauthorized', { 'www-authenticate': 'Bearer' });
        }
        const text = await registry.metrics();
        return { status: 200, headers: { 'content-type': registry.contentType }, body: text };
      } catch (error) {
        logger.error({ error }, 'Could not authorize or render a scrape');
        return plain(500, 'Metrics are unavailable');
      }
    },
  };
}

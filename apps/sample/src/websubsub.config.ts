import { readFile } from 'node:fs/promises';

import type { CliConfig } from '@websubsub/cli';
import type { StaticSubscription } from '@websubsub/core';
import { pino } from 'pino';

import { ConfigError, createSampleApp, readConfig } from './index.js';
import { createLogger } from './logging.js';

/**
 * Read the static subscriptions from a JSON file: an array of objects, each with a `"topic"`
 * URL and optionally a `"hub"` URL, a `"handler"` name, `"leaseSeconds"` (a number or null)
 * and a `"secret"` (a string or null). Without a hub the topic is discovered. Throws
 * `ConfigError` naming the file and what is wrong.
 */
export async function readStaticSubscriptions(path: string): Promise<StaticSubscription[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`WEBSUBSUB_STATIC_SUBSCRIPTIONS: cannot read ${path}: ${reason}`);
  }
  if (!Array.isArray(parsed)) {
    throw new ConfigError(`WEBSUBSUB_STATIC_SUBSCRIPTIONS: ${path} must hold a JSON array`);
  }

  const fields: Record<string, string[]> = {
    topic: ['string'],
    hub: ['string'],
    handler: ['string'],
    leaseSeconds: ['number', 'null'],
    secret: ['string', 'null'],
  };
  parsed.forEach((entry: unknown, index) => {
    const where = `${path}[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new ConfigError(`WEBSUBSUB_STATIC_SUBSCRIPTIONS: ${where} must be an object`);
    }
    if (!('topic' in entry)) {
      throw new ConfigError(`WEBSUBSUB_STATIC_SUBSCRIPTIONS: ${where} needs a "topic"`);
    }
    for (const [name, value] of Object.entries(entry)) {
      const kind = value === null ? 'null' : typeof value;
      if (!fields[name]?.includes(kind)) {
        throw new ConfigError(
          `WEBSUBSUB_STATIC_SUBSCRIPTIONS: ${where}.${name} is not a known field of the right type`,
        );
      }
    }
  });
  return parsed as StaticSubscription[];
}

/**
 * The `websubsub` command's view of the sample: its subscriber built exactly as the app builds
 * it (same environment variables, store, queue, lock and handlers), so that callback URLs and
 * records agree with the running app.
 */
export default async function config(): Promise<CliConfig> {
  const settings = readConfig();
  // Logs go to stderr, so that stdout carries only what the command prints (`--json` included).
  const logger = createLogger(process.env['LOG_LEVEL'] ?? 'warn', pino.destination(2));

  const path = process.env['WEBSUBSUB_STATIC_SUBSCRIPTIONS']?.trim();
  const staticSubscriptions = path ? await readStaticSubscriptions(path) : undefined;

  const sample = await createSampleApp(settings, logger);
  const store = sample.subscriber.store as { migrate?: () => Promise<unknown> };
  const migrate = store.migrate?.bind(store);

  return {
    subscriber: sample.subscriber,
    ...(staticSubscriptions ? { staticSubscriptions } : {}),
    close: () => sample.close(),
    ...(migrate ? { migrate } : {}),
  };
}

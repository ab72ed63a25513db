import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { StaticSubscription, Subscriber } from '@websubsub/core';

import { CliConfigError, describeError } from './errors.js';

/** What a configuration file gives the `websubsub` command. */
export interface CliConfig {
  /**
   * The application's subscriber, built exactly as the application builds it: the same store,
   * queue, lock, handlers and base URL, so that callback URLs and records agree.
   */
  subscriber: Subscriber;
  /** Subscriptions declared in configuration, for `static-subscribe`. @default none */
  staticSubscriptions?: StaticSubscription[];
  /**
   * Release what building the subscriber opened (pools, clients), after the command.
   * @default the subscriber's store and lock are closed (each closes only what it opened)
   */
  close?(): Promise<void>;
  /**
   * Create or upgrade the store's schema, for `migrate`; what it resolves with is printed. @default
   * none
   */
  migrate?(): Promise<unknown>;
}

/** What a configuration module exports: the configuration, or a function that builds it. */
export type CliConfigSource = CliConfig | (() => CliConfig | Promise<CliConfig>);

/** Type a configuration file's export; returns it unchanged. */
export function defineConfig<T extends CliConfigSource>(config: T): T {
  return config;
}

/** Files looked for in the working directory, in this order, when none is named. */
export const CONFIG_FILES: readonly string[] = [
  'websubsub.config.js',
  'websubsub.config.mjs',
  'websubsub.config.cjs',
];

/** Where to find the configuration. */
export interface LoadConfigOptions {
  /** The file named by `--config`. @default `WEBSUBSUB_CONFIG`, else the first of `CONFIG_FILES` */
  file?: string;
  /** Directory relative names resolve against. */
  cwd: string;
  /** Environment, for `WEBSUBSUB_CONFIG`. */
  env: NodeJS.ProcessEnv;
}

/** A loaded configuration and the absolute path of the file it came from. */
export interface LoadedConfig {
  file: string;
  config: CliConfig;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The configuration file to load; throws `CliConfigError` when there is none. */
export async function findConfigFile(options: LoadConfigOptions): Promise<string> {
  const named = options.file ?? options.env['WEBSUBSUB_CONFIG'];
  if (named !== undefined && named.trim() !== '') {
    const file = resolve(options.cwd, named);
    if (!(await isFile(file))) {
      const source = options.file !== undefined ? '--config' : 'WEBSUBSUB_CONFIG';
      throw new CliConfigError(`Configuration file not found: ${file} (from ${source})`);
    }
    return file;
  }

  for (const name of CONFIG_FILES) {
    const file = resolve(options.cwd, name);
    if (await isFile(file)) return file;
  }
  throw new CliConfigError(
    `No configuration file: pass --config <file>, set WEBSUBSUB_CONFIG, or create ` +
      `${CONFIG_FILES.join(', ')} in ${options.cwd}`,
  );
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null;

/** Duck-typed, so that a configuration built with another copy of core is accepted too. */
function isSubscriber(value: unknown): value is Subscriber {
  if (!isObject(value)) return false;
  const methods = ['start', 'stop', 'list', 'get', 'applyStaticSubscriptions', 'checkHealth'];
  return (
    methods.every((name) => typeof value[name] === 'function') &&
    isObject(value['store']) &&
    isObject(value['queue']) &&
    isObject(value['lock'])
  );
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The export a module offers: `default`, else `config`, looking through one CJS wrapping. */
function exportOf(module: Record<string, unknown>): unknown {
  let candidate = module['default'] ?? module['config'];
  // `module.exports = { config }` or a transpiled `exports.default` arrive one level deeper.
  if (isObject(candidate) && !('subscriber' in candidate)) {
    candidate = candidate['default'] ?? candidate['config'] ?? candidate;
  }
  return candidate;
}

function checkConfig(value: unknown, file: string): CliConfig {
  if (!isObject(value)) {
    throw new CliConfigError(
      `${file} must export an object with a subscriber (or a function returning one); ` +
        `got ${kindOf(value)}`,
    );
  }
  if (!isSubscriber(value['subscriber'])) {
    throw new CliConfigError(
      `${file}: "subscriber" must be a Subscriber made by createSubscriber; ` +
        `got ${kindOf(value['subscriber'])}`,
    );
  }

  const declared = value['staticSubscriptions'];
  if (declared !== undefined) {
    if (!Array.isArray(declared)) {
      throw new CliConfigError(
        `${file}: "staticSubscriptions" must be an array; got ${kindOf(declared)}`,
      );
    }
    declared.forEach((declaration: unknown, index) => {
      if (!isObject(declaration) || typeof declaration['topic'] !== 'string') {
        throw new CliConfigError(`${file}: staticSubscriptions[${index}] needs a "topic" string`);
      }
    });
  }

  for (const name of ['close', 'migrate']) {
    if (value[name] !== undefined && typeof value[name] !== 'function') {
      throw new CliConfigError(`${file}: "${name}" must be a function; got ${kindOf(value[name])}`);
    }
  }
  return value as unknown as CliConfig;
}

/**
 * Find, import and check the configuration. A module may export the configuration or a
 * function (sync or async) building it. Throws `CliConfigError` saying what is wrong.
 */
export async function loadCliConfig(options: LoadConfigOptions): Promise<LoadedConfig> {
  const file = await findConfigFile(options);

  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    const code = isObject(error) ? error['code'] : undefined;
    const hint =
      code === 'ERR_UNKNOWN_FILE_EXTENSION'
        ? ' (Node loads JavaScript only: build the file, ' +
          'or run the command with `node --import tsx`)'
        : '';
    throw new CliConfigError(`Could not load ${file}: ${describeError(error)}${hint}`, {
      cause: error,
    });
  }

  let exported = exportOf(module);
  if (exported === undefined) {
    throw new CliConfigError(`${file} has no default export and no export named "config"`);
  }
  if (typeof exported === 'function') {
    try {
      exported = await (exported as () => unknown)();
    } catch (error) {
      throw new CliConfigError(`The configuration in ${file} failed: ${describeError(error)}`, {
        cause: error,
      });
    }
  }

  return { file, config: checkConfig(exported, file) };
}

/** Stop the subscriber, then release what the configuration opened. */
export async function closeCliConfig(config: CliConfig): Promise<void> {
  await config.subscriber.stop();

  if (config.close) {
    await config.close();
    return;
  }
  await config.subscriber.store.close?.();
  await config.subscriber.lock.close?.();
}

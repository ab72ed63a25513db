import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

import { ConfigError } from './config.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * The sample's pino logger. Library code logs failures under `error`; pino's error serializer is
 * applied to that key too, so messages, codes and stacks reach the log.
 */
export function createLogger(level: string, destination?: DestinationStream): PinoLogger {
  if (!LEVELS.includes(level)) {
    throw new ConfigError(
      `LOG_LEVEL must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(level)}`,
    );
  }
  const options = {
    level,
    serializers: { error: pino.stdSerializers.err, err: pino.stdSerializers.err },
  };
  return destination ? pino(options, destination) : pino(options);
}

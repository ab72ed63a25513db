/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/**
 * The logger the subscriber writes to. Its shape is pino's (fields first, then the message),
 * so a pino logger can be passed as it is. The default writes nothing.
 */
export interface Logger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

const ignore = (): void => {};

/** A logger that writes nothing: the library stays quiet unless given one. */
export const silentLogger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };

import { InvalidInputError, WebSubError } from '@websubsub/core';

/** Exit codes of the `websubsub` command. */
export const EXIT = {
  /** The command did what it was asked and found nothing wrong. */
  ok: 0,
  /** The command ran but failed, or `doctor` found something unhealthy. */
  failed: 1,
  /** Bad arguments, a configuration that cannot be loaded, or a refused confirmation. */
  usage: 2,
} as const;

/** Thrown for arguments the command cannot use, and for a destructive command not confirmed. */
export class UsageError extends WebSubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('usage', message, options);
  }
}

/** Thrown when the configuration file is missing, cannot be loaded or exports nothing usable. */
export class CliConfigError extends WebSubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('cli_config', message, options);
  }
}

/** The exit code an error ends the command with: invalid input of any kind is a usage error. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || error instanceof CliConfigError) return EXIT.usage;
  if (error instanceof InvalidInputError) return EXIT.usage;
  return EXIT.failed;
}

/** The message of any thrown value and of the errors it wraps, for one line on stderr. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);

  const parts = [error.message || error.name];
  let cause: unknown = error.cause;
  // Adapter errors wrap the driver's: its message (e.g. "connection refused") is the useful part.
  for (let depth = 0; cause instanceof Error && depth < 3; depth++) {
    const message = cause.message || cause.name;
    if (!parts.some((part) => part.includes(message))) parts.push(message);
    cause = cause.cause;
  }
  return parts.join(': ');
}

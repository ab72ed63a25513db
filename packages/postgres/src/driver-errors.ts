/** Does a `pg` error report a unique index violation (SQLSTATE 23505)? */
export const isUniqueViolation = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';

/**
 * The driver's message, for wrapping errors; dual-stack connection failures have none of their own.
 */
export function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.message || (error as { code?: string }).code || error.name;
}

/** An error as a log line wants it: its message and driver code, not the connection it holds. */
export function briefly(error: unknown): { error: string; code?: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return {
    error: error instanceof Error ? error.message : String(error),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

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

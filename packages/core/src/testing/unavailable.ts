/**
 * What a test does when something it needs is missing (a server, a binary): skip with the
 * reason printed, or, under `CI=true`, fail, since there a missing service is a broken setup
 * rather than a developer machine without it. Call it from a `before` or a test.
 */
export function skipUnlessCi(context: Mocha.Context, reason: string): never {
  if (process.env['CI'] === 'true') throw new Error(`${reason}; CI=true requires it`);
  console.warn(`      skipped: ${reason}`);
  context.skip();
}

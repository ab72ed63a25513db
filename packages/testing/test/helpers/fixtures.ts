import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the shared real-world fixtures live (`shared/` beside the repository); override with
 * WEBSUB_FIXTURES.
 */
export const FIXTURES_DIR =
  process.env.WEBSUB_FIXTURES ??
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../../shared/fixtures');

/** A fixture's raw header lines as (name, value) pairs, in wire order. */
export function fixtureHeaders(file: string): Array<[string, string]> {
  return readFileSync(path.join(FIXTURES_DIR, file), 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon), line.slice(colon + 1).trim()];
    });
}

/** A fixture's exact bytes. */
export function fixtureBytes(file: string): Buffer {
  return readFileSync(path.join(FIXTURES_DIR, file));
}

/** The machine-readable expectations of the notification fixtures. */
export function notificationCases(): Array<{ name: string; algorithm: string }> {
  const cases = JSON.parse(readFileSync(path.join(FIXTURES_DIR, 'cases.json'), 'utf8')) as {
    notifications: Array<{ name: string; algorithm: string }>;
  };
  return cases.notifications;
}

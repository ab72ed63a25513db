import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Where the shared real-world fixtures live: WEBSUB_FIXTURES, else the nearest
 * `shared/fixtures` above the working directory (beside the repository). This package does
 * not depend on core, whose `sharedFixturesDir` looks the same way.
 */
export const FIXTURES_DIR = ((): string => {
  const given = process.env.WEBSUB_FIXTURES;
  if (given !== undefined) return given;
  for (let dir = process.cwd(); path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'shared', 'fixtures');
    if (existsSync(path.join(candidate, 'cases.json'))) return candidate;
  }
  throw new Error(`No shared/fixtures above ${process.cwd()}: set WEBSUB_FIXTURES`);
})();

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

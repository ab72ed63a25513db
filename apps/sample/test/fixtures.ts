import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { sharedFixturesDir } from '@websubsub/core/testing';

/** The shared fixtures: WEBSUB_FIXTURES, else the nearest `shared/fixtures` above. */
export const FIXTURES = sharedFixturesDir();

interface DiscoveryCase {
  name: string;
  url: string;
  from: string;
  hubs: string[];
  self: string;
}

/** The expectations of every fixture, as `cases.json` states them. */
export const cases = JSON.parse(readFileSync(join(FIXTURES, 'cases.json'), 'utf8')) as {
  discovery: DiscoveryCase[];
  notifications: Array<{ name: string; algorithm: string; expect: string }>;
};

/** Header lines of a fixture, in wire order. */
export function headerLines(text: string): Array<[string, string]> {
  return text
    .split('\n')
    .filter((line) => line.includes(':'))
    .map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
    });
}

/** A discovery fixture with its hub and self URLs pointed at local servers. */
export function discoveryDocument(name: string, hubUrl: string, selfUrl: string) {
  const found = cases.discovery.find((entry) => entry.name === name);
  if (!found) throw new Error(`No discovery fixture ${name}`);
  const swap = (text: string) =>
    text
      .split(found.hubs[0] as string)
      .join(hubUrl)
      .split(found.self)
      .join(selfUrl);

  const headers = readFileSync(join(FIXTURES, 'discovery', `${name}.headers`), 'utf8');
  const body = readFileSync(join(FIXTURES, 'discovery', `${name}.body`), 'latin1');
  return {
    case: found,
    headers: headerLines(swap(headers)),
    body: Buffer.from(swap(body), 'latin1'),
    path: new URL(found.url).pathname,
  };
}

/** A notification fixture: headers, exact body bytes and secret. */
export function notification(name: string) {
  const base = join(FIXTURES, 'notifications', name);
  return {
    headers: headerLines(readFileSync(`${base}.headers`, 'utf8')),
    body: readFileSync(`${base}.body`),
    secret: readFileSync(`${base}.secret`, 'utf8'),
  };
}

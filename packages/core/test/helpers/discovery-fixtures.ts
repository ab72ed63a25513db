import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';

import { sharedFixturesDir } from '../../src/testing/index.js';

/** The shared fixtures: beside the repository, or where WEBSUB_FIXTURES says. */
export const FIXTURES_DIR = sharedFixturesDir();

/** One discovery expectation from cases.json. */
export interface DiscoveryCase {
  name: string;
  url: string;
  from: 'link-header' | 'html' | 'atom' | 'rss';
  hubs: string[];
  self: string;
}

/** A topic response as a publisher served it: header lines in wire order and exact bytes. */
export interface DiscoveryFixture {
  headers: Array<[string, string]>;
  body: Buffer;
  /** The header and body text, to tell absolute URLs the fixture spells out from relative ones. */
  text: string;
}

/** Every discovery case in cases.json. */
export function loadDiscoveryCases(): DiscoveryCase[] {
  const cases = JSON.parse(readFileSync(join(FIXTURES_DIR, 'cases.json'), 'utf8')) as {
    discovery: DiscoveryCase[];
  };
  return cases.discovery;
}

/** Read `discovery/NAME.headers` and `discovery/NAME.body`. */
export function loadDiscoveryFixture(name: string): DiscoveryFixture {
  const rawHeaders = readFileSync(join(FIXTURES_DIR, 'discovery', `${name}.headers`), 'utf8');
  const body = readFileSync(join(FIXTURES_DIR, 'discovery', `${name}.body`));

  const headers: Array<[string, string]> = [];
  for (const line of rawHeaders.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { headers, body, text: `${rawHeaders}\n${body.toString('utf8')}` };
}

/** The fixture's headers as a header map, repeated names as arrays in order. */
export function headerMap(fixture: DiscoveryFixture): Record<string, string | string[]> {
  const map: Record<string, string | string[]> = {};
  for (const [name, value] of fixture.headers) {
    const key = name.toLowerCase();
    const previous = map[key];
    map[key] = previous === undefined ? value : [previous, value].flat();
  }
  return map;
}

/** Send a fixture as a 200 response: each header line its own field, in order, then the bytes. */
export function serveFixture(
  response: ServerResponse,
  fixture: DiscoveryFixture,
  method: string,
): void {
  response.sendDate = false;
  const raw = fixture.headers.flat();
  raw.push('Content-Length', String(fixture.body.length));
  response.writeHead(200, raw);
  response.end(method === 'HEAD' ? undefined : fixture.body);
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { summariseProfile, type ProfileSummary } from '../lib/profile.js';
import { INTAKE_CASES } from './cases.js';
import { closeServer, loadServer, openServer } from './run.js';

/** A CPU profile of one case's server under saturation. */
export interface CaseProfile {
  name: string;
  label: string;
  rps: number;
  summary: ProfileSummary;
}

/**
 * Profile one case's server while it is loaded to saturation: the V8 sampling profiler is
 * started through the inspector after a warm-up, so start-up and compilation stay out of it.
 */
export async function profileCase(
  name: string,
  settings: { connections: number; warmupS: number; durationS: number },
): Promise<CaseProfile> {
  const entry = INTAKE_CASES.find((candidate) => candidate.name === name);
  if (!entry) throw new Error(`Unknown case ${name}`);

  const dir = mkdtempSync(join(tmpdir(), 'websubsub-bench-profile-'));
  const file = join(dir, `${name}.cpuprofile`);
  const server = await openServer(entry);
  try {
    await loadServer(server, { ...settings, durationS: settings.warmupS });
    await server.child.ask({ type: 'profileStart' });
    const result = await loadServer(server, settings);
    await server.child.ask({ type: 'profileStop', file });

    return { name, label: entry.label, rps: result.rps, summary: summariseProfile(file) };
  } finally {
    await closeServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One function's share of the samples of a CPU profile. */
export interface Frame {
  /** `function (file:line)`, the file relative to the repository or under node_modules. */
  name: string;
  /** Share of all samples spent in the function itself. */
  selfShare: number;
}

/** Where a profile's samples went: top functions and groups of code. */
export interface ProfileSummary {
  topFrames: Frame[];
  /** Share of samples per group: idle, GC, Node's HTTP, websubsub core, each library… */
  groups: Array<{ group: string; share: number }>;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function shortUrl(url: string): string {
  if (url === '') return '';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const modules = path.lastIndexOf('node_modules/');
  return modules >= 0 ? path.slice(modules + 'node_modules/'.length) : relative(ROOT, path);
}

/** The group a frame's code belongs to. */
function groupOf(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  if (functionName === '(idle)') return 'idle (waiting for I/O)';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)') return 'V8 and native code outside JS';
  if (url === '') return `native: ${functionName || '(anonymous)'}`;

  const short = shortUrl(url);
  if (short.startsWith('node:internal/http') || short.startsWith('node:_http')) return 'Node HTTP';
  if (short.startsWith('node:')) return 'Node other (streams, net, timers, events)';
  if (short.startsWith('packages/core/')) return 'websubsub core';
  if (short.startsWith('packages/')) return `websubsub ${short.split('/')[1] ?? ''}`;
  if (short.startsWith('@')) return short.split('/').slice(0, 2).join('/');
  return short.split('/')[0] ?? short;
}

/** Summarise a `.cpuprofile` written by `node --cpu-prof`: self time per function and group. */
export function summariseProfile(file: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[] };
  const total = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0) || 1;

  const byFrame = new Map<string, number>();
  const byGroup = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;

    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    const where = url ? ` (${shortUrl(url)}:${lineNumber + 1}:${columnNumber + 1})` : '';
    const name = `${functionName || '(anonymous)'}${where}`;
    byFrame.set(name, (byFrame.get(name) ?? 0) + hits);
    const group = groupOf(node);
    byGroup.set(group, (byGroup.get(group) ?? 0) + hits);
  }

  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]);
  return {
    topFrames: sorted(byFrame)
      .slice(0, top)
      .map(([name, hits]) => ({ name, selfShare: hits / total })),
    groups: sorted(byGroup)
      .slice(0, 12)
      .map(([group, hits]) => ({ group, share: hits / total })),
  };
}

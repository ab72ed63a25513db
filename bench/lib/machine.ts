import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, release, totalmem } from 'node:os';

/** The machine and software a run measured, for the report. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  kernel: string;
  node: string;
  commit: string;
  packages: Record<string, string>;
  loadBefore: number[];
}

const require = createRequire(import.meta.url);

/** Installed version of a package, or `missing`. */
export function versionOf(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    try {
      // Some packages do not export their package.json; read it from node_modules.
      const path = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
      return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
    } catch {
      return 'missing';
    }
  }
}

function osName(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    return /^PRETTY_NAME="?([^"\n]+)"?/m.exec(text)?.[1] ?? process.platform;
  } catch {
    return process.platform;
  }
}

function commit(): string {
  try {
    const root = new URL('../../', import.meta.url).pathname;
    const head = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
    });
    const dirty = execFileSync(
      'git',
      ['-C', root, 'status', '--porcelain', '--untracked-files=no'],
      {
        encoding: 'utf8',
      },
    );
    return `${head.trim()}${dirty.trim() === '' ? '' : ' (with uncommitted changes)'}`;
  } catch {
    return 'unknown';
  }
}

/** Describe this machine and the packages under test. */
export function machineInfo(): MachineInfo {
  const names = [
    '@websubsub/core',
    '@websubsub/koa',
    '@websubsub/express',
    '@websubsub/postgres',
    '@websubsub/agenda',
    '@websubsub/redlock',
    'koa',
    'express',
    'agenda',
    '@agendajs/redis-backend',
    '@agendajs/postgres-backend',
    '@sesamecare-oss/redlock',
    'ioredis',
    'pg',
    'pubsubhubbub',
    'autocannon',
    'tsx',
  ];
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: totalmem() / 1024 ** 3,
    os: osName(),
    kernel: release(),
    node: process.version,
    commit: commit(),
    packages: Object.fromEntries(names.map((name) => [name, versionOf(name)])),
    loadBefore: loadavg(),
  };
}

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';

import { parseJson, runCommand } from './helpers.js';

const CORE = JSON.stringify(import.meta.resolve('@websubsub/core'));

/** A configuration on the embedded store: enough to load, with nothing to connect to. */
const MEMORY_CONFIG = `import { createSubscriber } from ${CORE};
const subscriber = createSubscriber({ baseUrl: 'http://127.0.0.1:9', handlers: { news() {} } });
`;

describe('websubsub CLI: finding and loading the configuration (child processes)', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'websubsub-cli-config-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string) => writeFile(join(dir, name), text);

  it('exits 2 and says where it looked when there is no configuration file', async () => {
    const run = await runCommand(['list'], { cwd: dir });

    expect(run.code).to.equal(2);
    expect(run.stdout).to.equal('');
    expect(run.stderr).to.contain('No configuration file');
    expect(run.stderr).to.contain('websubsub.config.js');
    expect(run.stderr).to.contain(dir);
  });

  it('exits 2 naming the file when --config or WEBSUBSUB_CONFIG points nowhere', async () => {
    const flag = await runCommand(['list', '--config', 'missing.mjs'], { cwd: dir });
    expect(flag.code).to.equal(2);
    expect(flag.stderr).to.contain(`Configuration file not found: ${join(dir, 'missing.mjs')}`);
    expect(flag.stderr).to.contain('--config');

    const variable = await runCommand(['list'], {
      cwd: dir,
      env: { WEBSUBSUB_CONFIG: 'elsewhere.mjs' },
    });
    expect(variable.code).to.equal(2);
    expect(variable.stderr).to.contain('WEBSUBSUB_CONFIG');
  });

  it('loads websubsub.config.mjs from the working directory, a function export too', async () => {
    await write(
      'websubsub.config.mjs',
      `${MEMORY_CONFIG}export default async () => ({ subscriber });\n`,
    );

    const run = await runCommand(['list', '--json'], { cwd: dir });

    expect(run.stderr).to.equal('');
    expect(run.code).to.equal(0);
    expect(parseJson<unknown[]>(run)).to.deep.equal([]);
  });

  it('loads the file WEBSUBSUB_CONFIG names: a `config` export, a CommonJS file', async () => {
    await mkdir(join(dir, 'conf'));
    await write('conf/named.mjs', `${MEMORY_CONFIG}export const config = { subscriber };\n`);
    const named = await runCommand(['list'], {
      cwd: dir,
      env: { WEBSUBSUB_CONFIG: 'conf/named.mjs' },
    });
    expect(named.stderr).to.equal('');
    expect(named.code).to.equal(0);
    expect(named.stdout).to.contain('No subscriptions match.');

    await write(
      'websubsub.config.cjs',
      `module.exports = async () => {
  const { createSubscriber } = await import(${CORE});
  const subscriber = createSubscriber({ baseUrl: 'http://127.0.0.1:9', handlers: { news() {} } });
  return { subscriber };
};\n`,
    );
    const common = await runCommand(['list', '--json'], { cwd: dir });
    expect(common.stderr).to.equal('');
    expect(common.code).to.equal(0);
  });

  it('exits 2 for a module without a usable export, saying what is missing', async () => {
    await write('none.mjs', 'export const other = 1;\n');
    const none = await runCommand(['list', '-c', 'none.mjs'], { cwd: dir });
    expect(none.code).to.equal(2);
    expect(none.stderr).to.contain('has no default export and no export named "config"');

    await write('wrong.mjs', 'export default { subscriber: {} };\n');
    const wrong = await runCommand(['list', '-c', 'wrong.mjs'], { cwd: dir });
    expect(wrong.code).to.equal(2);
    expect(wrong.stderr).to.contain('"subscriber" must be a Subscriber');

    await write(
      'static.mjs',
      `${MEMORY_CONFIG}export default { subscriber, staticSubscriptions: [{ hub: 'x' }] };\n`,
    );
    const declared = await runCommand(['list', '-c', 'static.mjs'], { cwd: dir });
    expect(declared.code).to.equal(2);
    expect(declared.stderr).to.contain('staticSubscriptions[0] needs a "topic" string');
  });

  it('exits 2 when the module or its function throws, with the reason', async () => {
    await write('throws.mjs', "throw new Error('DATABASE_URL is not set');\n");
    const thrown = await runCommand(['list', '-c', 'throws.mjs'], { cwd: dir });
    expect(thrown.code).to.equal(2);
    expect(thrown.stderr).to.contain('Could not load');
    expect(thrown.stderr).to.contain('DATABASE_URL is not set');

    await write(
      'rejects.mjs',
      "export default async () => { throw new Error('cannot reach the database'); };\n",
    );
    const rejected = await runCommand(['list', '-c', 'rejects.mjs', '--json'], { cwd: dir });
    expect(rejected.code).to.equal(2);
    expect(rejected.stderr).to.contain('cannot reach the database');
    expect(parseJson(rejected)).to.deep.include({
      error: {
        code: 'cli_config',
        message:
          `The configuration in ${join(dir, 'rejects.mjs')} failed: ` + 'cannot reach the database',
      },
    });
  });

  it('exits 2 for unknown commands, options, bad values; 0 for --help, --version', async () => {
    await write('websubsub.config.mjs', `${MEMORY_CONFIG}export default { subscriber };\n`);

    const unknown = await runCommand(['frobnicate'], { cwd: dir });
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain("unknown command 'frobnicate'");

    const option = await runCommand(['list', '--colour'], { cwd: dir });
    expect(option.code).to.equal(2);
    expect(option.stderr).to.contain("unknown option '--colour'");

    const status = await runCommand(['list', '--status', 'happy'], { cwd: dir });
    expect(status.code).to.equal(2);
    expect(status.stderr).to.contain('Allowed choices are requesting');

    const nothing = await runCommand([], { cwd: dir });
    expect(nothing.code).to.equal(2);
    expect(nothing.stderr).to.contain('Usage: websubsub');

    const help = await runCommand(['static-subscribe', '--help'], { cwd: dir });
    expect(help.code).to.equal(0);
    expect(help.stdout).to.contain('--purge-orphans');
    expect(help.stdout).to.contain('--no-wait');

    const version = await runCommand(['--version'], { cwd: dir });
    expect(version.code).to.equal(0);
    expect(version.stdout.trim()).to.match(/^\d+\.\d+\.\d+/);
  });

  it('doctor warns that the embedded store, lock and queue live in this process only', async () => {
    await write('websubsub.config.mjs', `${MEMORY_CONFIG}export default { subscriber };\n`);

    const run = await runCommand(['doctor', '--json'], { cwd: dir });
    const report = parseJson<{ healthy: boolean; checks: Array<{ name: string; status: string }> }>(
      run,
    );

    expect(run.code).to.equal(0);
    expect(report.healthy).to.equal(true);
    const statuses = Object.fromEntries(report.checks.map((check) => [check.name, check.status]));
    expect(statuses).to.deep.equal({
      configuration: 'ok',
      store: 'warning',
      lock: 'warning',
      queue: 'warning',
      records: 'ok',
    });
  });
});

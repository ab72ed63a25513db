import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import { doctorCommand } from './commands/doctor.js';
import {
  handleUrlChangesCommand,
  staticSubscribeCommand,
  subscribeCommand,
  unsubscribeCommand,
  type StaticCommandOptions,
  type SubscribeOptions,
} from './commands/hub-requests.js';
import {
  purgeAllCommand,
  purgeUnresolvableCommand,
  resetCountersCommand,
  type ConfirmOptions,
} from './commands/maintenance.js';
import { migrateCommand } from './commands/migrate.js';
import {
  dumpCommand,
  listCommand,
  showCommand,
  STATUS_CHOICES,
  type FilterOptions,
} from './commands/records.js';
import { CONFIG_FILES } from './config.js';
import { execute, type CommandContext, type CommonOptions } from './context.js';
import { EXIT } from './errors.js';
import type { CliIo } from './output.js';
import type { RequestOptions } from './requests.js';
import { VERSION } from './version.js';

function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number <= 0) {
    throw new InvalidArgumentError('must be a positive whole number');
  }
  return number;
}

function positiveNumber(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0)
    throw new InvalidArgumentError('must be a positive number');
  return number;
}

/** `--config` and `--json`, which every command takes. */
function withCommonOptions(command: Command): Command {
  return command
    .option(
      '-c, --config <file>',
      `configuration module (default: $WEBSUBSUB_CONFIG, else ${CONFIG_FILES.join(', ')} ` +
        'in the working directory)',
    )
    .option('--json', 'print one JSON document on stdout instead of text');
}

function withConfirmation(command: Command): Command {
  return command.option('-y, --yes', 'go ahead without asking (required when not on a terminal)');
}

function withRequestOptions(command: Command): Command {
  return command
    .option(
      '--no-wait',
      'only queue the hub requests, for workers of a shared durable queue to send',
    )
    .option('--timeout <seconds>', 'longest wait for the hubs to answer', positiveNumber, 120);
}

function withFilters(command: Command): Command {
  return command
    .addOption(
      new Option('--status <status>', 'only records in this status').choices([...STATUS_CHOICES]),
    )
    .option('--handler <name>', 'only records of this handler')
    .option('--hub <url>', 'only records at this hub')
    .option('--topic <url>', 'only records of this topic')
    .option('--static', 'only records declared in configuration')
    .option('--no-static', 'only records created at run time')
    .option('--limit <count>', 'stop after this many records', positiveInteger);
}

const HELP_AFTER = `
Configuration: a module whose default export (or export named "config") is
{ subscriber, staticSubscriptions?, close?, migrate? } or a function returning it.

Exit codes: 0 done, 1 the command failed or doctor found a problem,
2 bad arguments, unusable configuration or a change not confirmed.`;

/**
 * Build the command-line program. Every action stores its exit code through `setCode`, so
 * that `runCli` can answer it instead of ending the process.
 */
export function createProgram(io: CliIo, setCode: (code: number) => void): Command {
  const program = new Command('websubsub')
    .description('Manage the WebSub subscriptions of an application built with websubsub.')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', HELP_AFTER);

  const action =
    <A extends unknown[]>(run: (context: CommandContext, ...args: A) => Promise<number>) =>
    async (...args: unknown[]) => {
      // Commander passes the arguments, then the options, then the command itself.
      const options = args[args.length - 2] as CommonOptions;
      const values = args.slice(0, -2);
      values.push(options);
      setCode(await execute(io, options, (context) => run(context, ...(values as A))));
    };

  /** A subcommand with `--config` and `--json`, then the option groups named. */
  const command = (
    name: string,
    description: string,
    ...groups: Array<(c: Command) => Command>
  ) => {
    const created = withCommonOptions(program.command(name).description(description));
    for (const add of groups) add(created);
    return created;
  };

  command(
    'static-subscribe',
    'create the subscriptions the configuration declares, ' +
      're-subscribe the stored ones, mark them static',
    withConfirmation,
    withRequestOptions,
  )
    .option(
      '--purge-orphans',
      'end static records the configuration no longer declares (unsubscribed while leased)',
    )
    .option('--reset-counters', 'zero the error counters of the declared records')
    .option('--force', 'also re-subscribe denied records and records being unsubscribed')
    .action(
      action((context, options: StaticCommandOptions) => staticSubscribeCommand(context, options)),
    );

  command(
    'purge-unresolvable',
    'delete records whose handler is no longer configured (hubs are not told)',
    withConfirmation,
  ).action(
    action((context, options: ConfirmOptions) => purgeUnresolvableCommand(context, options)),
  );

  command(
    'reset-counters',
    'zero the error counters of the given records, or of every record',
    withConfirmation,
  )
    .argument('[id...]', 'subscription ids (none: every record, after confirmation)')
    .action(
      action((context, ids: string[], options: ConfirmOptions) =>
        resetCountersCommand(context, ids, options),
      ),
    );

  command(
    'handle-url-changes',
    're-subscribe records whose callback URL changed with the base URL or a handler path',
    withRequestOptions,
  ).action(action((context, options: RequestOptions) => handleUrlChangesCommand(context, options)));

  command('list', 'list subscriptions as a table (a JSON array with --json)', withFilters).action(
    action((context, options: FilterOptions) => listCommand(context, options)),
  );

  command('show', 'show one subscription in full (never its secret)')
    .argument('<id>', 'subscription id')
    .action(action((context, id: string) => showCommand(context, id)));

  command(
    'dump',
    'print every record in full, one JSON object per line (an array with --json)',
    withFilters,
  ).action(action((context, options: FilterOptions) => dumpCommand(context, options)));

  command(
    'subscribe',
    'subscribe to a topic, discovering its hub unless --hub is given',
    withRequestOptions,
  )
    .argument('<topic>', 'topic URL')
    .option('--hub <url>', 'hub URL (skips discovery)')
    .option(
      '--handler <name>',
      "handler of the content (default: the subscriber's default handler)",
    )
    .option('--lease-seconds <seconds>', 'hub.lease_seconds to ask for', positiveInteger)
    .option(
      '--secret <secret>',
      'hub.secret the hub signs content with ' +
        '(other users of this machine can see it: prefer --secret-env)',
    )
    .addOption(
      new Option(
        '--secret-env <variable>',
        'read hub.secret from this environment variable',
      ).conflicts('secret'),
    )
    .option('--all-hubs', 'subscribe at every hub the topic advertises, not only the first')
    .action(
      action((context, topic: string, options: SubscribeOptions) =>
        subscribeCommand(context, topic, options),
      ),
    );

  command('unsubscribe', 'ask the hubs to end these subscriptions', withRequestOptions)
    .argument('<id...>', 'subscription ids')
    .action(
      action((context, ids: string[], options: RequestOptions) =>
        unsubscribeCommand(context, ids, options),
      ),
    );

  command('purge-all', 'delete every record (hubs are not told)', withConfirmation).action(
    action((context, options: ConfirmOptions) => purgeAllCommand(context, options)),
  );

  command(
    'doctor',
    'check configuration, store, lock and queue, and report records in bad states',
  ).action(action((context) => doctorCommand(context)));

  command('migrate', "run the configuration's migrate() (e.g. the PostgreSQL table)").action(
    action((context) => migrateCommand(context)),
  );

  return program;
}

/**
 * Run the `websubsub` command with these arguments (without `node` and the script) and
 * resolve with its exit code; the process is left running. The `bin` calls this.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = createProgram(io, (value) => {
    code = value;
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    // Help and version end with 0; every other complaint of the parser is a usage error.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw error;
  }
  return code;
}

/** The streams, environment and directory of this process. */
export function processIo(): CliIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  };
}

import { closeCliConfig, loadCliConfig, type CliConfig, type LoadedConfig } from './config.js';
import { describeError, exitCodeOf } from './errors.js';
import { Output, type CliIo } from './output.js';

/** Options every command takes. */
export interface CommonOptions {
  /** `--config <file>`. */
  config?: string;
  /** `--json`. */
  json?: boolean;
}

/** What a command runs with: its streams, output and the configuration, loaded on first use. */
export interface CommandContext {
  readonly io: CliIo;
  readonly out: Output;
  /** Load the configuration (once); throws `CliConfigError`. */
  load(): Promise<LoadedConfig>;
}

/** A command's work; resolves with the exit code. */
export type CommandRun = (context: CommandContext) => Promise<number>;

/**
 * Run one command: load the configuration when asked, turn any error into a message and an
 * exit code, and always close what the configuration opened, so the process can end.
 */
export async function execute(io: CliIo, options: CommonOptions, run: CommandRun): Promise<number> {
  const out = new Output(io, options.json ?? false);
  let loading: Promise<LoadedConfig> | null = null;
  let loaded: CliConfig | null = null;
  const context: CommandContext = {
    io,
    out,
    load: () => {
      loading ??= loadCliConfig({
        ...(options.config !== undefined ? { file: options.config } : {}),
        cwd: io.cwd,
        env: io.env,
      }).then((result) => {
        loaded = result.config;
        return result;
      });
      return loading;
    },
  };

  let code: number;
  try {
    code = await run(context);
  } catch (error) {
    code = exitCodeOf(error);
    await report(out, io, error);
  }

  if (loaded) {
    try {
      await closeCliConfig(loaded);
    } catch (error) {
      io.stderr.write(`websubsub: closing the configuration failed: ${describeError(error)}\n`);
    }
  }
  return code;
}

/** An error on stderr and, with `--json` when nothing was printed yet, as the JSON document. */
async function report(out: Output, io: CliIo, error: unknown): Promise<void> {
  const message = describeError(error);
  io.stderr.write(`websubsub: ${message}\n`);

  if (out.json && !out.written) {
    const code =
      typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'error';
    await out.document({ error: { code, message } });
  }
}

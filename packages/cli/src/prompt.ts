import { createInterface } from 'node:readline/promises';

import { UsageError } from './errors.js';
import type { CliIo } from './output.js';

/** Thrown when the person at the terminal answers no; nothing was changed. */
export class NotConfirmedError extends UsageError {
  constructor() {
    super('Cancelled: nothing was changed');
  }
}

/** Can we ask the person running the command? Only when both ends are a terminal. */
export function isInteractive(io: CliIo): boolean {
  return Boolean(io.stdin.isTTY) && Boolean(io.stdout.isTTY);
}

/** Ask a yes/no question on stderr; anything but y or yes (and the end of input) is no. */
export async function ask(io: CliIo, question: string): Promise<boolean> {
  const lines = createInterface({ input: io.stdin, output: io.stderr });
  try {
    const answer = await new Promise<string>((resolve) => {
      // Ctrl-D closes the input without an answer; `question` would then never settle.
      lines.once('close', () => resolve(''));
      lines.question(`${question} [y/N] `).then(resolve, () => resolve(''));
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    lines.close();
  }
}

/**
 * Go ahead with a destructive change: at once with `--yes`, after a yes on a terminal, and
 * never otherwise, so that a script cannot delete records without saying so.
 */
export async function confirm(
  io: CliIo,
  yes: boolean | undefined,
  question: () => Promise<string>,
  command: string,
): Promise<void> {
  if (yes) return;

  if (!isInteractive(io)) {
    throw new UsageError(
      `${command} changes or deletes records and needs confirmation: pass --yes ` +
        '(stdin and stdout are not both a terminal, so it cannot ask)',
    );
  }
  if (!(await ask(io, await question()))) throw new NotConfirmedError();
}

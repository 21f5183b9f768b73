/**
 * A CLI Output that keeps what a command prints, for tests to read: each line of stdout and
 * of stderr, and what a progress bar writes to its stream (as a terminal it is not).
 */
import type { Output } from '../../src/cli/output.ts';

export function recordingOutput(): { output: Output; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, output: { out: (line) => out.push(line), err: (line) => err.push(line), errStream: { isTTY: false, write: (text) => err.push(text) > 0 } } };
}

/**
 * For the log commands' tests: the dependencies a command takes (log/command-kit.ts), with a
 * fetch of the test's own, a fixed clock, no waiting, and every line the command prints kept.
 */
import type { Output } from '../output.ts';
import type { LogCommandDeps } from './command-kit.ts';

export function recordingDeps(fetch: typeof globalThis.fetch): LogCommandDeps & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const output: Output = { out: (line) => void out.push(line), err: (line) => void err.push(line), errStream: { isTTY: false, write: (text) => err.push(text) > 0 } };
  return { output, fetch, now: () => Date.parse('2026-02-01T00:00:00Z'), sleep: async () => {}, retrySleep: async () => {}, out, err };
}

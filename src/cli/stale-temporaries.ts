/**
 * Temporary files that a write killed half-way left beside the file it was writing: a key file
 * (log-key.ts) or a replaced file (replace-file.ts: state files, the published checkpoint).
 * Nothing reads them, but they stayed for ever, and a key's is a hard link that holds the
 * private key after the key file itself is moved away or shredded (the s25 crash review). Each
 * write removes those of its own file whose process is gone before it writes.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive } from '../store/processes.ts';

/**
 * How old a temporary file must be before it counts as left behind, whatever its process: a
 * write takes milliseconds, and a process of another PID namespace (a container sharing the
 * folder) may carry a pid that is free here.
 */
export const staleTemporaryAgeMsMin = 60_000;

/**
 * Removes `<prefix>.<pid>.<hex>.tmp` in `folder` whose pid is not a live process here and that
 * is older than staleTemporaryAgeMsMin. Best effort: a folder that cannot be read, or a file
 * already gone, is passed over (the write that follows says what is wrong with the folder).
 */
export function removeStaleTemporaries(folder: string, prefix: string, nowMs: number = Date.now()): string[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(`${prefix}.`)) continue;
    const match = /^\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length));
    if (match === null || isProcessAlive(Number(match[1]))) continue;
    const path = join(folder, name);
    try {
      if (nowMs - statSync(path).mtimeMs < staleTemporaryAgeMsMin) continue;
      rmSync(path, { force: true });
      removed.push(path);
    } catch {
      // Gone meanwhile, or not ours to remove: nothing to do.
    }
  }
  return removed;
}

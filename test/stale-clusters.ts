/**
 * The embedded PostgreSQL of a test run lives in tmpdir()/chipledger-test-*, and only the
 * teardown that globalSetup returns removes it: a Ctrl-C'd run leaves the whole cluster
 * behind (55-122 MB). The next run removes those, and only those: another run on the same
 * machine may be going at the same time, and its folder must survive.
 *
 * A Ctrl-C reaches PostgreSQL too (same process group), whose fast shutdown removes its
 * postmaster.pid: so each run writes its own pid beside the cluster (testRunPidFile), and a
 * folder whose run and postmaster are both gone is stale.
 */
import { lstatSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive, processStartTime } from '../src/store/processes.ts';

/** What a run's cluster folder is called: mkdtemp adds six characters. */
export const testClusterPrefix = 'chipledger-test-';

/** The file in a run's cluster folder naming the run: its pid and, on Linux, the process's start time. */
export const testRunPidFile = 'test-run.pid';

/**
 * A folder that names no process, neither its run nor a postmaster, is left alone until it is
 * this old: it may be another run's between its mkdtemp and writing testRunPidFile, or one
 * made before runs wrote that file and still starting its postmaster (initdb takes seconds).
 */
export const unclaimedClusterAgeMsMax = 60 * 60 * 1000;

/** Names this process as the run that owns `folder`; called right after its mkdtemp. */
export function claimTestCluster(folder: string): void {
  writeFileSync(join(folder, testRunPidFile), `${process.pid} ${processStartTime(process.pid) ?? ''}\n`);
}

/**
 * Removes the cluster folders under `folder` that no run holds any more, and returns their
 * paths. Kept: a folder whose run is alive, one whose pg/postmaster.pid names a live process
 * (a pid since reused by another process keeps it too, which only delays the cleanup), and
 * one naming no process younger than unclaimedClusterAgeMsMax. Only folders of this user are
 * touched; one that cannot be read or removed is skipped: a cleanup must never fail a run.
 */
export function removeStaleTestClusters(folder: string, nowMs: number): string[] {
  let names: string[];
  try {
    names = readdirSync(folder).filter((name) => name.startsWith(testClusterPrefix));
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const path = join(folder, name);
    try {
      if (!isStale(path, nowMs)) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Another user's, or gone meanwhile (another run cleaning up too): not ours to clean.
    }
  }
  return removed;
}

function isStale(path: string, nowMs: number): boolean {
  const stat = lstatSync(path);
  if (!stat.isDirectory() || stat.uid !== process.getuid?.()) return false;
  const run = pidLine(join(path, testRunPidFile));
  if (run !== undefined && isRunAlive(run)) return false;
  const postmaster = pidLine(join(path, 'pg', 'postmaster.pid'));
  if (postmaster !== undefined) return !isProcessAlive(postmaster.pid);
  if (run !== undefined) return true;
  return nowMs - stat.mtimeMs > unclaimedClusterAgeMsMax;
}

/** A run is alive while its pid is, and (where /proc tells) that pid is still the same process. */
function isRunAlive(run: { pid: number; startTime: string }): boolean {
  if (!isProcessAlive(run.pid)) return false;
  const startTime = processStartTime(run.pid);
  return run.startTime === '' || startTime === null || startTime === run.startTime;
}

/**
 * The pid first on the first line of a pid file, and what follows it on that line; undefined
 * where there is no file or no pid yet (being written).
 */
function pidLine(pidFile: string): { pid: number; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const match = /^([1-9][0-9]*)(?: (\S*))?$/.exec(text.split('\n')[0] ?? '');
  return match ? { pid: Number(match[1]), startTime: match[2] ?? '' } : undefined;
}

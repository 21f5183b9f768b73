/**
 * The real `chipledger serve`, started in its own Node process for the HTTP benchmark, so the
 * server and the load generator never share one event loop. Its stdout and stderr are kept
 * (the tail is shown when something goes wrong); its CPU time is read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repositoryRoot = fileURLToPath(new URL('..', import.meta.url));
/** serve has this long to answer /healthz after it was started. */
const startTimeoutMs = 60_000;
/** serve has this long to stop after SIGTERM (its own clean-stop bound is 30 s). */
const stopTimeoutMs = 40_000;
const keptOutputChars = 8_000;

export interface ServerProcessOptions {
  databaseUrl: string;
  /** DATABASE_WRITER_URL: the role the server writes as (bench/database.ts writerUrlOf). */
  writerUrl?: string;
  logSignerKey: string;
  logLevel?: string;
  /** Extra node flags, e.g. --cpu-prof --cpu-prof-dir=DIR. */
  nodeFlags?: string[];
}

export interface ServerProcess {
  pid: number;
  url: string;
  /** CPU seconds (user + system) the server process has used so far. */
  cpuSeconds(): number;
  /** The last lines it wrote, stdout and stderr together. */
  outputTail(): string;
  /** SIGTERM, then waits: the exit code (null when a signal ended it) and that signal. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** A port nothing listens on right now (the kernel's choice for port 0). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'chipledger-bench-http-serve-'));
  const env: NodeJS.ProcessEnv = {};
  // serve refuses CHIPLEDGER_* settings it does not know: hand it only ours.
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL' && name !== 'DATABASE_WRITER_URL') env[name] = value;
  Object.assign(env, {
    DATABASE_URL: options.databaseUrl,
    ...(options.writerUrl === undefined ? {} : { DATABASE_WRITER_URL: options.writerUrl }),
    CHIPLEDGER_DATA_DIR: dataDir,
    CHIPLEDGER_HOST: '127.0.0.1',
    CHIPLEDGER_PORT: String(port),
    CHIPLEDGER_LOG_SIGNER_KEY: options.logSignerKey,
    CHIPLEDGER_LOG_LEVEL: options.logLevel ?? 'warn',
  });
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), '--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: repositoryRoot, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-keptOutputChars);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const cleanup = () => rmSync(dataDir, { recursive: true, force: true });
  try {
    await waitHealthy(url, child, exited);
  } catch (error) {
    child.kill('SIGKILL');
    cleanup();
    throw new Error(`${(error as Error).message}\n--- server output ---\n${output}`);
  }
  const pid = child.pid!;
  return {
    pid,
    url,
    cpuSeconds: () => processCpuSeconds(pid),
    outputTail: () => output,
    async stop() {
      const started = performance.now();
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), stopTimeoutMs)));
      const result = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      cleanup();
      if (result === null) {
        child.kill('SIGKILL');
        throw new Error(`the server did not stop within ${stopTimeoutMs / 1000} s of SIGTERM\n--- server output ---\n${output}`);
      }
      return { ...result, ms: performance.now() - started };
    },
  };
}

async function waitHealthy(url: string, child: ChildProcess, exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>): Promise<void> {
  let gone: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void exited.then((result) => (gone = result));
  const deadline = performance.now() + startTimeoutMs;
  while (performance.now() < deadline) {
    if (gone !== null) {
      const { code, signal } = gone;
      throw new Error(`the server (pid ${child.pid}) exited before it was healthy: code ${code}, signal ${signal}`);
    }
    try {
      const answer = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (answer.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the server did not answer /healthz with 200 within ${startTimeoutMs / 1000} s`);
}

/** utime + stime of one process, in seconds (clock ticks are 1/100 s on Linux); NaN when unreadable. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * `chipledger serve --demo` as people run it: a child process with its own data dir and a free
 * port, the printed URL and admin token used over HTTP, then SIGTERM and a clean stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../store/embedded.ts';
import { generateSignerKey } from '../tlog/index.ts';
import { isProcessAlive } from '../store/processes.ts';

const root = resolve(import.meta.dirname, '../..');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-serve-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** The environment of a fresh shell: none of our settings leak in from the test run. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
  return { ...env, ...extra };
}

function start(args: string[], env: Record<string, string>): { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: string | null }>((done) => child.on('exit', (code, signal) => done({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

async function waitFor<T>(what: string, read: () => T | undefined, exited: Promise<unknown>, timeoutMs: number, log: () => string): Promise<T> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (gone) throw new Error(`the server exited before printing ${what}:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms:\n${log()}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}


describe('chipledger serve --demo', () => {
  it('serves the demo with an admin token, and stops cleanly on SIGTERM', async () => {
    const port = await findFreePort();
    const dataDir = join(folder, 'data');
    const server = start(['serve', '--demo', '--port', String(port)], { CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_LOG_LEVEL: 'warn' });
    const log = () => `stdout:\n${server.stdout()}\nstderr:\n${server.stderr()}`;
    try {
      const url = await waitFor('its URL', () => /^chipledger is serving (http:\/\/\S+)/m.exec(server.stdout())?.[1], server.exit, 150_000, log);
      const token = await waitFor('the admin token', () => /^\s+(clt_\S+)$/m.exec(server.stdout())?.[1], server.exit, 10_000, log);
      expect(url).toBe(`http://127.0.0.1:${port}`);

      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/v1/licences`)).status).toBe(401);
      const licences = await fetch(`${url}/v1/licences`, { headers: { authorization: `Bearer ${token}` } });
      expect(licences.status).toBe(200);
      expect(licences.headers.get('x-chipledger-demo')).toBe('true');
      const body = (await licences.json()) as { items: Array<{ authorisedUnits: number; direction: string; demo: boolean }> };
      expect(body.items.map((licence) => [licence.direction, licence.authorisedUnits, licence.demo])).toEqual([['export', 400_000, true], ['import', 400_000, true]]);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exit, log()).toEqual({ code: 0, signal: null });
    const pidFile = join(dataDir, 'pg', 'postmaster.pid');
    if (existsSync(pidFile)) expect(isProcessAlive(Number(readFileSync(pidFile, 'utf8').split('\n')[0])), 'postgres still running').toBe(false);
    expect(existsSync(join(dataDir, 'chipledger.lock'))).toBe(false);
  }, 240_000);

  it('fails with a clear message when the port is taken', async () => {
    const busy = createServer();
    const port = await new Promise<number>((done) => busy.listen(0, '127.0.0.1', () => done((busy.address() as { port: number }).port)));
    try {
      const server = start(['serve', '--demo', '--port', String(port)], { CHIPLEDGER_DATA_DIR: join(folder, 'busy') });
      expect(await server.exit).toEqual({ code: 1, signal: null });
      expect(server.stderr()).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(existsSync(join(folder, 'busy', 'pg'))).toBe(false); // failed before starting PostgreSQL
    } finally {
      busy.close();
    }
  }, 60_000);

  it('refuses to start without a log key: a configuration problem (exit 2), said before anything is made', async () => {
    const port = await findFreePort();
    const dataDir = join(folder, 'no-key');
    const server = start(['serve', '--port', String(port)], { CHIPLEDGER_DATA_DIR: dataDir });
    expect(await server.exit, server.stderr()).toEqual({ code: 2, signal: null });
    expect(server.stderr()).toContain('chipledger: the configuration has 1 problem:\n  - no transparency-log signing key: set CHIPLEDGER_LOG_KEY_FILE');
    expect(existsSync(dataDir), 'no data folder, no PostgreSQL cluster').toBe(false);
  }, 60_000);

  it('lists every problem with the log key files (exit 2), even in the demo, before anything is made', async () => {
    const port = await findFreePort();
    const dataDir = join(folder, 'bad-keys');
    const open = join(folder, 'open.key');
    writeFileSync(open, `${generateSignerKey('log.example').signerKey}\n`);
    chmodSync(open, 0o644);
    const server = start(['serve', '--demo', '--port', String(port)], { CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_LOG_KEY_FILE: '/nonexistent', CHIPLEDGER_LOG_PREVIOUS_KEY_FILE: open });
    expect(await server.exit, server.stderr()).toEqual({ code: 2, signal: null });
    expect(server.stderr()).toContain('the configuration has 2 problems');
    expect(server.stderr()).toContain("CHIPLEDGER_LOG_KEY_FILE: couldn't read the log signing key /nonexistent: ENOENT");
    expect(server.stderr()).toContain(`CHIPLEDGER_LOG_PREVIOUS_KEY_FILE: the log signing key ${open} is open to its group or others (mode 644)`);
    expect(existsSync(dataDir), 'no data folder, no PostgreSQL cluster').toBe(false);
  }, 60_000);

  it('lists every configuration problem and exits 2', async () => {
    const server = start(['serve'], { CHIPLEDGER_PORT: 'eighty', CHIPLEDGER_LOGLEVEL: 'debug' });
    expect(await server.exit).toEqual({ code: 2, signal: null });
    expect(server.stderr()).toContain('the configuration has 2 problems');
  }, 60_000);
});

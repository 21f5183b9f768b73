/**
 * `chipledger serve` as a process, with its embedded PostgreSQL (ops review, defects 3, 4, 7):
 * - SIGHUP does not stop it (it is ignored, also under nohup);
 * - when its embedded PostgreSQL dies (kill -9 of the postmaster), it says so in one fatal line
 *   and stops with exit 1, for a supervisor to restart it, instead of serving 503s for ever;
 * - a CHIPLEDGER_HOST that does not resolve is one clear line naming it, not a getaddrinfo error;
 * - started through npm (`npm start`, `npm run chipledger -- serve`), a SIGTERM to npm stops the
 *   server: npm signals its shell, and a shell that does not exec its command leaves the server
 *   running, orphaned, still holding its port and data folder (the package scripts exec);
 * - a Ctrl-C (SIGINT), or a SIGTERM, to the whole process group of an npm-started server stops
 *   it cleanly (exit 0, its lock removed): the server gets the signal twice, from the terminal
 *   and from npm forwarding it, and the second is the same request, not "stop now" (CLI review).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { findFreePort } from '../store/embedded.ts';
import { unusedPort } from '../../test/support/port.ts';
import { isProcessAlive } from '../store/processes.ts';
import { readLock } from './database-lock.ts';
import { generateSignerKey } from '../tlog/index.ts';
import { cleanServeEnv, killAllServers, startServe } from '../../test/support/http-serve.ts';
import { stopSignalAction } from './serve.ts';

/** initdb and a first start on a loaded 2-core machine. */
const startTimeoutMs = 90_000;
/** serve must notice the lost postmaster and have stopped within this. */
const stopTimeoutMs = 20_000;

const dataDir = mkdtempSync(join(tmpdir(), 'chipledger-serve-lifecycle-'));
afterAll(async () => {
  await killAllServers();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${join(dataDir, 'pg')}.password`, { force: true });
});

async function healthz(url: string): Promise<number> {
  return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) })).status;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`${what} did not happen within ${ms} ms`)), ms))]);
}

describe('chipledger serve with its embedded PostgreSQL', () => {
  it('ignores SIGHUP, and stops with exit 1 and one fatal line when its PostgreSQL is killed', async () => {
    const server = await startServe({
      CHIPLEDGER_HOST: '127.0.0.1',
      CHIPLEDGER_PORT: String(await findFreePort()),
      CHIPLEDGER_DATA_DIR: dataDir,
      CHIPLEDGER_LOG_SIGNER_KEY: generateSignerKey('log.serve-lifecycle.test').signerKey,
      CHIPLEDGER_SWEEP_INTERVAL_MS: '3600000',
    }, startTimeoutMs);

    server.child.kill('SIGHUP');
    await new Promise((done) => setTimeout(done, 1_000));
    expect(server.child.exitCode, server.log()).toBe(null);
    expect(await healthz(server.url), server.log()).toBe(200);
    expect(server.log()).not.toMatch(/SIGHUP received/);

    const postmaster = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(isProcessAlive(postmaster)).toBe(true);
    process.kill(postmaster, 'SIGKILL');
    const exit = await within(server.exited, stopTimeoutMs, 'serve stopping after its PostgreSQL was killed');
    expect(exit, server.log()).toEqual({ code: 1, signal: null });
    const fatal = server.log().split('\n').filter((line) => line.includes('"level":60'));
    expect(fatal, server.log()).toHaveLength(1);
    expect(fatal[0]).toContain('the embedded PostgreSQL exited (signal SIGKILL); stopping so a supervisor can restart chipledger');
    // No stack a second from the checkpointer while it went down: one at most.
    expect((server.log().match(/couldn't sign a checkpoint/g) ?? []).length).toBeLessThanOrEqual(1);
  });

  it('says in one line that a CHIPLEDGER_HOST which does not resolve is not usable, naming it', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const env = cleanServeEnv({ CHIPLEDGER_HOST: 'no-such-host.invalid', CHIPLEDGER_PORT: '18999', CHIPLEDGER_DATA_DIR: join(dataDir, 'unused'), CHIPLEDGER_LOG_SIGNER_KEY: generateSignerKey('log.serve-lifecycle.test').signerKey });
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr.trim().split('\n'), run.stderr).toEqual([
      expect.stringMatching(/^chipledger: the host name no-such-host\.invalid \(CHIPLEDGER_HOST\) could not be looked up \((ENOTFOUND|EAI_AGAIN)\); set CHIPLEDGER_HOST to an address of this machine/),
    ]);
  });

  it('stops when npm, which started it, is sent SIGTERM', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const folder = join(dataDir, 'npm');
    // Not findFreePort's: another file may be given that one before the server listens (test/support/port.ts).
    const url = `http://127.0.0.1:${await unusedPort()}`;
    const env = cleanServeEnv({
      CHIPLEDGER_HOST: '127.0.0.1', CHIPLEDGER_PORT: new URL(url).port, CHIPLEDGER_DATA_DIR: folder,
      CHIPLEDGER_LOG_SIGNER_KEY: generateSignerKey('log.serve-lifecycle.test').signerKey, CHIPLEDGER_SWEEP_INTERVAL_MS: '3600000',
    });
    const npm = spawn('npm', ['run', '--silent', 'chipledger', '--', 'serve'], { cwd: root, env, stdio: 'ignore' });
    let serverPid: number | undefined;
    try {
      await within((async () => {
        for (;;) {
          const ready = await healthz(url).then((status) => status === 200, () => false);
          if (ready) return;
          if (npm.exitCode !== null) throw new Error(`npm exited with ${npm.exitCode} before the server answered`);
          await new Promise((done) => setTimeout(done, 250));
        }
      })(), startTimeoutMs, 'the server started by npm answering /healthz');
      serverPid = readLock(join(folder, 'chipledger.lock'))?.pid;
      expect(serverPid).toBeGreaterThan(0);
      expect(serverPid).not.toBe(npm.pid);
      npm.kill('SIGTERM');
      await within((async () => {
        while (isProcessAlive(serverPid!)) await new Promise((done) => setTimeout(done, 100));
      })(), stopTimeoutMs, `the server (pid ${serverPid}) stopping after npm got SIGTERM`);
      await expect(healthz(url)).rejects.toThrow();
    } finally {
      if (serverPid !== undefined && isProcessAlive(serverPid)) process.kill(serverPid, 'SIGKILL');
      if (npm.exitCode === null) npm.kill('SIGKILL');
    }
  });

  it('stops cleanly, exit 0 and its lock gone, when Ctrl-C or SIGTERM reaches the whole process group of an npm-started server', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const folder = join(dataDir, 'group');
    // Not findFreePort's: another file may be given that one before the server listens (test/support/port.ts).
    const url = `http://127.0.0.1:${await unusedPort()}`;
    const env = cleanServeEnv({
      CHIPLEDGER_HOST: '127.0.0.1', CHIPLEDGER_PORT: new URL(url).port, CHIPLEDGER_DATA_DIR: folder,
      CHIPLEDGER_LOG_SIGNER_KEY: generateSignerKey('log.serve-lifecycle.test').signerKey, CHIPLEDGER_SWEEP_INTERVAL_MS: '3600000',
    });
    // A terminal's Ctrl-C signals its foreground process group (npm, the server, PostgreSQL);
    // systemd's default KillMode=control-group signals them all with SIGTERM.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      // detached: a process group of its own, led by npm, as a shell's job is.
      const npm = spawn('npm', ['run', '--silent', 'chipledger', '--', 'serve'], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      npm.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
      npm.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => npm.once('exit', (code, ended) => done({ code, signal: ended })));
      try {
        await within((async () => {
          for (;;) {
            const ready = await healthz(url).then((status) => status === 200, () => false);
            if (ready) return;
            if (npm.exitCode !== null) throw new Error(`npm exited with ${npm.exitCode} before the server answered:\n${log}`);
            await new Promise((done) => setTimeout(done, 250));
          }
        })(), startTimeoutMs, 'the server started by npm answering /healthz');
        expect(readLock(join(folder, 'chipledger.lock'))?.pid, log).toBeGreaterThan(0);
        process.kill(-npm.pid!, signal);
        // npm exits with its script's code: the server's.
        expect(await within(exited, stopTimeoutMs, `npm and the server stopping after ${signal} to their process group`), log).toEqual({ code: 0, signal: null });
        expect(log).toContain(`chipledger: ${signal} received, stopping`);
        expect(log).not.toMatch(/again; exiting without a clean stop/);
        // PostgreSQL is not in that group (store/embedded-process-group.ts, inOwnProcessGroup): it was not
        // stopped under the server, whose last checkpoint and pool close went through unlogged.
        expect(log).not.toMatch(/"level":(50|60)/);
        expect(existsSync(join(folder, 'chipledger.lock')), log).toBe(false);
        expect(existsSync(join(folder, 'pg', 'postmaster.pid')), log).toBe(false);
      } finally {
        if (npm.exitCode === null && npm.signalCode === null) process.kill(-npm.pid!, 'SIGKILL');
      }
    }
  });
});

describe('a stop signal repeated', () => {
  it('takes a stop signal during the start when the step in hand ends: says so at once, starts nothing more, prints no token, and leaves the demo whole', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const demoDir = mkdtempSync(join(tmpdir(), 'chipledger-serve-stop-starting-'));
    /** serve --demo on demoDir; resolves `said` when stderr or stdout has shown `awaited`. */
    const serveDemo = async (awaited: string) => {
      const env = cleanServeEnv({ CHIPLEDGER_HOST: '127.0.0.1', CHIPLEDGER_PORT: String(await unusedPort()), CHIPLEDGER_DATA_DIR: demoDir });
      const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'serve', '--demo'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const run = { child, stdout: '', stderr: '' };
      const said = new Promise<void>((done) => {
        const look = () => void ((run.stdout + run.stderr).includes(awaited) && done());
        child.stdout.on('data', (chunk: Buffer) => { run.stdout += chunk.toString(); look(); });
        child.stderr.on('data', (chunk: Buffer) => { run.stderr += chunk.toString(); look(); });
      });
      const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
      return { run, said, exited };
    };
    try {
      const first = await serveDemo('loading the demo data');
      await within(first.said, startTimeoutMs, 'the demo load starting');
      first.run.child.kill('SIGTERM');
      expect(await within(first.exited, startTimeoutMs, 'serve stopping after the demo load'), first.run.stderr).toBe(0);
      expect(first.run.stderr).toContain('chipledger: SIGTERM received while starting; stopping once the step in hand ends');
      expect(first.run.stderr).toContain('chipledger: stopped before serving: nothing more was started');
      expect(first.run.stdout).not.toMatch(/chipledger is serving|Admin token|clt_/);
      expect(existsSync(join(demoDir, 'chipledger.lock'))).toBe(false);
      // The demo load was not cut: the next start serves it whole.
      const second = await serveDemo('chipledger is serving');
      await within(second.said, startTimeoutMs, 'the second start serving');
      expect(second.run.stderr).not.toMatch(/incomplete/);
      second.run.child.kill('SIGTERM');
      expect(await within(second.exited, stopTimeoutMs, 'the second start stopping')).toBe(0);
    } finally {
      rmSync(demoDir, { recursive: true, force: true });
      rmSync(`${join(demoDir, 'pg')}.password`, { force: true });
    }
  });

  it('within the window is the same request; after it, the exit-now one', () => {
    expect(stopSignalAction(undefined, 5_000)).toBe('stop');
    expect(stopSignalAction(5_000, 5_000)).toBe('same request');
    expect(stopSignalAction(5_000, 5_000 + limits.repeatedStopSignalWindowMs - 1)).toBe('same request');
    expect(stopSignalAction(5_000, 5_000 + limits.repeatedStopSignalWindowMs)).toBe('exit now');
    expect(limits.repeatedStopSignalWindowMs).toBe(1_000);
  });
});

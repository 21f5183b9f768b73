/**
 * An admin command on the embedded PostgreSQL it started, sent SIGTERM alone (a `kill` of its
 * process, a job runner that signals only its child): it says so, exits 143, and its
 * PostgreSQL stops with it. Before, Node ended at once and the postmaster kept running on
 * 127.0.0.1, serving the superuser login, with the lock naming a dead process (lifecycle review).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../store/processes.ts';
import { cleanServeEnv } from '../../test/support/http-serve.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'chipledger-admin-signals-'));
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${join(dataDir, 'pg')}.password`, { force: true });
});

/** initdb and a demo load on a loaded 2-core machine. */
const runTimeoutMs = 90_000;

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`${what} did not happen within ${ms} ms`)), ms))]);
}

describe('an admin command sent SIGTERM alone', () => {
  it('says so, exits 143, and stops the embedded PostgreSQL it started', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'demo'], { cwd: root, env: cleanServeEnv({ CHIPLEDGER_DATA_DIR: dataDir }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const loading = new Promise<void>((done) => child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('demo: ')) done();
    }));
    child.stdout.resume();
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    await within(loading, runTimeoutMs, 'the demo load starting');
    const postmaster = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(isProcessAlive(postmaster)).toBe(true);
    child.kill('SIGTERM');
    expect(await within(exited, runTimeoutMs, 'the command exiting'), stderr).toBe(143);
    expect(stderr).toContain('chipledger: SIGTERM received; chipledger-demo stopped before it finished, and its embedded PostgreSQL is told to stop');
    // Its fast shutdown takes a moment after the command is gone.
    const deadline = Date.now() + 20_000;
    while (isProcessAlive(postmaster) && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));
    expect(isProcessAlive(postmaster), 'the postmaster still runs').toBe(false);
    expect(existsSync(join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
  });
});

/**
 * A Ctrl-C (SIGINT) or SIGTERM while a change is awaited (http.ts, ApiClient.post), through a
 * real `chipledger` process and a server that holds its answer: the change may have been made,
 * so the process prints the Idempotency-Key and the command that reruns it with that key, and
 * exits 130 (143 for SIGTERM), as a shell reports a process the signal ended. Without it, the
 * natural rerun (the same command, a fresh key) booked a second shipment.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanServeEnv } from '../../test/support/http-serve.ts';

const repositoryRoot = resolve(import.meta.dirname, '../..');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-interrupt-'));
/** A start of tsx on a loaded 2-core machine, and the signal after it. */
const runTimeoutMs = 60_000;
/** The POSTs the server holds unanswered, and who waits for the next one. */
const held: ServerResponse[] = [];
let nextRequest: ((request: { url: string; key: string }) => void) | undefined;
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    // The answer never comes while the test runs: the change is "in flight".
    held.push(response);
    nextRequest?.({ url: request.url ?? '', key: String(request.headers['idempotency-key']) });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const response of held) response.destroy();
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
  rmSync(folder, { recursive: true, force: true });
});

/** Runs `chipledger ARGS`, sends `signals` (one after another, `gapMs` apart) once the server has its POST, and returns how it ended. */
async function interrupted(args: string[], signals: NodeJS.Signals[], gapMs = 0): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; key: string; path: string }> {
  const received = new Promise<{ url: string; key: string }>((done) => (nextRequest = done));
  // Without npm's variables, the rerun line begins `chipledger` (chipledgerCommand).
  const env = Object.fromEntries(Object.entries(cleanServeEnv({ CHIPLEDGER_URL: url, CHIPLEDGER_TOKEN: 'clt_interrupt_test', CHIPLEDGER_DATA_DIR: join(folder, 'data') })).filter(([name]) => !name.startsWith('npm_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: repositoryRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const stuck = setTimeout(() => child.kill('SIGKILL'), runTimeoutMs - 5_000);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.on('exit', (code, signal) => done({ code, signal })));
  const request = await received;
  for (const [index, signal] of signals.entries()) {
    if (index > 0) await new Promise((done) => setTimeout(done, gapMs));
    child.kill(signal);
  }
  const end = await ended;
  clearTimeout(stuck);
  return { ...end, stdout, stderr, key: request.key, path: request.url };
}

const book = ['shipments', 'book', '--export-allocation', 'A-88', '--import-allocation', 'A-89', '--product', 'PRD-21', '--units', '7', '--deadline', '2030-01-01T00:00:00Z', '--reference', 'CTRLC'];

describe('a change interrupted while its answer is awaited', () => {
  it('on Ctrl-C (SIGINT) prints the key and the command that reruns it with that key, and exits 130', async () => {
    const run = await interrupted(book, ['SIGINT']);
    expect(run.path).toBe('/v1/shipments');
    expect({ code: run.code, signal: run.signal }, run.stderr).toEqual({ code: 130, signal: null });
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      'chipledger: interrupted (SIGINT) while waiting for the answer to POST /v1/shipments',
      `chipledger: the outcome is unknown: the change may have been made or not (sent once with Idempotency-Key ${run.key}).`,
      '  To learn it, rerun the command with the same key: if the change was made, the answer says so and nothing is done twice; if not, it is made then:',
      `  chipledger shipments book --export-allocation A-88 --import-allocation A-89 --product PRD-21 --units 7 --deadline 2030-01-01T00:00:00.000Z --reference CTRLC --idempotency-key ${run.key}`,
    ]);
  }, runTimeoutMs);

  it('takes a second Ctrl-C right after the first as the same one (under npm each reaches the process twice)', async () => {
    const run = await interrupted(book, ['SIGINT', 'SIGINT'], 20);
    expect({ code: run.code, signal: run.signal }, run.stderr).toEqual({ code: 130, signal: null });
    expect(run.stderr).toContain(`--idempotency-key ${run.key}`);
  }, runTimeoutMs);

  it('says the change was not sent when no attempt could connect, as it says once it gives up on one', async () => {
    // A port nothing listens on: each attempt is refused, and the signal comes in the wait before the next.
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((done) => closed.close(done));
    const env = Object.fromEntries(Object.entries(cleanServeEnv({ CHIPLEDGER_URL: `http://127.0.0.1:${port}`, CHIPLEDGER_TOKEN: 'clt_interrupt_test', CHIPLEDGER_DATA_DIR: join(folder, 'data') })).filter(([name]) => !name.startsWith('npm_')));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'licences', 'issue', 'L-87'], { cwd: repositoryRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const retrying = new Promise<void>((done) => child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (stderr.includes('sending it again')) done();
    }));
    const ended = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const stuck = setTimeout(() => child.kill('SIGKILL'), runTimeoutMs - 5_000);
    await retrying;
    child.kill('SIGINT');
    const code = await ended;
    clearTimeout(stuck);
    expect(code, stderr).toBe(130);
    const lines = stderr.trimEnd().split('\n');
    expect(lines.slice(-2)).toEqual([
      'chipledger: interrupted (SIGINT) while waiting for the answer to POST /v1/licences/L-87/issue',
      'chipledger: the change was not sent (no attempt could connect; tried once), so nothing was done, and running the command again is safe.',
    ]);
  }, runTimeoutMs);

  it('on SIGTERM says the same, and exits 143; for `api POST` too', async () => {
    const run = await interrupted(['api', 'POST', '/v1/licences/L-7/issue'], ['SIGTERM']);
    expect({ code: run.code, signal: run.signal }, run.stderr).toEqual({ code: 143, signal: null });
    expect(run.stderr).toContain('chipledger: interrupted (SIGTERM) while waiting for the answer to POST /v1/licences/L-7/issue');
    expect(run.stderr).toContain(`(sent once with Idempotency-Key ${run.key})`);
    expect(run.stderr).toContain(`  chipledger api POST /v1/licences/L-7/issue --idempotency-key ${run.key}`);
  }, runTimeoutMs);
});

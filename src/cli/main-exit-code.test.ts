/**
 * The `chipledger` process's exit code when its reader leaves early (main.ts, stdout-closed.ts):
 * a command that has already failed keeps its non-zero code, so `chipledger … | head` under
 * `set -o pipefail` still fails; one that succeeded, or is still running, ends quietly with 0.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { cleanServeEnv } from '../../test/support/http-serve.ts';

const repositoryRoot = resolve(import.meta.dirname, '../..');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-main-exit-'));
/** A start of tsx on a loaded 2-core machine, and the whole pipeline after it. */
const pipelineTimeoutMs = 60_000;
/** Each page's one item: the pages --all gathers pass a pipe's 64 KiB many times over. */
const itemText = 'x'.repeat(64 * 1024);
let server: Server;
let url: string;

beforeAll(async () => {
  // A list that never ends: every page has a cursor to a next one, so `--all` stops at its page bound (exit 1).
  server = createServer((request, response) => {
    const page = Number(new URL(request.url ?? '/', 'http://x').searchParams.get('cursor') ?? '0');
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ items: [{ id: `E-${page}`, note: itemText }], nextCursor: String(page + 1) }));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((done) => server.close(done));
  rmSync(folder, { recursive: true, force: true });
});

/** `chipledger ARGS | <reader>` in bash with pipefail: the pipeline's status is chipledger's when it failed. */
async function pipeline(args: string, reader: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', ['-o', 'pipefail', '-c', `node --import tsx src/cli/main.ts ${args} | ${reader}`], {
    cwd: repositoryRoot,
    env: cleanServeEnv({ CHIPLEDGER_URL: url, CHIPLEDGER_TOKEN: 'clt_main_exit_test', CHIPLEDGER_DATA_DIR: join(folder, 'data') }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const stuck = setTimeout(() => child.kill('SIGKILL'), pipelineTimeoutMs - 5_000);
  const code = await new Promise<number | null>((done) => child.on('exit', (exitCode) => done(exitCode)));
  clearTimeout(stuck);
  return { code, stdout, stderr };
}

describe('chipledger whose reader leaves early', () => {
  it('keeps the failure of a command that failed (exit 1), not exit 0', async () => {
    const { code, stdout, stderr } = await pipeline("api GET '/v1/events?limit=1' --all --json", 'head -c 10');
    expect(stdout).toBe('{"items":[');
    expect(stderr).toContain(`chipledger: stopped after ${limits.reportPagesMax} pages, before the end of the list`);
    expect(code, stderr).toBe(1);
  }, pipelineTimeoutMs);
});

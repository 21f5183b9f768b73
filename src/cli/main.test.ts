/**
 * The `chipledger` process's exit (main.ts), through real pipes (newcomer review, finding 1):
 * an answer larger than a pipe's 64 KiB buffer reaches the reader whole before the process
 * exits, and a reader that leaves early (`| head`) ends the command quietly, neither crashing
 * it with EPIPE nor leaving it waiting.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanServeEnv } from '../../test/support/http-serve.ts';

const repositoryRoot = resolve(import.meta.dirname, '../..');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-main-'));
/** Sixteen times a pipe's buffer, so most of it is still queued in the process when the command returns. */
const answerBytesMin = 16 * 64 * 1024;
/** The one answer of the stand-in API: a list page far larger than a pipe holds. */
const answer = { items: Array.from({ length: 2_000 }, (_, index) => ({ id: `E-${index}`, note: 'x'.repeat(answerBytesMin / 2_000) })), nextCursor: null };
const answerLine = `${JSON.stringify(answer)}\n`;
/** A start of tsx on a loaded 2-core machine, and the whole pipeline after it. */
const pipelineTimeoutMs = 60_000;
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(answer));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((done) => server.close(done));
  rmSync(folder, { recursive: true, force: true });
});

/** `chipledger api GET /v1/events --json | <reader>` in bash with pipefail: the pipeline's status is chipledger's when it failed. */
async function pipeline(reader: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const command = `node --import tsx src/cli/main.ts api GET /v1/events --json | ${reader}`;
  const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
    cwd: repositoryRoot,
    env: cleanServeEnv({ CHIPLEDGER_URL: url, CHIPLEDGER_TOKEN: 'clt_main_test', CHIPLEDGER_DATA_DIR: join(folder, 'data') }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  // A pipeline that hangs is stopped, so that the test fails rather than waits for ever.
  const stuck = setTimeout(() => child.kill('SIGKILL'), pipelineTimeoutMs - 5_000);
  const code = await new Promise<number | null>((done) => child.on('exit', (exitCode) => done(exitCode)));
  clearTimeout(stuck);
  return { code, stdout, stderr };
}

describe('chipledger writing into a pipe', () => {
  it('delivers an answer far larger than the pipe holds whole, then exits 0', async () => {
    expect(answerLine.length).toBeGreaterThan(answerBytesMin);
    const { code, stdout, stderr } = await pipeline('cat');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout.length).toBe(answerLine.length);
    expect(stdout).toBe(answerLine);
  }, pipelineTimeoutMs);

  it('ends quietly with exit 0 when the reader leaves early (| head), neither crashing on EPIPE nor hanging', async () => {
    const { code, stdout, stderr } = await pipeline('head -c 10');
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: answerLine.slice(0, 10), stderr: '' });
  }, pipelineTimeoutMs);
});

/**
 * Flags win over the environment (README, Configuration), also in the check every command
 * starts with: a flag stands in for a bad variable, and a variable no flag overrides is still
 * checked.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSignerKey } from '../tlog/index.ts';
import type { Output } from './output.ts';
import { main } from './program.ts';

const root = resolve(import.meta.dirname, '../..');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-program-config-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

async function run(args: string[], env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const err: string[] = [];
  const output: Output = { out: () => {}, err: (line) => err.push(line), errStream: { isTTY: false, write: (text) => err.push(text) > 0 } };
  const code = await main(args, { CHIPLEDGER_DATA_DIR: join(folder, 'data'), ...env }, output);
  return { code, stderr: err.join('\n') };
}

/** `chipledger ARGS` as a process with only these settings: serve takes over the signals of the process it runs in. */
async function runProcess(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env: { ...clean, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number | null>((done) => child.on('exit', done));
  return { code, stderr };
}

async function listening(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  return { port: typeof address === 'object' && address !== null ? address.port : 0, server };
}

describe('flags over the environment', () => {
  it('serve --port and --host stand in for a bad CHIPLEDGER_PORT and CHIPLEDGER_HOST', async () => {
    // A taken port: serve gets past the configuration and stops at the port, before PostgreSQL.
    const { port, server } = await listening();
    try {
      const result = await runProcess(['serve', '--port', String(port), '--host', '127.0.0.1'], {
        CHIPLEDGER_DATA_DIR: join(folder, 'serve'), CHIPLEDGER_PORT: 'eighty', CHIPLEDGER_HOST: 'not a host!',
        CHIPLEDGER_LOG_SIGNER_KEY: generateSignerKey('log.program-config.test').signerKey,
      });
      expect(result.stderr).not.toContain('configuration');
      expect(result.stderr).toContain(`chipledger: port ${port} on 127.0.0.1 is already in use`);
      expect(result.code).toBe(1);
    } finally {
      server.close();
    }
  });

  it('a bad flag is named as the flag', async () => {
    const result = await run(['serve', '--port', 'eighty'], { CHIPLEDGER_PORT: '9000' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--port: must be a whole number from 1 to 65535 (got "eighty")');
    expect(result.stderr).not.toContain('CHIPLEDGER_PORT');
  });

  it('a variable no flag of the command overrides is still checked', async () => {
    const result = await run(['migrate'], { CHIPLEDGER_PORT: 'eighty' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('CHIPLEDGER_PORT: must be a whole number from 1 to 65535 (got "eighty")');
  });
});

/**
 * `chipledger serve --demo` on a database that already holds other data: refused, exit 1, with
 * the events counted, and nothing loaded (the demo goes through loadDemo, which decides).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile } from '../../test/world.ts';
import { demoState } from '../demo/load.ts';
import { findFreePort } from '../store/embedded.ts';

const root = resolve(import.meta.dirname, '../..');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-serve-demo-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

let database: TestDatabase;
worldPerFile((_world, madeDatabase) => { database = madeDatabase; });

describe('chipledger serve --demo on a database with other data', () => {
  it('refuses to load the demo there (exit 1), naming the events it holds, and loads nothing', async () => {
    const events = Number((await database.pool.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
    const port = await findFreePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--demo', '--port', String(port)], {
      cwd: root, env: { ...env, DATABASE_URL: database.url, CHIPLEDGER_DATA_DIR: join(folder, 'data') }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    const code = await new Promise<number | null>((done) => child.on('exit', (exitCode) => done(exitCode)));
    expect(code, stderr).toBe(1);
    expect(stderr).toContain(`this database holds non-demo data (${events} events); the demo loads only into an empty database`);
    expect(stdout).not.toContain('clt_');
    expect(await demoState(database.pool)).toBe('absent');
  }, 60_000);
});

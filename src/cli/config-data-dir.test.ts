/**
 * A data dir that is a file (or lies below one) is a configuration problem for the commands
 * that open it: one clear line and exit 2, said before the folder is made (ops review: an
 * "unexpected error" with an EEXIST or ENOTDIR stack, exit 1). Client commands, which never
 * open it, are not stopped by a file of that name.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { dataDirProblem, readConfig } from './config.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-data-dir-'));
const file = join(folder, 'afile');
writeFileSync(file, 'not a folder\n');
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function problemsOf(dataDir: string): string[] {
  const problem = dataDirProblem(resolve(folder, dataDir));
  return problem === undefined ? [] : [problem];
}

describe('CHIPLEDGER_DATA_DIR', () => {
  it('is refused, naming the file, when it is a file or lies below one', () => {
    expect(problemsOf(file)).toEqual([`CHIPLEDGER_DATA_DIR: ${file} cannot be a folder: it is a file, not a folder; choose another folder, or move the file`]);
    expect(problemsOf(join(file, 'sub', 'deeper'))).toEqual([`CHIPLEDGER_DATA_DIR: ${join(file, 'sub', 'deeper')} cannot be a folder: ${file}, on its path, is a file, not a folder; choose another folder, or move the file`]);
  });

  it('is taken when it is a folder, or a folder still to be made anywhere below one', () => {
    mkdirSync(join(folder, 'made'));
    expect(problemsOf(join(folder, 'made'))).toEqual([]);
    expect(problemsOf(join(folder, 'not', 'yet', 'made'))).toEqual([]);
    expect(problemsOf('relative/below/cwd')).toEqual([]);
  });

  it('does not stop reading the configuration: a client command has no use for the folder', () => {
    expect(readConfig({ CHIPLEDGER_DATA_DIR: file }, {}, folder).ok).toBe(true);
  });

  it('that is a file stops a command with one line and exit 2, not a stack', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CHIPLEDGER_') && name !== 'DATABASE_URL'));
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'migrate'], { cwd: root, env: { ...env, CHIPLEDGER_DATA_DIR: file }, encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).not.toMatch(/unexpected error|EEXIST|ENOTDIR|    at /);
    expect(run.stderr).toContain(`CHIPLEDGER_DATA_DIR: ${file} cannot be a folder: it is a file`);
  });
});

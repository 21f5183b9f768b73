/**
 * What a killed write left beside its file is removed by the next write of that file: only
 * that file's temporaries, only a dead process's, only once old enough.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replaceFile } from './replace-file.ts';
import { writeKeyFile } from './log-key.ts';
import { generateSignerKey } from '../tlog/index.ts';
import { removeStaleTemporaries, staleTemporaryAgeMsMin } from './stale-temporaries.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-stale-temporaries-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** A pid no process has here: past the kernel's pid_max. */
const deadPid = 4_194_305;

function leftBehind(name: string, ageMs = 2 * staleTemporaryAgeMsMin): string {
  const path = join(folder, name);
  writeFileSync(path, 'secret', { mode: 0o600 });
  const at = (Date.now() - ageMs) / 1000;
  utimesSync(path, at, at);
  return path;
}

describe('removeStaleTemporaries', () => {
  it('removes a dead process\'s old temporaries of the file, and nothing else', () => {
    const stale = leftBehind(`state.json.${deadPid}.a1b2c3d4e5f6.tmp`);
    const young = leftBehind(`state.json.${deadPid}.0123456789ab.tmp`, 1_000);
    const live = leftBehind(`state.json.${process.pid}.ffffffffffff.tmp`);
    const otherFile = leftBehind(`other.json.${deadPid}.a1b2c3d4e5f6.tmp`);
    const notOurs = leftBehind('state.json.backup.tmp');
    expect(removeStaleTemporaries(folder, 'state.json')).toEqual([stale]);
    expect([young, live, otherFile, notOurs].every((path) => existsSync(path))).toBe(true);
  });

  it('runs before a file is replaced and before a key file is written (a key\'s temporary holds the private key)', async () => {
    const stateLeft = leftBehind(`monitor.state.${deadPid}.00aa00aa00aa.tmp`);
    await replaceFile(join(folder, 'monitor.state'), '{}', { mode: 0o600, folderSync: 'where-possible' });
    expect(existsSync(stateLeft)).toBe(false);
    const keyLeft = leftBehind(`.log.key.${deadPid}.00aa00aa.tmp`);
    writeKeyFile(join(folder, 'log.key'), generateSignerKey('stale.test').signerKey);
    expect(existsSync(keyLeft)).toBe(false);
    expect(readdirSync(folder).filter((name) => name.includes('log.key'))).toEqual(['log.key']);
  });
});

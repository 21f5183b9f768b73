import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSignerKey } from '../tlog/index.ts';
import { readConfig } from './config.ts';
import { demoLogOrigin, loadLogSignerKey, readKeyFile, writeKeyFile } from './log-key.ts';

const output = { out: () => {}, err: () => {} };

function configIn(folder: string, env: NodeJS.ProcessEnv = {}) {
  const result = readConfig({ CHIPLEDGER_DATA_DIR: folder, ...env }, {}, folder);
  if (!result.ok) throw new Error(result.problems.join('; '));
  return result.config;
}

describe('log signing key', () => {
  it('is never made silently outside the demo', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'chipledger-key-'));
    await expect(loadLogSignerKey(configIn(folder), false, output as never)).rejects.toThrow(/no transparency-log signing key.*log keygen/);
  });

  it('is made once for the demo, with mode 0600, and reused', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'chipledger-key-'));
    const first = await loadLogSignerKey(configIn(folder), true, output as never);
    expect(first).toContain(`PRIVATE+KEY+${demoLogOrigin}+`);
    expect(statSync(join(folder, 'demo-log-signer.key')).mode & 0o777).toBe(0o600);
    expect(await loadLogSignerKey(configIn(folder), true, output as never)).toBe(first);
  });

  it('refuses a key file others can read, and never overwrites one', () => {
    const folder = mkdtempSync(join(tmpdir(), 'chipledger-key-'));
    const file = join(folder, 'log.key');
    const key = generateSignerKey('log.example');
    writeKeyFile(file, key.signerKey);
    expect(readKeyFile(file)).toBe(key.signerKey);
    expect(() => writeKeyFile(file, generateSignerKey('other').signerKey)).toThrow(/couldn't write/);
    expect(readFileSync(file, 'utf8').trim()).toBe(key.signerKey);
    chmodSync(file, 0o644);
    expect(() => readKeyFile(file)).toThrow(/readable by others/);
    writeFileSync(join(folder, 'junk.key'), 'hello\n', { mode: 0o600 });
    expect(() => readKeyFile(join(folder, 'junk.key'))).toThrow(/does not hold a C2SP Ed25519 signer key/);
  });
});

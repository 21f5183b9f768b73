import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { generateSignerKey } from '../tlog/index.ts';
import { readConfig } from './config.ts';
import { demoLogOrigin, demoSignerKey, readKeyFile, readLogKeys, writeKeyFile } from './log-key.ts';

const output = { out: () => {}, err: () => {} };
/** The file's folder, removed after it: it holds private keys (test ones, but keys) and a FIFO. */
const root = mkdtempSync(join(tmpdir(), 'chipledger-key-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
/** A folder of its own for each test. */
const newFolder = () => mkdtempSync(join(root, 'case-'));

function configIn(folder: string, env: NodeJS.ProcessEnv = {}) {
  const result = readConfig({ CHIPLEDGER_DATA_DIR: join(folder, 'data'), ...env }, {}, folder);
  if (!result.ok) throw new Error(result.problems.join('; '));
  return result.config;
}

function problemsOf(result: ReturnType<typeof readLogKeys>): string[] {
  if (result.ok) expect.fail('expected log key problems');
  return result.problems;
}

describe('log signing key', () => {
  it('is never made silently outside the demo', () => {
    const folder = newFolder();
    expect(problemsOf(readLogKeys(configIn(folder), false))).toEqual([expect.stringMatching(/^no transparency-log signing key: set CHIPLEDGER_LOG_KEY_FILE .*log keygen.* or CHIPLEDGER_LOG_SIGNER_KEY$/)]);
    expect(existsSync(join(folder, 'data'))).toBe(false);
  });

  it('is made once for the demo, with mode 0600, and reused', () => {
    const folder = newFolder();
    const config = configIn(folder);
    expect(readLogKeys(config, true)).toEqual({ ok: true, keys: { signer: { kind: 'demo' }, previousSignerKey: undefined } });
    expect(existsSync(join(folder, 'data')), 'checking makes nothing').toBe(false);
    const first = demoSignerKey(config, output as never);
    expect(first).toContain(`PRIVATE+KEY+${demoLogOrigin}+`);
    expect(statSync(join(folder, 'data', 'demo-log-signer.key')).mode & 0o777).toBe(0o600);
    expect(demoSignerKey(config, output as never)).toBe(first);
  });

  it('comes from the key file or the key setting, with the previous key for a rotation', () => {
    const folder = newFolder();
    const key = generateSignerKey('log.example');
    const previous = generateSignerKey('log.example');
    writeKeyFile(join(folder, 'log.key'), key.signerKey);
    writeKeyFile(join(folder, 'previous.key'), previous.signerKey);
    expect(readLogKeys(configIn(folder, { CHIPLEDGER_LOG_KEY_FILE: 'log.key', CHIPLEDGER_LOG_PREVIOUS_KEY_FILE: 'previous.key' }), false))
      .toEqual({ ok: true, keys: { signer: { kind: 'configured', signerKey: key.signerKey }, previousSignerKey: previous.signerKey } });
    // A configured key wins over the demo's own.
    expect(readLogKeys(configIn(folder, { CHIPLEDGER_LOG_SIGNER_KEY: key.signerKey }), true))
      .toEqual({ ok: true, keys: { signer: { kind: 'configured', signerKey: key.signerKey }, previousSignerKey: undefined } });
  });

  it('lists every problem with the key files at once, each naming its setting', () => {
    const folder = newFolder();
    writeFileSync(join(folder, 'open.key'), `${generateSignerKey('log.example').signerKey}\n`, { mode: 0o644 });
    chmodSync(join(folder, 'open.key'), 0o644);
    const problems = problemsOf(readLogKeys(configIn(folder, { CHIPLEDGER_LOG_KEY_FILE: '/nonexistent/log.key', CHIPLEDGER_LOG_PREVIOUS_KEY_FILE: 'open.key' }), true));
    expect(problems).toEqual([
      expect.stringMatching(/^CHIPLEDGER_LOG_KEY_FILE: couldn't read the log signing key \/nonexistent\/log\.key: ENOENT/),
      `CHIPLEDGER_LOG_PREVIOUS_KEY_FILE: the log signing key ${join(folder, 'open.key')} is open to its group or others (mode 644); run chmod 600 ${join(folder, 'open.key')}`,
    ]);
    expect(problems.join('\n')).not.toContain('PRIVATE+KEY');
  });

  it('refuses a folder, a file too long to be a key, and a FIFO without waiting on it', () => {
    const folder = newFolder();
    mkdirSync(join(folder, 'folder.key'), { mode: 0o700 });
    expect(() => readKeyFile(join(folder, 'folder.key'))).toThrow(/is not a file/);
    writeFileSync(join(folder, 'long.key'), 'x'.repeat(limits.keyFileBytesMax + 1), { mode: 0o600 });
    expect(() => readKeyFile(join(folder, 'long.key'))).toThrow(/is longer than 16384 bytes/);
    if (process.platform === 'linux') {
      const fifo = join(folder, 'fifo.key');
      execFileSync('mkfifo', ['-m', '600', fifo]);
      expect(() => readKeyFile(fifo)).toThrow(/is not a file/);
    }
  });

  it('refuses a key file others can read, and never overwrites one', () => {
    const folder = newFolder();
    const file = join(folder, 'log.key');
    const key = generateSignerKey('log.example');
    writeKeyFile(file, key.signerKey);
    expect(readKeyFile(file)).toBe(key.signerKey);
    expect(() => writeKeyFile(file, generateSignerKey('other').signerKey)).toThrow(/exists; refusing to overwrite a key/);
    expect(readFileSync(file, 'utf8').trim()).toBe(key.signerKey);
    chmodSync(file, 0o644);
    expect(() => readKeyFile(file)).toThrow(/open to its group or others/);
    writeFileSync(join(folder, 'junk.key'), 'hello\n', { mode: 0o600 });
    expect(() => readKeyFile(join(folder, 'junk.key'))).toThrow(/does not hold a C2SP Ed25519 signer key/);
  });
});

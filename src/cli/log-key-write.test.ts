/**
 * A key file is written whole or not at all (writeKeyFile; the packaging review, finding 2): a
 * keygen that died between making the file and writing its text left an empty key file, which
 * the next keygen refused to replace. Here a file-size limit of 0 (ulimit -f 0) fails the
 * writer's first write (EFBIG, or SIGXFSZ ends the process), as a full disk or a crash would.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSignerKey } from '../tlog/index.ts';
import { readKeyFile, writeKeyFile } from './log-key.ts';

const repositoryRoot = resolve(import.meta.dirname, '../..');
const folder = mkdtempSync(join(tmpdir(), 'chipledger-key-write-'));
/** A start of tsx on a loaded 2-core machine. */
const childTimeoutMs = 60_000;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** writeKeyFile in a process of its own whose files may not grow past 0 bytes. */
function writeWithNoRoom(file: string): ReturnType<typeof spawnSync> {
  const script = `import { writeKeyFile } from './src/cli/log-key.ts'; writeKeyFile(process.argv[1], ${JSON.stringify(generateSignerKey('log.example').signerKey)});`;
  const env = { ...process.env, TSX_DISABLE_CACHE: '1' };
  return spawnSync('bash', ['-c', 'ulimit -f 0; exec node --import tsx --input-type=module -e "$0" "$1"', script, file], { cwd: repositoryRoot, env, encoding: 'utf8', timeout: childTimeoutMs });
}

describe('a key file', () => {
  it('is not left behind, empty or partial, by a writer stopped before its text was written', () => {
    const file = join(folder, 'stopped.key');
    const run = writeWithNoRoom(file);
    expect(run.status === 0 && run.signal === null, `the writer was stopped (status ${run.status}, signal ${run.signal})`).toBe(false);
    expect(existsSync(file), 'no file under the key\'s name').toBe(false);
    // The next keygen is free to write it.
    const key = generateSignerKey('log.example');
    writeKeyFile(file, key.signerKey);
    expect(readKeyFile(file)).toBe(key.signerKey);
  });

  it('is made with mode 0600 whatever the umask, leaves no temporary file, and never replaces a file', () => {
    const file = join(folder, 'made.key');
    const before = process.umask(0o000);
    try {
      writeKeyFile(file, generateSignerKey('log.example').signerKey);
    } finally {
      process.umask(before);
    }
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const kept = readKeyFile(file);
    expect(() => writeKeyFile(file, generateSignerKey('log.example').signerKey)).toThrow(`${file} exists; refusing to overwrite a key (move it away first)`);
    expect(readKeyFile(file)).toBe(kept);
    expect(readdirSync(folder).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});

/**
 * Reading the log's verifier key from the command line: a file name given where the key goes
 * is a usage error that says how to pass the file, or its contents.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { limits } from '../../core/limits.ts';
import { generateSignerKey } from '../../tlog/index.ts';
import { Failure } from '../output.ts';
import { verifierOf } from './command-kit.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-log-key-option-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
const logKey = generateSignerKey('chipledger.example/log');
const keyFile = join(folder, 'log.vkey');
writeFileSync(keyFile, `${logKey.verifierKey}\n`);

async function refusal(run: Promise<unknown>): Promise<Failure> {
  const error = await run.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(Failure);
  return error as Failure;
}

describe('the log key option', () => {
  it('given a file that exists, says to pass it with --key-file or its contents with --key "$(cat FILE)" (exit 2)', async () => {
    const failure = await refusal(verifierOf({ key: keyFile }));
    expect(failure.exitCode).toBe(2);
    expect(failure.message).toBe(`chipledger: --key takes the key itself (name+hexid+base64), and "${keyFile}" is a file; give the file with --key-file ${keyFile}, or its contents with --key "$(cat ${keyFile})"`);
    expect((await verifierOf({ keyFile })).name).toBe('chipledger.example/log');
  });

  it('given what looks like a file name, says so under the flag the command takes (witness: --log-key)', async () => {
    const failure = await refusal(verifierOf({ key: 'etc/log.vkey' }, '--log-key'));
    expect(failure.message).toBe('chipledger: --log-key takes the key itself (name+hexid+base64), and "etc/log.vkey" looks like a file name; give the file with --log-key-file etc/log.vkey, or its contents with --log-key "$(cat etc/log.vkey)"');
  });

  it('names a --key-file it cannot read by its absolute path (under `npm run`, a relative one is taken from the repository root)', async () => {
    const failure = await refusal(verifierOf({ keyFile: join('no-such-folder', 'log.vkey') }));
    expect(failure.message).toBe(`couldn't read the verifier key file ${join(process.cwd(), 'no-such-folder', 'log.vkey')}: ENOENT: no such file or directory, open 'no-such-folder/log.vkey'`);
  });

  // The files review, finding 4: /dev/zero grew the process to 677 MB before it failed, and a FIFO with no writer hung it.
  it('reads a --key-file as serve reads its key files: a device, a FIFO or a folder is refused at once, and a file only up to its bound', async () => {
    const fifo = join(folder, 'log.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const path of ['/dev/zero', fifo, folder]) {
      const failure = await refusal(verifierOf({ keyFile: path }));
      expect(failure.message).toBe(`couldn't read the verifier key file ${path}: it is not a regular file`);
    }
    const long = join(folder, 'long.vkey');
    writeFileSync(long, `${logKey.verifierKey}\n${' '.repeat(limits.keyFileBytesMax)}`);
    expect((await refusal(verifierOf({ keyFile: long }))).message).toBe(`the verifier key file ${long} is longer than ${limits.keyFileBytesMax} bytes: it is not a verifier key`);
    // At the bound, it is read (the key is trimmed of its blank lines).
    writeFileSync(long, `${logKey.verifierKey}\n`.padEnd(limits.keyFileBytesMax, '\n'));
    expect((await verifierOf({ keyFile: long })).name).toBe('chipledger.example/log');
  });

  it('a mistyped key (its origin holds a slash) is not taken for a file name', async () => {
    const failure = await refusal(verifierOf({ key: `${logKey.verifierKey.slice(0, -4)}` }));
    expect(failure.message).toMatch(/^chipledger: --key: couldn't read verifier key/);
  });
});

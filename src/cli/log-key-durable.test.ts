/**
 * A key file `log keygen` (or serve --demo) made is on disk before the command returns (the
 * files review, "suspected"): the key's text is fsynced, and so is its folder once the name is
 * linked, so a power loss just after keygen printed its verifier key cannot leave the name
 * free. Where the file system has no hard links and the key is written in place, it is
 * fsynced there too, then its folder.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';

/** The calls that make the key durable, in order, each with the path its descriptor was opened on. */
const calls: string[] = [];
/** When set, link() fails with this code, as on a file system without hard links. */
let linkRefused: string | undefined;
/** When set, fsync() of this path fails: EIO, as on a disk that gave out, unless another code is given. */
let fsyncFails: string | undefined;
let fsyncFailsWith: { code: string; message: string } = { code: 'EIO', message: 'EIO: i/o error, fsync' };
/** When set, open() of this path fails as Windows fails it for a folder. */
let openFails: string | undefined;
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const opened = new Map<number, string>();
  return {
    ...real,
    openSync: (...args: Parameters<typeof real.openSync>) => {
      if (String(args[0]) === openFails) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, open '${openFails}'`), { code: 'EISDIR' });
      const fd = real.openSync(...args);
      opened.set(fd, String(args[0]));
      return fd;
    },
    fsyncSync: (fd: number) => {
      calls.push(`fsync ${opened.get(fd)}`);
      if (opened.get(fd) === fsyncFails) throw Object.assign(new Error(fsyncFailsWith.message), { code: fsyncFailsWith.code });
      real.fsyncSync(fd);
    },
    linkSync: (from: string, to: string) => {
      if (linkRefused !== undefined) throw Object.assign(new Error(`${linkRefused}: operation not permitted, link`), { code: linkRefused });
      calls.push(`link ${from} ${to}`);
      real.linkSync(from, to);
    },
  };
});

const { readKeyFile, writeKeyFile } = await import('./log-key.ts');
const { generateSignerKey } = await import('../tlog/index.ts');

const folder = mkdtempSync(join(tmpdir(), 'chipledger-key-durable-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
beforeEach(() => {
  calls.length = 0;
  linkRefused = undefined;
  fsyncFails = undefined;
  fsyncFailsWith = { code: 'EIO', message: 'EIO: i/o error, fsync' };
  openFails = undefined;
});

describe('a new key file', () => {
  it('is fsynced under its temporary name, linked to its own, then its folder is fsynced', () => {
    const file = join(folder, 'linked.key');
    const key = generateSignerKey('log.example');
    writeKeyFile(file, key.signerKey);
    expect(readKeyFile(file)).toBe(key.signerKey);
    const temporary = calls[0]!.slice('fsync '.length);
    expect(basename(temporary)).toMatch(new RegExp(`^\\.linked\\.key\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`));
    expect(calls).toEqual([`fsync ${temporary}`, `link ${temporary} ${file}`, `fsync ${folder}`]);
  });

  it('written in place where the file system refuses hard links, is fsynced there, then its folder, and leaves no temporary file', () => {
    linkRefused = 'EPERM';
    const file = join(folder, 'in-place.key');
    const key = generateSignerKey('log.example');
    writeKeyFile(file, key.signerKey);
    expect(readKeyFile(file)).toBe(key.signerKey);
    expect(calls.slice(1)).toEqual([`fsync ${file}`, `fsync ${folder}`]);
    expect(readdirSync(folder).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('is written where a folder cannot be opened or fsynced (Windows, some file systems): its name is then left as the system keeps it', () => {
    const noFolderFsync = () => {
      fsyncFails = folder;
      fsyncFailsWith = { code: 'EINVAL', message: 'EINVAL: invalid argument, fsync' };
    };
    for (const [file, fail] of [[join(folder, 'no-open.key'), () => { openFails = folder; }], [join(folder, 'no-fsync.key'), noFolderFsync]] as const) {
      fail();
      const key = generateSignerKey('log.example');
      writeKeyFile(file, key.signerKey);
      expect(readKeyFile(file)).toBe(key.signerKey);
    }
    expect(readdirSync(folder).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('fails keygen when the disk fails its folder\'s fsync (EIO): the key is whole under its name, but its verifier key is not given out', () => {
    const file = join(folder, 'eio.key');
    fsyncFails = folder;
    const signerKey = generateSignerKey('log.example').signerKey;
    expect(() => writeKeyFile(file, signerKey)).toThrow(`wrote the key file ${file}, but couldn't fsync its folder ${folder} (EIO: i/o error, fsync), so the file may be gone after a power loss; its verifier key is not given out: move the file away and make a new key once the disk is sound`);
    // What the user finds: the file, whole, and the next keygen refusing to write over it.
    expect(readKeyFile(file)).toBe(signerKey);
    expect(readdirSync(folder).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    fsyncFails = undefined;
    expect(() => writeKeyFile(file, generateSignerKey('log.example').signerKey)).toThrow(`${file} exists; refusing to overwrite a key (move it away first)`);
  });

  it('written in place, is removed when it cannot be made durable: no partial key is left for the next keygen to refuse', () => {
    linkRefused = 'EPERM';
    const file = join(folder, 'failed.key');
    fsyncFails = file;
    expect(() => writeKeyFile(file, generateSignerKey('log.example').signerKey)).toThrow(`couldn't write the key file ${file}: EIO: i/o error, fsync`);
    expect(readdirSync(folder).filter((name) => name.startsWith('failed.key') || name.startsWith('.failed.key'))).toEqual([]);
  });
});

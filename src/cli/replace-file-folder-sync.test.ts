/**
 * replaceFile's 'where-possible' folder fsync (the diff review): it passes over a system that
 * cannot fsync a folder at all (Windows, some file systems), never a disk that failed the
 * fsync (EIO), which used to be passed over too, the rename perhaps lost with the write said done.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

/** When set, the folder's fsync fails with this code. */
let folderFsyncFails: string | undefined;
/** When set, opening the folder fails with this code. */
let folderOpenFails: string | undefined;
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    open: async (...args: Parameters<typeof real.open>) => {
      const isFolder = String(args[0]) === folder;
      if (isFolder && folderOpenFails !== undefined) throw Object.assign(new Error(`${folderOpenFails}: open '${folder}'`), { code: folderOpenFails });
      const handle = await real.open(...args);
      if (isFolder && folderFsyncFails !== undefined) {
        const code = folderFsyncFails;
        handle.sync = async () => {
          throw Object.assign(new Error(`${code}: fsync`), { code });
        };
      }
      return handle;
    },
  };
});

const { replaceFile } = await import('./replace-file.ts');

const folder = mkdtempSync(join(tmpdir(), 'chipledger-replace-sync-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
afterEach(() => {
  folderFsyncFails = undefined;
  folderOpenFails = undefined;
});

describe("replaceFile's folder fsync 'where-possible'", () => {
  it('leaves the rename as it is where the system cannot open or fsync a folder', async () => {
    const path = join(folder, 'unsupported.json');
    for (const [fail, code] of [['open', 'EISDIR'], ['fsync', 'EINVAL'], ['fsync', 'ENOTSUP']] as const) {
      folderOpenFails = fail === 'open' ? code : undefined;
      folderFsyncFails = fail === 'fsync' ? code : undefined;
      await replaceFile(path, `${code}\n`, { mode: 0o600, folderSync: 'where-possible' });
      expect(readFileSync(path, 'utf8')).toBe(`${code}\n`);
    }
  });

  it('fails the write when the disk fails the folder\'s fsync (EIO), or the folder cannot be opened for another reason', async () => {
    const path = join(folder, 'eio.json');
    writeFileSync(path, 'old\n');
    folderFsyncFails = 'EIO';
    await expect(replaceFile(path, 'new\n', { mode: 0o600, folderSync: 'where-possible' })).rejects.toMatchObject({ code: 'EIO' });
    folderFsyncFails = undefined;
    folderOpenFails = 'EMFILE';
    await expect(replaceFile(path, 'newer\n', { mode: 0o600, folderSync: 'where-possible' })).rejects.toMatchObject({ code: 'EMFILE' });
  });

  it("fails the write on any folder that cannot be fsynced when it is 'required'", async () => {
    folderFsyncFails = 'EINVAL';
    await expect(replaceFile(join(folder, 'required.json'), 'new\n', { mode: 0o600, folderSync: 'required' })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it("fails the write on a folder that cannot be opened when it is 'required', for the reasons 'where-possible' passes over too", async () => {
    // The published checkpoint's guard (replaceNote) counts a write as recorded only once its rename is on disk.
    for (const code of ['EISDIR', 'EPERM', 'EACCES']) {
      folderOpenFails = code;
      await expect(replaceFile(join(folder, 'required-open.json'), `${code}\n`, { mode: 0o600, folderSync: 'required' })).rejects.toMatchObject({ code });
    }
  });
});

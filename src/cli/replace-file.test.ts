/**
 * replaceFile's temporary file (the files review, finding 1b): a link planted under its name
 * by whoever may write the folder is never followed. It used to be `<path>.<pid>.tmp`, opened
 * with 'w': a root `log verify` truncated and rewrote the link's target, then renamed the link
 * over its state file.
 */
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

/** When set, randomBytes gives these bytes: the name an attacker guessed right. */
let guessed: Buffer | undefined;
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, randomBytes: (size: number) => guessed?.subarray(0, size) ?? real.randomBytes(size) };
});

const { replaceFile } = await import('./replace-file.ts');

const folder = mkdtempSync(join(tmpdir(), 'chipledger-replace-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
afterEach(() => {
  guessed = undefined;
});

/** A file of someone else's that a planted link points at. */
function victim(name: string): string {
  const file = join(folder, name);
  writeFileSync(file, 'precious\n', { mode: 0o644 });
  return file;
}

const options = { mode: 0o600, folderSync: 'required' } as const;

describe('replaceFile', () => {
  it('does not write through a link planted at the temporary name this process used to take (<path>.<pid>.tmp)', async () => {
    const path = join(folder, 'state.json');
    writeFileSync(path, 'old\n');
    const target = victim('victim-1.conf');
    symlinkSync(target, `${path}.${process.pid}.tmp`);
    await replaceFile(path, 'new\n', options);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(lstatSync(path).isFile()).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('new\n');
    expect(lstatSync(path).mode & 0o777).toBe(0o600);
  });

  it('refuses, never follows nor removes, a link planted at the very name it draws (O_EXCL), and the old file stands', async () => {
    const path = join(folder, 'guessed.json');
    writeFileSync(path, 'old\n');
    const target = victim('victim-2.conf');
    guessed = Buffer.alloc(16, 0xab);
    const planted = `${path}.${process.pid}.${'ab'.repeat(6)}.tmp`;
    symlinkSync(target, planted);
    await expect(replaceFile(path, 'new\n', options)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(readlinkSync(planted)).toBe(target);
    expect(readFileSync(path, 'utf8')).toBe('old\n');
  });

  it('draws a new name each time, and leaves no temporary file when a step fails', async () => {
    const path = join(folder, 'failing.json');
    writeFileSync(path, 'old\n');
    const names: string[] = [];
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const failed = replaceFile(path, 'new\n', {
        ...options,
        prepare: async () => {
          names.push(readdirSync(folder).find((name) => name.startsWith('failing.json.') && name.endsWith('.tmp'))!);
          throw new Error('the disk is full');
        },
      });
      await expect(failed).rejects.toThrow('the disk is full');
    }
    expect(names[0]).toMatch(new RegExp(`^failing\\.json\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`));
    expect(names[1]).not.toBe(names[0]);
    expect(readdirSync(folder).filter((name) => name.startsWith('failing.json.'))).toEqual([]);
    expect(readFileSync(path, 'utf8')).toBe('old\n');
  });
});

/**
 * The state file's write path: the new state reaches the disk before it replaces the old one,
 * and the rename itself is made durable. A witness saves its state before it cosigns; without
 * this, a power loss could leave an empty file, and the witness would cosign a fork.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

/** The file system calls writeState makes, in order. */
const calls: string[] = [];
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    open: async (...args: Parameters<typeof real.open>) => {
      const handle = await real.open(...args);
      const name = String(args[0]);
      const sync = handle.sync.bind(handle);
      handle.sync = async () => {
        calls.push(`sync ${name}`);
        return sync();
      };
      return handle;
    },
    rename: async (from: string, to: string) => {
      calls.push(`rename ${from} ${to}`);
      return real.rename(from, to);
    },
  };
});

const { readState, writeState } = await import('./state.ts');

const folder = mkdtempSync(join(tmpdir(), 'chipledger-state-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe('writeState', () => {
  it('flushes the new state, renames it over the old one, then flushes the folder', async () => {
    const path = join(folder, 'witness.state');
    const saved = { origin: 'log.example', size: 7, rootHash: Buffer.alloc(32, 1), note: 'log.example\n7\n...\n' };
    await writeState(path, saved, new Date('2026-02-01T00:00:00Z'));
    const temporary = `${path}.${process.pid}.tmp`;
    expect(calls).toEqual([`sync ${temporary}`, `rename ${temporary} ${path}`, `sync ${folder}`]);
    expect(await readState(path)).toEqual(saved);
    expect(JSON.parse(readFileSync(path, 'utf8')).savedAt).toBe('2026-02-01T00:00:00.000Z');
  });
});

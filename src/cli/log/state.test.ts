/**
 * The state file's write path: the new state reaches the disk before it replaces the old one,
 * and the rename itself is made durable. A witness saves its state before it cosigns; without
 * this, a power loss could leave an empty file, and the witness would cosign a fork. And
 * what a saved state proves: its note counts as the log's word only for the figures beside it.
 */
import { chmodSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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

const { readMonitorState, readState, savedNoteIsSigned, writeMonitorState, writeState } = await import('./state.ts');
const { stateFileModeNew } = await import('./state-file.ts');
const { generateSignerKey, parseSignerKey, parseVerifierKey, signCheckpoint } = await import('../../tlog/index.ts');
const { Failure } = await import('../output.ts');

const folder = mkdtempSync(join(tmpdir(), 'chipledger-state-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe('writeState', () => {
  it('flushes the new state, renames it over the old one, then flushes the folder', async () => {
    const path = join(folder, 'witness.state');
    const saved = { origin: 'log.example', size: 7, rootHash: Buffer.alloc(32, 1), note: 'log.example\n7\n...\n' };
    await writeState(path, saved, new Date('2026-02-01T00:00:00Z'));
    // Of this process, under a name no other account can guess (replace-file.test.ts).
    const temporary = calls[0]!.slice('sync '.length);
    expect(temporary).toMatch(new RegExp(`^${path}\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`));
    expect(calls).toEqual([`sync ${temporary}`, `rename ${temporary} ${path}`, `sync ${folder}`]);
    expect(await readState(path)).toEqual(saved);
    expect(JSON.parse(readFileSync(path, 'utf8')).savedAt).toBe('2026-02-01T00:00:00.000Z');
  });

  const saved = (size: number) => ({ origin: 'log.example', size, rootHash: Buffer.alloc(32, size), note: `log.example\n${size}\n...\n` });

  it(`gives a new state file mode ${stateFileModeNew.toString(8)}, and an existing one keeps its mode, whatever the umask`, async () => {
    const path = join(folder, 'mode.state');
    await writeState(path, saved(1));
    expect(statSync(path).mode & 0o777).toBe(stateFileModeNew);
    for (const mode of [0o640, 0o644, 0o400]) {
      chmodSync(path, mode);
      await writeState(path, saved(2));
      expect(statSync(path).mode & 0o777).toBe(mode);
    }
  });

  it('writes through a symbolic link to the file it points to, and leaves the link a link', async () => {
    const target = join(folder, 'volume.state');
    const link = join(folder, 'link.state');
    await writeState(target, saved(3));
    chmodSync(target, 0o600);
    symlinkSync('volume.state', link);
    calls.length = 0;
    await writeState(link, saved(4));
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('volume.state');
    expect((await readState(target))!.size).toBe(4);
    expect(statSync(target).mode & 0o777).toBe(0o600);
    // The new state is written beside the target and renamed over it.
    expect(calls.filter((call) => call.startsWith('rename ')).map((call) => call.split(' ')[2])).toEqual([target]);
    expect(calls.find((call) => call.startsWith('rename '))!.split(' ')[1]).toMatch(new RegExp(`^${target}\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`));
  });

  it('refuses a link to nowhere instead of replacing it with a file nobody reads', async () => {
    const link = join(folder, 'dangling.state');
    symlinkSync('missing-folder/real.state', link);
    const refused = await writeState(link, saved(5)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Failure);
    expect((refused as Error).message).toBe(`couldn't save the checkpoint to the state file ${link}: it is a symbolic link to ${join(folder, 'missing-folder/real.state')}, which does not exist; create that file's folder and give --state the file itself, or remove the link`);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });
});

describe('readState', () => {
  it('says a state file holding JSON that is not an object is not a saved checkpoint, without a TypeError', async () => {
    for (const [text, holds] of [['null', 'null'], ['[]', 'a list'], ['5', 'a number'], ['"x"', 'a string']] as const) {
      const path = join(folder, 'not-object.state');
      writeFileSync(path, `${text}\n`);
      const refused = await readState(path).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(Failure);
      expect((refused as Error).message).toBe(`the state file ${path} is not a saved checkpoint (it holds ${holds}, not an object with version 1, origin, size, rootHash, checkpoint)`);
    }
  });

  it('names a state file it cannot read by its absolute path (under `npm run`, a relative --state is taken from the repository root)', async () => {
    // "." is a folder: it exists, and cannot be read as a file.
    await expect(readState('.')).rejects.toThrow(new Failure(`couldn't read the state file ${process.cwd()}: it is not a regular file`));
  });
});

describe('a monitor\'s state: the version 1 file every release wrote, and version 2 with what a monitor left open', () => {
  const root = Buffer.alloc(32, 7).toString('base64');
  const v1 = { version: 1, origin: 'log.example', size: 7, rootHash: root, checkpoint: 'log.example\n7\n...\n', savedAt: '2026-02-01T00:00:00.000Z' };
  const head = { size: 9, rootHash: Buffer.alloc(32, 9), note: 'log.example\n9\n...\n' };

  it('reads a version 1 file as written by the release before, with nothing open', async () => {
    const path = join(folder, 'v1.state');
    writeFileSync(path, `${JSON.stringify(v1, null, 2)}\n`);
    expect(await readMonitorState(path)).toEqual({ origin: 'log.example', saved: { origin: 'log.example', size: 7, rootHash: Buffer.alloc(32, 7), note: v1.checkpoint }, unsettled: { rounds: 0, heads: [] } });
  });

  it('writes version 2 only while something is open, reads it back, and verify and witness read its checkpoint', async () => {
    const path = join(folder, 'v2.state');
    const saved = { origin: 'log.example', size: 7, rootHash: Buffer.alloc(32, 7), note: v1.checkpoint };
    await writeMonitorState(path, { origin: 'log.example', saved, unsettled: { rounds: 2, heads: [head] } });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ version: 2, size: 7, unsettled: { rounds: 2, heads: [{ size: 9, rootHash: head.rootHash.toString('base64'), checkpoint: head.note }] } });
    expect(await readMonitorState(path)).toEqual({ origin: 'log.example', saved, unsettled: { rounds: 2, heads: [head] } });
    expect(await readState(path)).toEqual(saved);
    // A first run that saved no checkpoint yet keeps what it left open all the same.
    await writeMonitorState(path, { origin: 'log.example', saved: undefined, unsettled: { rounds: 1, heads: [head] } });
    expect(await readMonitorState(path)).toEqual({ origin: 'log.example', saved: undefined, unsettled: { rounds: 1, heads: [head] } });
    expect(await readState(path)).toBeUndefined();
    await writeMonitorState(path, { origin: 'log.example', saved, unsettled: { rounds: 0, heads: [] } });
    expect(JSON.parse(readFileSync(path, 'utf8')).version).toBe(1);
  });

  it('keeps what a monitor left open when verify or witness saves a newer checkpoint in the same file', async () => {
    const path = join(folder, 'shared.state');
    const saved = { origin: 'log.example', size: 7, rootHash: Buffer.alloc(32, 7), note: v1.checkpoint };
    await writeMonitorState(path, { origin: 'log.example', saved, unsettled: { rounds: 1, heads: [head] } });
    const newer = { ...saved, size: 8, rootHash: Buffer.alloc(32, 8) };
    await writeState(path, newer);
    expect(await readMonitorState(path)).toEqual({ origin: 'log.example', saved: newer, unsettled: { rounds: 1, heads: [head] } });
  });

  it('refuses a file that mixes the versions or holds a head that is not one', async () => {
    const path = join(folder, 'mixed.state');
    for (const file of [
      { ...v1, unsettled: { rounds: 1, heads: [] } },
      { ...v1, version: 2, unsettled: { rounds: -1, heads: [] } },
      { ...v1, version: 2, unsettled: { rounds: 1, heads: [{ size: 9, rootHash: 'AAAA', checkpoint: 'x' }] } },
      { version: 2, origin: 'log.example', size: 7, unsettled: { rounds: 1, heads: [] }, savedAt: v1.savedAt },
      { ...v1, version: 3 },
    ]) {
      writeFileSync(path, JSON.stringify(file));
      await expect(readMonitorState(path)).rejects.toThrow(/is not a saved checkpoint \(version 1 with origin, size, rootHash, checkpoint, or version 2/);
    }
  });
});

describe('savedNoteIsSigned', () => {
  const key = generateSignerKey('log.state.test');
  const verifier = parseVerifierKey(key.verifierKey);
  const checkpoint = { origin: 'log.state.test', size: 9, rootHash: Buffer.alloc(32, 9), extensions: [] };
  const saved = { origin: checkpoint.origin, size: 9, rootHash: checkpoint.rootHash, note: signCheckpoint(checkpoint, parseSignerKey(key.signerKey)) };

  it('is true only when the log key signed the note and the note is of the size and root saved beside it', () => {
    expect(savedNoteIsSigned(saved, verifier)).toBe(true);
    // A state file edited after the note was saved: the note proves nothing about the new figures.
    const edited = Buffer.from(saved.rootHash);
    edited[31]! ^= 0x01;
    expect(savedNoteIsSigned({ ...saved, rootHash: edited }, verifier)).toBe(false);
    expect(savedNoteIsSigned({ ...saved, size: 10 }, verifier)).toBe(false);
    expect(savedNoteIsSigned(saved, parseVerifierKey(generateSignerKey('log.state.test').verifierKey))).toBe(false);
  });
});

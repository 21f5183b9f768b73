import { totalmem } from 'node:os';
import { describe, expect, it, vi } from 'vitest';
import { limits } from '../../core/limits.ts';
import { emptyRoot, generateSignerKey, parseSignerKey, parseVerifierKey, rootOf, signCheckpoint } from '../../tlog/index.ts';
import { flipped, memoryLog, syntheticEntries, type MemoryLog } from '../../../test/tlog/memory-log.ts';
import { followStep } from './follow.ts';
import type { SavedCheckpoint } from './state.ts';
import { compareWithSaved, machineMemoryBytes, tileBytesOfTree, verifyLog } from './verify.ts';

const key = generateSignerKey('log.verify.test');
const verifier = parseVerifierKey(key.verifierKey);
// 600 entries: two full level-0 tiles, a partial one, and a level-1 tile of width 2.
const entries = syntheticEntries(600);

/** A copy of a root with its last byte changed: roots are compared whole, not by a prefix. */
const lastByteChanged = (root: Buffer): Buffer => flipped(root, root.length - 1);

function fresh(): MemoryLog {
  return memoryLog(entries.map((entry) => Buffer.from(entry)), key.signerKey);
}

function savedAt(size: number, rootHash: Buffer = rootOf(fresh().leaves.slice(0, size)), signerKey = key.signerKey): SavedCheckpoint {
  const checkpoint = { origin: 'log.verify.test', size, rootHash, extensions: [] };
  return { origin: checkpoint.origin, size, rootHash, note: signCheckpoint(checkpoint, parseSignerKey(signerKey)) };
}

async function failuresOf(log: MemoryLog, saved?: SavedCheckpoint, checkEntries = true) {
  const report = await verifyLog(log, { verifier, saved, checkEntries });
  return report.failures;
}

describe('log verify over fetched data', () => {
  it('passes an untouched log, hashing every entry and checking consistency with a saved checkpoint', async () => {
    const report = await verifyLog(fresh(), { verifier, saved: savedAt(300), checkEntries: true });
    expect(report.failures).toEqual([]);
    expect(report.entriesChecked).toBe(600);
    expect(report.tilesChecked).toBe(4); // 0/000, 0/001, 0/002.p/88, 1/000.p/2
  });

  it('names a changed entry by index', async () => {
    const log = fresh();
    log.entryList[37] = flipped(log.entryList[37]!, 10);
    const failures = await failuresOf(log);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.kind).toBe('entry');
    expect(failures[0]!.message).toContain('entry 37 ');
  });

  it('tells a reordering from a change', async () => {
    const log = fresh();
    [log.entryList[300], log.entryList[301]] = [log.entryList[301]!, log.entryList[300]!];
    const failures = await failuresOf(log);
    expect(failures[0]!.kind).toBe('order');
    expect(failures[0]!.message).toContain('entry 300 is out of order');
    expect(failures[0]!.message).toContain('index 301');
  });

  it('names a full tile that disagrees with the level above, without entries too', async () => {
    const log = fresh();
    log.tiles.set('0/1', flipped(log.tiles.get('0/1')!, 5 * 32));
    for (const checkEntries of [true, false]) {
      const failures = await failuresOf(log, undefined, checkEntries);
      expect(failures.map((failure) => failure.kind)).toEqual(['tile']);
      expect(failures[0]!.message).toContain('tile tile/0/001');
    }
  });

  it('names the right edge when a partial tile changes', async () => {
    const log = fresh();
    log.tiles.set('0/2', flipped(log.tiles.get('0/2')!, 0));
    const failures = await failuresOf(log, undefined, false);
    expect(failures.map((failure) => failure.kind)).toEqual(['root']);
    expect(failures[0]!.message).toContain('tile/0/002.p/88');
  });

  it('refuses a checkpoint with one changed signature byte and checks nothing else', async () => {
    const log = fresh();
    const at = log.note.lastIndexOf(' ') + 5;
    log.note = `${log.note.slice(0, at)}${log.note[at] === 'A' ? 'B' : 'A'}${log.note.slice(at + 1)}`;
    const report = await verifyLog(log, { verifier, checkEntries: true });
    expect(report.failures.map((failure) => failure.kind)).toEqual(['signature']);
    expect(report.tilesChecked).toBe(0);
  });

  it('catches truncation: a saved checkpoint larger than the log', async () => {
    const failures = await failuresOf(fresh(), savedAt(700, Buffer.alloc(32, 7)));
    expect(failures[0]!.kind).toBe('truncation');
    expect(failures[0]!.message).toContain('smaller than the checkpoint of size 700');
  });

  it('catches a fork at the same size, and says when both notes are signed', async () => {
    const other = generateSignerKey('log.verify.test');
    const signedFork = await failuresOf(fresh(), savedAt(600, Buffer.alloc(32, 1)));
    expect(signedFork[0]!.kind).toBe('fork');
    expect(signedFork[0]!.message).toContain('two checkpoints of size 600');
    expect(signedFork[0]!.message).toContain('both checkpoints are signed');
    const unsigned = await failuresOf(fresh(), savedAt(600, Buffer.alloc(32, 1), other.signerKey));
    expect(unsigned[0]!.message).not.toContain('both checkpoints are signed');
  });

  it('catches a fork at the same size whose roots differ only in their last byte', () => {
    const log = fresh();
    const saved = savedAt(600, lastByteChanged(log.signed.rootHash));
    expect(compareWithSaved(saved, log.signed, verifier)).toEqual({ kind: 'fork', message: expect.stringMatching(/^fork: two checkpoints of size 600 with different roots/) });
    expect(compareWithSaved(savedAt(600), log.signed, verifier)).toBeUndefined();
  });

  it('catches a fork below the current size from the tiles and from the proof', async () => {
    const failures = await failuresOf(fresh(), savedAt(300, Buffer.alloc(32, 2)));
    expect(failures.map((failure) => failure.kind)).toEqual(['fork', 'consistency']);
    expect(failures[0]!.message).toContain('at size 300');
  });

  it("refuses the server's consistency proof when it does not verify", async () => {
    const log = fresh();
    log.proofOverride = () => [Buffer.alloc(32, 3)];
    const failures = await failuresOf(log, savedAt(300));
    expect(failures.map((failure) => failure.kind)).toEqual(['consistency']);
  });

  it('reports a tile it could not fetch', async () => {
    const log = fresh();
    log.tiles.delete('1/0');
    const failures = await failuresOf(log);
    expect(failures.map((failure) => failure.kind)).toEqual(['fetch']);
    expect(failures[0]!.message).toContain('tile/1/000.p/2');
  });
});

describe('log verify on a tree too large for this machine', () => {
  it('counts the bytes of every hash tile: one hash a leaf at level 0, one per 256 leaves at level 1, …', () => {
    expect(tileBytesOfTree(0)).toBe(0);
    expect(tileBytesOfTree(600)).toBe((600 + 2) * 32);
    expect(tileBytesOfTree(2 ** 24)).toBe((2 ** 24 + 2 ** 16 + 2 ** 8 + 1) * 32);
  });

  it(`refuses, before fetching any tile, a signed size whose tiles need more than ${limits.verifyMemoryShareMax * 100}% of the memory, naming the numbers`, async () => {
    // A hostile log signs 2^24 leaves (its tiles: 515 MiB, 2.5 times that held) on a machine of 1 GiB.
    const log = fresh();
    const signed = { origin: 'log.verify.test', size: 2 ** 24, rootHash: Buffer.alloc(32, 6), extensions: [] };
    log.note = signCheckpoint(signed, parseSignerKey(key.signerKey));
    let fetched = 0;
    log.tile = async () => {
      fetched += 1;
      throw new Error('no tile may be fetched');
    };
    const report = await verifyLog(log, { verifier, checkEntries: true, memoryBytes: 1024 ** 3 });
    expect(report.failures).toEqual([{
      kind: 'limit',
      message: 'the checkpoint signs size 16777216: verifying it holds every hash tile in memory, 515 MiB of tiles, about 1,286 MiB in all, more than 50% of this machine\'s 1,024 MiB; verify it on a machine with at least 2,571 MiB of memory',
    }]);
    expect(fetched).toBe(0);
    // Where it fits, it is verified.
    expect((await verifyLog(fresh(), { verifier, checkEntries: true, memoryBytes: 1024 ** 3 })).failures).toEqual([]);
  });
});

describe('following a log (monitor and witness)', () => {
  it('accepts the first checkpoint, the same one, and a consistent larger one', async () => {
    expect((await followStep(fresh(), verifier, undefined)).kind).toBe('ok');
    expect(await followStep(fresh(), verifier, savedAt(600))).toMatchObject({ kind: 'ok', change: 'same' });
    expect(await followStep(fresh(), verifier, savedAt(1))).toMatchObject({ kind: 'ok', change: 'grew' });
    expect(await followStep(fresh(), verifier, savedAt(0, emptyRoot))).toMatchObject({ kind: 'ok', change: 'grew' });
  });

  it('alerts on an inconsistent, truncated, forked or unsigned checkpoint', async () => {
    expect(await followStep(fresh(), verifier, savedAt(256, Buffer.alloc(32, 4)))).toMatchObject({ kind: 'alert', failure: { kind: 'consistency' } });
    expect(await followStep(fresh(), verifier, savedAt(601, Buffer.alloc(32, 4)))).toMatchObject({ kind: 'alert', failure: { kind: 'truncation' } });
    expect(await followStep(fresh(), verifier, savedAt(600, Buffer.alloc(32, 4)))).toMatchObject({ kind: 'alert', failure: { kind: 'fork' } });
    const stranger = parseVerifierKey(generateSignerKey('log.verify.test').verifierKey);
    expect(await followStep(fresh(), stranger, undefined)).toMatchObject({ kind: 'alert', failure: { kind: 'signature' } });
  });

  it('alerts on a saved size 0 whose root is not the empty tree\'s, when the log has grown', async () => {
    const forked = Buffer.alloc(32, 5);
    const log = fresh();
    expect(await followStep(log, verifier, savedAt(0, forked))).toEqual({
      kind: 'alert', failure: { kind: 'fork', message: `fork: the one of size 0 seen before has size 0 and root ${forked.toString('hex')}, not the empty tree's` },
      // The checkpoint served, with its note: what a monitor or witness keeps as evidence.
      served: { size: log.signed.size, rootHash: log.signed.rootHash, note: log.note, what: `the checkpoint of size ${log.signed.size} served earlier` },
    });
  });

  it('holds every head to the others whole: a root that differs only in its last byte is a fork', async () => {
    const log = fresh();
    const changed = lastByteChanged(log.signed.rootHash);
    expect(await followStep(log, verifier, savedAt(600, changed))).toMatchObject({ kind: 'alert', failure: { kind: 'fork' } });
    // A head an earlier round left unsettled, at the size served now (no state saved yet).
    const pending = [{ size: 600, rootHash: changed, what: 'the checkpoint of size 600 served earlier' }];
    expect(await followStep(log, verifier, undefined, pending)).toMatchObject({
      kind: 'alert', failure: { kind: 'consistency', message: expect.stringMatching(/: two roots at one size \(a fork\)$/) },
    });
    expect(await followStep(log, verifier, undefined, [{ ...pending[0]!, rootHash: log.signed.rootHash }])).toMatchObject({ kind: 'ok', change: 'first' });
  });
});

describe('the memory a verification may need', () => {
  it('is judged against a container\'s memory bound where one is set, the machine\'s otherwise', () => {
    const bound = vi.spyOn(process, 'constrainedMemory');
    try {
      bound.mockReturnValue(512 * 1024 * 1024);
      expect(machineMemoryBytes()).toBe(Math.min(512 * 1024 * 1024, totalmem()));
      bound.mockReturnValue(0);
      expect(machineMemoryBytes()).toBe(totalmem());
      bound.mockReturnValue(2 ** 64);
      expect(machineMemoryBytes()).toBe(totalmem());
    } finally {
      bound.mockRestore();
    }
  });
});

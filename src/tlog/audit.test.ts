import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TreeAuditor, type AuditOptions, type StoredHashLookup } from './audit.ts';
import { leafHash, leafHashOfInput } from './hash.ts';
import { tileWidth } from './tile.ts';
import { MerkleAppender, rootOf } from './tree.ts';
import { flipBit, seededRandom, tileLevelsOf } from './test-support.ts';

/** A log of `size` seeded entries, and the hashes its tiles store (every tile level). */
function makeLog(size: number, seed: number) {
  const random = seededRandom(seed);
  const entries = Array.from({ length: size }, (_, index) => Buffer.from(`entry ${index} ${Math.floor(random() * 1e9)}`));
  const leaves = entries.map((entry) => leafHash(entry));
  // stored[tileLevel][index]: the nodes at tree level 8 × tileLevel.
  return { entries, leaves, stored: tileLevelsOf(leaves) };
}

type Tamper =
  | { kind: 'none' }
  | { kind: 'entry'; at: number }
  | { kind: 'stored'; tileLevel: number; at: number }
  | { kind: 'missing'; tileLevel: number; at: number }
  | { kind: 'root'; size: number }
  | { kind: 'beyond'; past: number };

interface Run {
  failure: unknown;
  hashes: number;
  frontier: string[];
  inner: string[];
  /** Level-0 tiles hashed whole: what the two paths differ in, and nothing else. */
  wholeTiles: number;
}

/** What an audit found, however it hashed. */
const found = ({ wholeTiles: _, ...rest }: Run) => rest;

/** The roots at `sizes` (each at most the log's), in one pass over the leaves. */
function rootsAt(leaves: readonly Buffer[], sizes: readonly number[]): Map<number, Buffer> {
  const wanted = new Set(sizes);
  const roots = new Map<number, Buffer>();
  const tree = new MerkleAppender();
  if (wanted.has(0)) roots.set(0, tree.root());
  for (const leaf of leaves) {
    tree.append(leaf);
    if (wanted.has(tree.size)) roots.set(tree.size, tree.root());
  }
  return roots;
}

/** Audits the entries from `start` (a multiple of 256) in the given batches, and says all it found. */
function audit(log: ReturnType<typeof makeLog>, tamper: Tamper, rootSizes: number[], start: number, batches: number[], options: AuditOptions): Run {
  const entries = log.entries.map((entry, index) => (tamper.kind === 'entry' && tamper.at === index ? flipBit(entry, 3) : entry));
  const lookup: StoredHashLookup = (tileLevel, index) => {
    if ((tamper.kind === 'stored' || tamper.kind === 'missing') && tamper.tileLevel === tileLevel && tamper.at === index) return tamper.kind === 'stored' ? flipBit(log.stored[tileLevel]![index]!, 7) : undefined;
    return log.stored[tileLevel]?.[index];
  };
  const roots = rootsAt(log.leaves, rootSizes.filter((size) => size >= start));
  if (tamper.kind === 'root' && tamper.size >= start) roots.set(tamper.size, flipBit(rootOf(log.leaves.slice(0, tamper.size)), 1));
  if (tamper.kind === 'beyond') roots.set(log.entries.length + tamper.past, rootOf(log.leaves));
  const inner: string[] = [];
  const frontier = new MerkleAppender();
  for (const leaf of log.leaves.slice(0, start)) frontier.append(leaf);
  const auditor = new TreeAuditor(lookup, roots, (level, index, hash) => inner.push(`${level}/${index} ${hash.toString('hex')}`), { ...options, start: { size: start, frontier: frontier.frontier() } });
  let at = start;
  for (const batch of batches) {
    if (at >= entries.length) break;
    // Half the batches as entries, half as leaf inputs (0x00 || entry): the same audit.
    const part = entries.slice(at, at + batch);
    if (batch % 2 === 0) auditor.addEntries(part);
    else auditor.addLeafInputs(part.map((entry) => Buffer.concat([Buffer.of(0), entry])));
    at += batch;
  }
  if (at < entries.length) auditor.addEntries(entries.slice(at));
  const failure = auditor.finish();
  return { failure, hashes: auditor.hashes, frontier: auditor.frontier().map((hash) => hash.toString('hex')), inner: inner.sort(), wholeTiles: auditor.wholeTilesHashed };
}

describe('TreeAuditor', () => {
  it('answers the same with whole tiles at once as one entry at a time: every failure, count of hashes, inner node and frontier', () => {
    const arbitrary = fc.record({
      size: fc.integer({ min: 0, max: 5 * tileWidth + 40 }),
      seed: fc.integer(),
      tamper: fc.oneof(
        fc.constant<Tamper>({ kind: 'none' }),
        fc.nat().map<Tamper>((at) => ({ kind: 'entry', at })),
        fc.record({ tileLevel: fc.integer({ min: 0, max: 1 }), at: fc.nat() }).map<Tamper>((where) => ({ kind: 'stored', ...where })),
        fc.record({ tileLevel: fc.integer({ min: 0, max: 1 }), at: fc.nat() }).map<Tamper>((where) => ({ kind: 'missing', ...where })),
        fc.nat().map<Tamper>((size) => ({ kind: 'root', size })),
        fc.integer({ min: 1, max: 3 }).map<Tamper>((past) => ({ kind: 'beyond', past })),
      ),
      rootSizes: fc.array(fc.nat(), { maxLength: 6 }),
      startTiles: fc.nat({ max: 5 }),
      batches: fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 6 }),
    });
    let runsWithWholeTiles = 0;
    fc.assert(fc.property(arbitrary, ({ size, seed, tamper, rootSizes, startTiles, batches }) => {
      const log = makeLog(size, seed);
      // Positions within the log (a tamper or a root past it would only test the same thing).
      const within = (value: number, count: number) => (count === 0 ? 0 : value % count);
      const placed: Tamper = tamper.kind === 'entry' ? { ...tamper, at: within(tamper.at, size) }
        : tamper.kind === 'stored' || tamper.kind === 'missing' ? { ...tamper, at: within(tamper.at, log.stored[tamper.tileLevel]?.length ?? 0) }
        : tamper.kind === 'root' ? { ...tamper, size: within(tamper.size, size + 1) }
        : tamper;
      const sizes = rootSizes.map((value) => within(value, size + 1));
      const start = Math.min(startTiles, Math.floor(size / tileWidth)) * tileWidth;
      const byTiles = audit(log, placed, sizes, start, batches, {});
      const byEntries = audit(log, placed, sizes, start, batches, { wholeTiles: false });
      expect(found(byTiles)).toEqual(found(byEntries));
      expect(byEntries.wholeTiles).toBe(0);
      if (byTiles.wholeTiles > 0) runsWithWholeTiles += 1;
      // And the reference finds what was spoilt (a tamper where nothing is stored finds nothing).
      if (placed.kind === 'none') expect(byEntries.failure).toBeUndefined();
      if (placed.kind === 'beyond') expect(byEntries.failure).toMatchObject({ kind: 'checkpoint' });
    }), { numRuns: 300 });
    // The comparison means something only where the whole-tile path ran.
    expect(runsWithWholeTiles).toBeGreaterThan(30);
  });

  it('hashes whole tiles where no root is wanted inside them, however many roots are wanted elsewhere', () => {
    const log = makeLog(5 * tileWidth, 3);
    // 257 roots, every size of the last tile and its end: the four tiles before it have none inside.
    const sizes = Array.from({ length: tileWidth + 1 }, (_, index) => 4 * tileWidth + index);
    const byTiles = audit(log, { kind: 'none' }, sizes, 0, [5 * tileWidth], {});
    expect(byTiles.failure).toBeUndefined();
    expect(byTiles.wholeTiles).toBe(4);
    expect(found(byTiles)).toEqual(found(audit(log, { kind: 'none' }, sizes, 0, [5 * tileWidth], { wholeTiles: false })));
    // And a root spoilt inside the last tile is still found there.
    expect(audit(log, { kind: 'root', size: 4 * tileWidth + 9 }, sizes, 0, [5 * tileWidth], {}).failure).toMatchObject({ kind: 'checkpoint', message: expect.stringContaining(`at size ${4 * tileWidth + 9}`) });
  });

  it('fails an audit whose entries end before the size they were to reach, naming the first one missing', () => {
    const log = makeLog(tileWidth + 5, 4);
    const auditor = new TreeAuditor((tileLevel, index) => log.stored[tileLevel]?.[index], new Map());
    auditor.addEntries(log.entries.slice(0, tileWidth + 2));
    expect(auditor.finish(tileWidth + 5)).toEqual({ kind: 'leaf', message: `the log stores no entry ${tileWidth + 2} (its entries end there, 3 short of ${tileWidth + 5})` });
  });

  it('compares every tile level from a resumed start, whole tiles and not: a spoilt level-2 hash (tree level 16) is found', () => {
    const log = makeLog(2 ** 16 + 300, 7);
    expect(log.stored[2]).toHaveLength(1);
    const start = 2 ** 15;
    for (const tamper of [{ kind: 'none' }, { kind: 'stored', tileLevel: 2, at: 0 }, { kind: 'stored', tileLevel: 1, at: 200 }, { kind: 'entry', at: 2 ** 16 - 1 }] as Tamper[]) {
      const byTiles = audit(log, tamper, [2 ** 16, 2 ** 16 + 300], start, [5_000, 30_000], {});
      expect(found(byTiles)).toEqual(found(audit(log, tamper, [2 ** 16, 2 ** 16 + 300], start, [5_000, 30_000], { wholeTiles: false })));
      if (tamper.kind === 'none') expect(byTiles.failure).toBeUndefined();
      else expect(byTiles.failure).toMatchObject({ kind: tamper.kind === 'entry' ? 'leaf' : 'tile' });
    }
    expect(audit(log, { kind: 'stored', tileLevel: 2, at: 0 }, [], start, [2 ** 17], {}).failure).toMatchObject({ message: expect.stringMatching(/^tile level 2 hash 0 \(tile 0\) hashes to /) });
  });

  it('refuses a leaf input without the leaf prefix, and a root below where it starts', () => {
    const log = makeLog(tileWidth, 1);
    const frontier = new MerkleAppender();
    for (const leaf of log.leaves) frontier.append(leaf);
    expect(() => new TreeAuditor(() => undefined, new Map([[3, log.leaves[0]!]]), undefined, { start: { size: tileWidth, frontier: frontier.frontier() } })).toThrow(/a root at size 3 was wanted after the audit passed it/);
    expect(() => leafHashOfInput(Buffer.from('x'))).toThrow(/leaf prefix/);
    expect(() => new TreeAuditor(() => undefined, new Map()).addLeafInputs([Buffer.of(1, 2)])).toThrow(/leaf prefix/);
  });
});

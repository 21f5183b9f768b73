/**
 * TransparencyLog.append in memory: the tiles and root each batch gives, however the batches
 * fall against tile boundaries (whole level-0 tiles are hashed at once, the rest a leaf at a
 * time), against the tiles recomputed from the leaves. No database: a batch applied at the
 * head the last one left never reads one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { leafHash, rootOf, tileWidth } from '../../tlog/index.ts';
import { tileLevelsOf, tilesGained, type ReferenceTile } from '../../tlog/test-support.ts';
import type { LogHead } from '../../store/head-lock.ts';
import type { Pool, PoolClient } from '../../store/pool.ts';
import { TransparencyLog } from './transparency-log.ts';

/** Never touched: prepare() reads the database only when the head is not the log's own. */
const noDatabase = {} as Pool;
const noClient = {} as PoolClient;

const canonical = (seq: number) => Buffer.from(`{"seq":${seq},"kind":"test"}`);

const shown = (tiles: readonly ReferenceTile[]) => tiles.map((tile) => `${tile.level}/${tile.index}/${tile.width} ${tile.hashes.toString('hex')}`).sort();

/** Appends `batches` in turn; checks each batch's tiles and root against the leaves. Returns the log's stats. */
async function appendChecked(batches: readonly number[]): Promise<TransparencyLog['stats']> {
  const total = batches.reduce((sum, batch) => sum + batch, 0);
  const leaves = Array.from({ length: total }, (_, seq) => leafHash(canonical(seq)));
  const levels = tileLevelsOf(leaves);
  const log = new TransparencyLog(noDatabase);
  let head: LogHead = { size: 0, root: rootOf([]) };
  for (const batch of batches) {
    const before = head.size;
    const appended = await log.append(noClient, head, Array.from({ length: batch }, (_, at) => ({ seq: before + at, canonical: canonical(before + at) })));
    head = { size: before + batch, root: appended.root };
    expect(appended.root.toString('hex'), `root at ${head.size}`).toBe(rootOf(leaves.slice(0, head.size)).toString('hex'));
    expect(shown(appended.tiles), `tiles from ${before} to ${head.size}`).toEqual(shown(tilesGained(levels, before, head.size)));
  }
  expect(log.size).toBe(total);
  return log.stats;
}

describe('TransparencyLog.append', () => {
  it('writes the tiles and root the leaves give, whatever the batches and wherever they fall against tile boundaries', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 200, max: 800 })), { minLength: 1, maxLength: 8 }), async (batches) => {
      await appendChecked(batches);
    }), { numRuns: 60 });
  });

  it('fills a level-1 tile and starts level 2 in whole tiles as a leaf at a time would', async () => {
    // 65,536 leaves complete level 1's first tile (and give level 2 its first hash); the
    // batches straddle tile boundaries, so both paths run around the moment it fills.
    const batches = [300, ...Array.from({ length: 31 }, () => 2048), 2048 - 300 + 5, 250];
    const stats = await appendChecked(batches);
    expect(stats.leaves).toBe(tileWidth ** 2 + 255);
    // Every full level-0 tile went whole but the 32 that a batch's end cuts (at 300 + 2,048k:
    // 44 leaves into a tile each time); the last two ends fall in the tile not yet full.
    expect(stats.wholeTiles).toBe(tileWidth - 32);
  });

  it('refuses a leaf out of sequence, inside a whole tile too', async () => {
    const log = new TransparencyLog(noDatabase);
    const head: LogHead = { size: 0, root: rootOf([]) };
    const leaves = Array.from({ length: tileWidth }, (_, seq) => ({ seq: seq === 100 ? 101 : seq, canonical: canonical(seq) }));
    await expect(log.append(noClient, head, leaves)).rejects.toThrow(/leaf 101 appended at log size 100/);
    // Nothing of the refused batch stayed: the log appends at the same head, with no reload (none could run here).
    expect(log.size).toBe(0);
    const appended = await log.append(noClient, head, Array.from({ length: tileWidth }, (_, seq) => ({ seq, canonical: canonical(seq) })));
    expect(appended.root).toEqual(rootOf(Array.from({ length: tileWidth }, (_, seq) => leafHash(canonical(seq)))));
    expect(log.stats).toMatchObject({ reloads: 0, wholeTiles: 1 });
  });
});

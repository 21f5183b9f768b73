import { describe, expect, it } from 'vitest';
import { hashSize } from './hash.ts';
import { nodeGetterFromLeaves } from './proof.ts';
import { seededLeafHashes } from './test-support.ts';
import {
  entriesPath,
  formatTileIndex,
  innerNodeOffset,
  innerNodesBytes,
  innerNodesOf,
  newTiles,
  nodeFromTile,
  parseTilePath,
  storedHashCount,
  storedHashIndex,
  tileData,
  tileForNode,
  tilePath,
  tileWidthInTree,
  type Tile,
} from './tile.ts';
import { MerkleAppender } from './tree.ts';

describe('tile paths (C2SP tlog-tiles)', () => {
  it('encodes indexes as 3-digit groups, all but the last prefixed with x', () => {
    expect(formatTileIndex(1234067)).toBe('x001/x234/067');
    expect(formatTileIndex(0)).toBe('000');
    expect(formatTileIndex(5)).toBe('005');
    expect(formatTileIndex(999)).toBe('999');
    expect(formatTileIndex(1000)).toBe('x001/000');
    expect(formatTileIndex(2 ** 53 - 1)).toBe('x009/x007/x199/x254/x740/991');
  });

  it('writes full and partial tile and entry-bundle paths', () => {
    expect(tilePath(0, 1234067)).toBe('tile/0/x001/x234/067');
    expect(tilePath(0, 0, 5)).toBe('tile/0/000.p/5');
    expect(tilePath(2, 1, 256)).toBe('tile/2/001');
    expect(entriesPath(1234067)).toBe('tile/entries/x001/x234/067');
    expect(entriesPath(48, 112)).toBe('tile/entries/048.p/112');
    expect(() => tilePath(0, 0, 0)).toThrow();
    expect(() => tilePath(0, 0, 257)).toThrow();
    expect(() => tilePath(64, 0)).toThrow();
  });

  it('parses exactly the canonical paths back', () => {
    for (const [path, tile] of [
      ['tile/0/x001/x234/067', { level: 0, index: 1234067, width: 256 }],
      ['tile/3/000.p/5', { level: 3, index: 0, width: 5 }],
      ['tile/63/x001/000.p/255', { level: 63, index: 1000, width: 255 }],
    ] as const) {
      expect(parseTilePath(path)).toEqual({ kind: 'hashes', tile });
      expect(tilePath(tile.level, tile.index, tile.width)).toBe(path);
    }
    expect(parseTilePath('tile/entries/x001/x234/067.p/7')).toEqual({ kind: 'entries', tile: { level: 0, index: 1234067, width: 7 } });
    for (const bad of [
      'tile/0/1',
      'tile/0/x000/001', // leading zero group
      'tile/00/001',
      'tile/64/001',
      'tile/0/001.p/256',
      'tile/0/001.p/0',
      'tile/0/001.p/05',
      'tile/0/x001',
      'tile/0/001/',
      '/tile/0/001',
      'tile/entries/001.p/',
      'tile/x/001',
    ]) {
      expect(parseTilePath(bad), bad).toBeUndefined();
    }
  });
});

describe('tile arithmetic', () => {
  const leaves = seededLeafHashes(8, 70_000);
  const getNode = nodeGetterFromLeaves(leaves);

  it('finds the tile holding each node and recomputes the node from the tile bytes', () => {
    expect(tileForNode(0, 1234067)).toEqual({ level: 0, index: 4820, width: 148 });
    expect(tileForNode(8, 3)).toEqual({ level: 1, index: 0, width: 4 });
    expect(tileForNode(3, 40)).toEqual({ level: 0, index: 1, width: 72 });
    for (const [level, index] of [
      [0, 0],
      [0, 69_999],
      [3, 40],
      [7, 300],
      [8, 17],
      [8, 255],
      [11, 30],
      [15, 1],
      [16, 0],
    ] as const) {
      const tile = tileForNode(level, index);
      const data = tileData(tile, getNode);
      expect(data.length).toBe(tile.width * hashSize);
      expect(nodeFromTile(tile, data, level, index).equals(getNode(level, index)), `node ${level}/${index}`).toBe(true);
    }
  });

  it('lays out every inner node of a full tile where innerNodeOffset says, at tile levels 0 and 1', () => {
    for (const tile of [{ level: 0, index: 3, width: 256 }, { level: 1, index: 0, width: 256 }]) {
      const inner = innerNodesOf(tileData(tile, getNode));
      expect(inner.length).toBe(innerNodesBytes);
      for (let height = 1; height < 8; height += 1) {
        for (let position = 0; position < 256 >> height; position += 1) {
          const at = innerNodeOffset(height, position);
          const node = getNode(tile.level * 8 + height, tile.index * (256 >> height) + position);
          expect(inner.subarray(at, at + hashSize).equals(node), `tile ${tile.level}/${tile.index} node ${height}/${position}`).toBe(true);
        }
      }
    }
    expect(() => innerNodesOf(Buffer.alloc(255 * hashSize))).toThrow(/full tile/);
  });

  it('refuses to compute a node outside the tile it is given', () => {
    const tile: Tile = { level: 0, index: 1, width: 72 };
    expect(() => nodeFromTile(tile, tileData(tile, getNode), 3, 41)).toThrow(/not inside/);
    expect(() => nodeFromTile(tile, Buffer.alloc(10), 3, 40)).toThrow(/bytes/);
  });

  it('lists the tiles of a tree of 70,000 leaves as in the spec', () => {
    const tiles = newTiles(0, 70_000);
    const level0 = tiles.filter((tile) => tile.level === 0);
    expect(level0.filter((tile) => tile.width === 256)).toHaveLength(273);
    expect(level0.filter((tile) => tile.width < 256)).toEqual([{ level: 0, index: 273, width: 112 }]);
    expect(tiles.filter((tile) => tile.level === 1)).toEqual([
      { level: 1, index: 0, width: 256 },
      { level: 1, index: 1, width: 17 },
    ]);
    expect(tiles.filter((tile) => tile.level === 2)).toEqual([{ level: 2, index: 0, width: 1 }]);
    expect(newTiles(0, 256)).toEqual([
      { level: 0, index: 0, width: 256 },
      { level: 1, index: 0, width: 1 },
    ]);
    for (const tile of tiles) expect(tileWidthInTree(tile.level, tile.index, 70_000)).toBe(tile.width);
    expect(tileWidthInTree(0, 274, 70_000)).toBe(0);
    expect(tileWidthInTree(3, 0, 70_000)).toBe(0);
  });

  it('lists only what changed as the tree grows', () => {
    expect(newTiles(70_000, 70_000)).toEqual([]);
    expect(newTiles(70_000, 70_100)).toEqual([{ level: 0, index: 273, width: 212 }]);
    expect(newTiles(70_000, 70_200)).toEqual([
      { level: 0, index: 273, width: 256 },
      { level: 0, index: 274, width: 56 },
      { level: 1, index: 1, width: 18 },
    ]);
    expect(newTiles(10, 11)).toEqual([{ level: 0, index: 0, width: 11 }]);
  });
});

describe('stored hash index (Go sumdb/tlog layout)', () => {
  it('numbers nodes in the order an appender completes them', () => {
    const appender = new MerkleAppender();
    const leaves = seededLeafHashes(1, 600);
    let position = 0;
    for (const leaf of leaves) {
      for (const node of appender.append(leaf)) {
        expect(storedHashIndex(node.level, node.index), `${node.level}/${node.index}`).toBe(position);
        position += 1;
      }
      expect(storedHashCount(appender.size)).toBe(position);
    }
    expect([storedHashIndex(0, 0), storedHashIndex(0, 1), storedHashIndex(1, 0), storedHashIndex(0, 2), storedHashIndex(2, 0)]).toEqual([0, 1, 2, 3, 6]);
    expect(storedHashCount(0)).toBe(0);
  });
});

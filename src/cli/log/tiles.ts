/**
 * Checks on a log's hash tiles alone (they are public, so anyone can run these): every full
 * tile must hash to the hash one tile level up, and the tiles' right edge must give the
 * signed root. Pure: it takes the tiles as fetched and reports where they disagree.
 */
import {
  hashSize, newTiles, nodeFromTile, rootFromNodes, tileForNode, tileHeight, tilePath, tileWidth,
  type NodeGetter, type StoredHashLookup, type Tile,
} from '../../tlog/index.ts';

/** Failures listed per run at most; past this the log is broken anyway and more lines do not help. */
export const failuresReportedMax = 20;

/** What failed; 'fetch' and 'limit' say the log could not be checked (a fetch failed, or it is beyond this verifier), not that a check failed. */
export type FailureKind = 'signature' | 'tile' | 'entry' | 'order' | 'root' | 'fork' | 'truncation' | 'consistency' | 'fetch' | 'limit';

export interface VerifyFailure {
  readonly kind: FailureKind;
  readonly message: string;
}

const key = (level: number, index: number): string => `${level}/${index}`;

/** Every tile (level, index, width) of a tree of `size` leaves: full ones and the right edge. */
export function tilesOfTree(size: number): Tile[] {
  return newTiles(0, size);
}

/** The hash tiles of one tree size, as fetched: each exactly its width in that tree. */
export class TileSet {
  private readonly data = new Map<string, Buffer>();

  constructor(readonly size: number) {}

  add(tile: Tile, bytes: Buffer): void {
    if (bytes.length !== tile.width * hashSize) throw new Error(`assertion failed: tile ${tilePath(tile.level, tile.index, tile.width)} must be ${tile.width * hashSize} bytes`);
    this.data.set(key(tile.level, tile.index), bytes);
  }

  bytes(level: number, index: number): Buffer | undefined {
    return this.data.get(key(level, index));
  }

  /** The stored hash at tree level 8 × tileLevel, for TreeAuditor. */
  readonly lookup: StoredHashLookup = (tileLevel, index) => {
    const tileIndex = Math.floor(index / tileWidth);
    const bytes = this.data.get(key(tileLevel, tileIndex));
    const offset = (index - tileIndex * tileWidth) * hashSize;
    if (bytes === undefined || offset + hashSize > bytes.length) return undefined;
    return bytes.subarray(offset, offset + hashSize);
  };

  /** Complete-subtree hashes for roots and proofs at any size up to `size`. */
  readonly getNode: NodeGetter = (level, index) => {
    const tile = tileForNode(level, index);
    const bytes = this.data.get(key(tile.level, tile.index));
    if (bytes === undefined || bytes.length < tile.width * hashSize) {
      throw new Error(`assertion failed: node (${level}, ${index}) needs ${tilePath(tile.level, tile.index, tile.width)}, which was not fetched`);
    }
    return nodeFromTile(tile, bytes.subarray(0, tile.width * hashSize), level, index);
  };
}

/**
 * Checks every full tile against the level above, then the root of the tiles against the
 * signed root. A full tile that disagrees with the level above names both tiles: one of the
 * two was changed. A root that disagrees while every full tile agrees points at the right
 * edge (the partial tiles and the top tile), which only the signed root covers.
 */
export function auditTiles(tiles: TileSet, rootHash: Buffer): VerifyFailure[] {
  const failures: VerifyFailure[] = [];
  for (const tile of tilesOfTree(tiles.size)) {
    if (tile.width !== tileWidth || failures.length >= failuresReportedMax) continue;
    const bytes = tiles.bytes(tile.level, tile.index)!;
    const computed = nodeFromTile(tile, bytes, (tile.level + 1) * tileHeight, tile.index);
    const stored = tiles.lookup(tile.level + 1, tile.index);
    if (stored !== undefined && stored.equals(computed)) continue;
    const above = tilePath(tile.level + 1, Math.floor(tile.index / tileWidth));
    failures.push({
      kind: 'tile',
      message: `tile ${tilePath(tile.level, tile.index)}: its 256 hashes give ${computed.toString('hex')}, but ${above} stores ${stored?.toString('hex') ?? 'nothing'} at position ${tile.index % tileWidth} (one of the two tiles was changed)`,
    });
  }
  if (failures.length > 0) return failures;
  const root = rootFromNodes(tiles.size, tiles.getNode);
  if (!root.equals(rootHash)) {
    const edge = tilesOfTree(tiles.size).filter((tile) => tile.width < tileWidth || tile.level === topLevel(tiles.size));
    failures.push({
      kind: 'root',
      message: `the tiles give root ${root.toString('hex')} at size ${tiles.size}, but the checkpoint signs ${rootHash.toString('hex')}: a hash on the right edge (${edge.map((tile) => tilePath(tile.level, tile.index, tile.width)).join(', ')}) was changed`,
    });
  }
  return failures;
}

function topLevel(size: number): number {
  return Math.max(0, ...tilesOfTree(size).map((tile) => tile.level));
}

/** Where a leaf hash sits among the level-0 tiles, if anywhere: to tell a reordering from a change. */
export function findLeaf(tiles: TileSet, leaf: Buffer): number | undefined {
  for (let index = 0; index * tileWidth < tiles.size; index += 1) {
    const bytes = tiles.bytes(0, index);
    if (bytes === undefined) continue;
    for (let offset = 0; offset < bytes.length; offset += hashSize) {
      if (bytes.subarray(offset, offset + hashSize).equals(leaf)) return index * tileWidth + offset / hashSize;
    }
  }
  return undefined;
}

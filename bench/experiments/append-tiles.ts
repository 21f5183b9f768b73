/**
 * The log append's CPU in memory (no PostgreSQL): TransparencyLog.append's loop, one
 * MerkleAppender step a leaf, against whole level-0 tiles hashed at once (as the audit's
 * TreeAuditor does), against raw SHA-256 over the same inputs. Batches of 2,048 leaves of
 * 300 bytes, alternated run by run.
 *
 *   node --import tsx bench/experiments/append-tiles.ts [leaves] [runs]
 */
import { hash } from 'node:crypto';
import { MerkleAppender, leafHash, nodeHash, tileHeight, tileWidth } from '../../src/tlog/index.ts';
import { median, round } from '../stats.ts';
import { entry } from '../tlog-append.ts';

const leaves = Number(process.argv[2] ?? 262_144);
const runs = Number(process.argv[3] ?? 7);
const batch = 2048;
const entries = Array.from({ length: leaves }, (_, index) => entry(index));

function perLeaf(): number {
  const appender = new MerkleAppender();
  const edges = new Map<number, Buffer[]>();
  let tiles = 0;
  for (let at = 0; at < leaves; at += batch) {
    for (const canonical of entries.slice(at, at + batch)) {
      for (const node of appender.append(leafHash(canonical))) {
        if (node.level % tileHeight !== 0) continue;
        const level = node.level / tileHeight;
        const edge = edges.get(level) ?? [];
        edges.set(level, edge);
        edge.push(node.hash);
        if (edge.length === tileWidth) {
          tiles += Buffer.concat(edge).length;
          edges.delete(level);
        }
      }
    }
  }
  return tiles;
}

function wholeTiles(): number {
  const appender = new MerkleAppender();
  const edges = new Map<number, Buffer[]>();
  let tiles = 0;
  const tile = Buffer.allocUnsafe(tileWidth * 32);
  for (let at = 0; at < leaves; at += batch) {
    for (let first = at; first < at + batch; first += tileWidth) {
      let level: Buffer[] = new Array(tileWidth);
      for (let offset = 0; offset < tileWidth; offset += 1) {
        level[offset] = leafHash(entries[first + offset]!);
        level[offset]!.copy(tile, offset * 32);
      }
      tiles += tile.length;
      for (let height = 1; height <= tileHeight; height += 1) {
        const above: Buffer[] = new Array(level.length / 2);
        for (let i = 0; i < above.length; i += 1) above[i] = nodeHash(level[2 * i]!, level[2 * i + 1]!);
        level = above;
      }
      for (const node of appender.appendSubtree(tileHeight, level[0]!)) {
        if (node.level % tileHeight !== 0) continue;
        const tileLevel = node.level / tileHeight;
        const edge = edges.get(tileLevel) ?? [];
        edges.set(tileLevel, edge);
        edge.push(node.hash);
        if (edge.length === tileWidth) {
          tiles += Buffer.concat(edge).length;
          edges.delete(tileLevel);
        }
      }
    }
  }
  return tiles;
}

const leafInput = Buffer.alloc(301);
const nodeInput = Buffer.alloc(65, 1);
function raw(): number {
  let last = 0;
  for (let i = 0; i < leaves; i += 1) last += hash('sha256', leafInput, 'buffer')[0]!;
  for (let i = 0; i < leaves - 1; i += 1) last += hash('sha256', nodeInput, 'buffer')[0]!;
  return last;
}

const variants = { 'per leaf (today)': perLeaf, 'whole tiles': wholeTiles, 'raw SHA-256': raw } as const;
const times = new Map<string, number[]>(Object.keys(variants).map((name) => [name, []]));
for (let run = 0; run < runs; run += 1) {
  for (const [name, work] of Object.entries(variants)) {
    const started = performance.now();
    work();
    times.get(name)!.push(performance.now() - started);
  }
}
const rawMs = median(times.get('raw SHA-256')!);
for (const [name, ms] of times) console.log(`${name.padEnd(18)} median ${round(median(ms), 1)} ms for ${leaves} leaves (${round((median(ms) / leaves) * batch, 2)} ms a batch of ${batch}); ${round(median(ms) / rawMs, 2)}x raw`);

/**
 * The log append's CPU in memory (no PostgreSQL): TransparencyLog.append's loop as it was
 * until session 35, one MerkleAppender step a leaf, against TransparencyLog.append itself,
 * which hashes whole level-0 tiles at once, against raw SHA-256 over the same inputs.
 * Batches of 2,048 leaves of 300 bytes, alternated run by run.
 *
 *   node --import tsx bench/experiments/append-tiles.ts [leaves] [runs]
 */
import { hash } from 'node:crypto';
import { TransparencyLog } from '../../src/ledger/log/transparency-log.ts';
import type { LogHead } from '../../src/store/head-lock.ts';
import type { Pool, PoolClient } from '../../src/store/pool.ts';
import { MerkleAppender, leafHash, rootOf, tileHeight, tileWidth, type CompletedNode } from '../../src/tlog/index.ts';
import { median, round } from '../stats.ts';
import { entry } from '../tlog-append.ts';

const leaves = Number(process.argv[2] ?? 262_144);
const runs = Number(process.argv[3] ?? 7);
const batch = 2048;
const entries = Array.from({ length: leaves }, (_, index) => entry(index));

/** The nodes at tile levels onto their edge tiles, as TransparencyLog.append keeps them; bytes of the tiles filled. */
function toEdges(edges: Map<number, Buffer[]>, nodes: readonly CompletedNode[]): number {
  let filled = 0;
  for (const node of nodes) {
    if (node.level % tileHeight !== 0) continue;
    const level = node.level / tileHeight;
    const edge = edges.get(level) ?? [];
    edges.set(level, edge);
    edge.push(node.hash);
    if (edge.length === tileWidth) {
      filled += Buffer.concat(edge).length;
      edges.delete(level);
    }
  }
  return filled;
}

/** TransparencyLog.append's loop until session 35 (its yields to the event loop left out). */
function perLeaf(): number {
  const appender = new MerkleAppender();
  const edges = new Map<number, Buffer[]>();
  let tiles = 0;
  for (let at = 0; at < leaves; at += batch) {
    for (const canonical of entries.slice(at, at + batch)) {
      tiles += toEdges(edges, appender.append(leafHash(canonical)));
    }
  }
  return tiles;
}

/** TransparencyLog.append itself, with no database: a batch at the head the last one left reads none. */
async function transparencyLog(): Promise<number> {
  const log = new TransparencyLog({} as Pool);
  let head: LogHead = { size: 0, root: rootOf([]) };
  let tiles = 0;
  for (let at = 0; at < leaves; at += batch) {
    const appended = await log.append({} as PoolClient, head, entries.slice(at, at + batch).map((canonical, offset) => ({ seq: at + offset, canonical })));
    head = { size: at + batch, root: appended.root };
    tiles += appended.tiles.length;
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

const variants: Record<string, () => number | Promise<number>> = { 'per leaf (before)': perLeaf, 'TransparencyLog': transparencyLog, 'raw SHA-256': raw };
const times = new Map<string, number[]>(Object.keys(variants).map((name) => [name, []]));
for (let run = 0; run < runs; run += 1) {
  for (const [name, work] of Object.entries(variants)) {
    const started = performance.now();
    await work();
    times.get(name)!.push(performance.now() - started);
  }
}
const rawMs = median(times.get('raw SHA-256')!);
for (const [name, ms] of times) console.log(`${name.padEnd(18)} median ${round(median(ms), 1)} ms for ${leaves} leaves (${round((median(ms) / leaves) * batch, 2)} ms a batch of ${batch}); ${round(median(ms) / rawMs, 2)}x raw`);

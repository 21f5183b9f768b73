/**
 * A full audit of the log against this machine's raw SHA-256 speed over the same inputs.
 *
 * - stored: auditStoredLog, as the start-up check runs it (events and tiles streamed from
 *   PostgreSQL, every leaf and node hashed and compared), three times: their median;
 * - memory: TreeAuditor alone over the same entries and tiles held in memory;
 * - raw: the same leaf inputs (0x00 || entry) and node inputs (0x01 || left || right) the
 *   tree hashes, prepared in memory beforehand and hashed one after another with the
 *   one-shot crypto.hash: no tree logic, no copies, no comparisons. The physical limit.
 * Ratios are raw seconds / audit seconds: 1.0 would be an audit as fast as bare hashing.
 */
import { hash } from 'node:crypto';
import { auditStoredLog } from '../src/ledger/log/audit.ts';
import type { Pool } from '../src/store/pool.ts';
import { readTileRange } from '../src/store/tlog-tables.ts';
import { TreeAuditor, tileHeight, type NodeGetter, type StoredHashLookup } from '../src/tlog/index.ts';
import { median } from './stats.ts';
import { entryBytes, writeEntry } from './tlog-append.ts';

const hashBytes = 32;
const storedAuditRuns = 3;

export interface AuditResult {
  leaves: number;
  /** The median of storedRuns. */
  storedSeconds: number;
  storedRuns: number[];
  storedHashes: number;
  memorySeconds: number;
  rawSeconds: number;
  rawHashes: number;
  rawHashesPerSecond: number;
  ratioStored: number;
  ratioMemory: number;
}

/** Every stored tile, in memory: the TreeAuditor's lookup and a node getter for roots. */
export async function loadTiles(pool: Pool, size: number): Promise<{ lookup: StoredHashLookup; getNode: NodeGetter }> {
  const levels: Buffer[] = [];
  for (let level = 0; Math.floor(size / 2 ** (tileHeight * level)) > 0; level += 1) {
    const rows = [];
    for (let from = 0; ; from += 4_096) {
      const chunk = await readTileRange(pool, level, from, 4_096);
      rows.push(...chunk);
      if (chunk.length < 4_096) break;
    }
    levels.push(Buffer.concat(rows.map((row) => row.hashes)));
  }
  const lookup: StoredHashLookup = (tileLevel, index) => {
    const bytes = levels[tileLevel];
    const offset = index * hashBytes;
    return bytes === undefined || offset + hashBytes > bytes.length ? undefined : bytes.subarray(offset, offset + hashBytes);
  };
  // Node (level, index) from the stored hashes at the tile level at or below it.
  const getNode: NodeGetter = (level, index) => {
    const tileLevel = Math.floor(level / tileHeight);
    const span = 2 ** (level - tileLevel * tileHeight);
    let hashes = Array.from({ length: span }, (_, i) => lookup(tileLevel, index * span + i)!);
    while (hashes.length > 1) hashes = Array.from({ length: hashes.length / 2 }, (_, i) => nodeHashOf(hashes[2 * i]!, hashes[2 * i + 1]!));
    return hashes[0]!;
  };
  return { lookup, getNode };
}

function nodeHashOf(left: Buffer, right: Buffer): Buffer {
  return hash('sha256', Buffer.concat([Buffer.of(1), left, right]), 'buffer');
}

/** The entries as views into one buffer laid out as leaf inputs: [0x00, entry] × size. */
function leafInputs(size: number): { block: Buffer; entries: Buffer[]; inputs: Buffer[] } {
  const stride = 1 + entryBytes;
  const block = Buffer.alloc(size * stride);
  const entries: Buffer[] = new Array(size);
  const inputs: Buffer[] = new Array(size);
  for (let index = 0; index < size; index += 1) {
    writeEntry(block, index * stride + 1, index);
    entries[index] = block.subarray(index * stride + 1, (index + 1) * stride);
    inputs[index] = block.subarray(index * stride, (index + 1) * stride);
  }
  return { block, entries, inputs };
}

/** The node inputs of every complete subtree, level by level: what the appender hashes. */
function nodeInputs(leafInputList: Buffer[]): Buffer[] {
  const inputs: Buffer[] = [];
  // The leaf hashes live only in here, so they are garbage before anything is timed.
  let level: Buffer[] = leafInputList.map((input) => hash('sha256', input, 'buffer'));
  while (level.length > 1) {
    const pairs = Math.floor(level.length / 2);
    const block = Buffer.allocUnsafe(pairs * (1 + 2 * hashBytes));
    const above: Buffer[] = new Array(pairs);
    for (let i = 0; i < pairs; i += 1) {
      const input = block.subarray(i * 65, (i + 1) * 65);
      input[0] = 1;
      level[2 * i]!.copy(input, 1);
      level[2 * i + 1]!.copy(input, 1 + hashBytes);
      inputs.push(input);
      above[i] = hash('sha256', input, 'buffer');
    }
    level = above;
  }
  return inputs;
}

function hashAll(inputs: Buffer[]): number {
  const started = performance.now();
  for (let i = 0; i < inputs.length; i += 1) hash('sha256', inputs[i]!, 'buffer');
  return (performance.now() - started) / 1000;
}

export async function auditComparison(pool: Pool, size: number, root: Buffer, tiles: { lookup: StoredHashLookup }): Promise<AuditResult> {
  const roots = new Map([[size, root]]);
  // Three stored audits, and their median: each reads PostgreSQL and starts its workers
  // afresh, so one is a noisy sample. (The raw and in-memory passes below take their best.)
  const storedRuns: number[] = [];
  let stored: Awaited<ReturnType<typeof auditStoredLog>> | undefined;
  let started = 0;
  for (let run = 0; run < storedAuditRuns; run += 1) {
    started = performance.now();
    stored = await auditStoredLog(pool, size, roots);
    storedRuns.push((performance.now() - started) / 1000);
    if (stored.failure) throw new Error(`the stored audit failed: ${stored.failure.message}`);
  }
  const storedSeconds = median(storedRuns);

  const leaves = leafInputs(size);
  const nodes = nodeInputs(leaves.inputs);
  // Raw and in-memory passes interleaved, best of three each: both run on the same heap and
  // machine load, and each figure is the limit of this machine, not one noisy sample.
  let memorySeconds = Number.POSITIVE_INFINITY;
  let rawSeconds = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < 3; pass += 1) {
    rawSeconds = Math.min(rawSeconds, hashAll(leaves.inputs) + hashAll(nodes));
    const auditor = new TreeAuditor(tiles.lookup, roots);
    started = performance.now();
    auditor.addEntries(leaves.entries);
    const failure = auditor.finish();
    memorySeconds = Math.min(memorySeconds, (performance.now() - started) / 1000);
    if (failure) throw new Error(`the in-memory audit failed: ${failure.message}`);
  }
  const rawHashes = leaves.inputs.length + nodes.length;
  return {
    leaves: size, storedSeconds, storedRuns, storedHashes: stored!.hashes, memorySeconds, rawSeconds, rawHashes, rawHashesPerSecond: rawHashes / rawSeconds,
    ratioStored: rawSeconds / storedSeconds, ratioMemory: rawSeconds / memorySeconds,
  };
}

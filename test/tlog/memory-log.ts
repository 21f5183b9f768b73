/**
 * An in-memory log for the CLI's verifiers: entries, their tiles and a signed checkpoint,
 * built with the reference functions of src/tlog, behind the same LogSource interface the
 * HTTP client implements. Each piece can be tampered with before it is served.
 */
import {
  consistencyProofFromLeaves, leafHash, newTiles, nodeGetterFromLeaves, parseSignerKey, rootOf, signCheckpoint, tileData, tileWidth,
  type Checkpoint,
} from '../../src/tlog/index.ts';
import { LogFetchError, type LogKeyEntry, type LogSource } from '../../src/cli/log/client.ts';

export interface MemoryLog extends LogSource {
  entryList: Buffer[];
  leaves: Buffer[];
  /** Tiles by "level/index", at their width in the signed tree. */
  tiles: Map<string, Buffer>;
  note: string;
  signed: Checkpoint;
  /** Replaces the consistency proofs served (tampering with the server's answers). */
  proofOverride?: (from: number, to: number) => Buffer[];
  /** The key list served: the signing key alone unless a test rotates it. */
  keyList: LogKeyEntry[];
}

/** Deterministic entries of about `bytes` bytes each. */
export function syntheticEntries(count: number, bytes = 120, tag = 'e'): Buffer[] {
  return Array.from({ length: count }, (_, index) => Buffer.from(`{"seq":${index},"tag":"${tag}","pad":"${'x'.repeat(Math.max(0, bytes - 30))}"}`));
}

export function memoryLog(entries: Buffer[], signerKey: string): MemoryLog {
  const leaves = entries.map((entry) => leafHash(entry));
  const getNode = nodeGetterFromLeaves(leaves);
  const tiles = new Map<string, Buffer>();
  for (const tile of newTiles(0, leaves.length)) tiles.set(`${tile.level}/${tile.index}`, tileData(tile, getNode));
  const signer = parseSignerKey(signerKey);
  const checkpoint: Checkpoint = { origin: signer.name, size: leaves.length, rootHash: rootOf(leaves), extensions: [] };
  const log: MemoryLog = {
    description: 'memory',
    entryList: entries,
    leaves,
    tiles,
    signed: checkpoint,
    note: signCheckpoint(checkpoint, signer),
    keyList: [{ verifierKey: signer.verifierKey, firstSize: 0, announcement: null }],
    async checkpoint() {
      return log.note;
    },
    async tile(level: number, index: number, width: number) {
      const bytes = log.tiles.get(`${level}/${index}`);
      if (!bytes || bytes.length < width * 32) throw new LogFetchError(`memory/tile/${level}/${index}`, 404, `memory/tile/${level}/${index} answered 404: not stored`);
      return Buffer.from(bytes.subarray(0, width * 32));
    },
    async entries(index: number, width: number) {
      return log.entryList.slice(index * tileWidth, index * tileWidth + width);
    },
    async consistencyProof(from: number, to: number) {
      return log.proofOverride ? log.proofOverride(from, to) : consistencyProofFromLeaves(from, log.leaves.slice(0, to));
    },
    async keys() {
      return log.keyList;
    },
  };
  return log;
}

/** Flips one bit of byte `at` of a copy. */
export function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at]! ^= 0x01;
  return copy;
}

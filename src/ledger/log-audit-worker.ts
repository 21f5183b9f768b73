/**
 * The hashing half of auditStoredLog (log-audit.ts), in a thread of its own: the main
 * thread reads events and tiles from PostgreSQL while this one hashes the chunk before.
 * Messages in: 'chunk' (level-0 tiles and packed entries, in order), then 'finish'.
 * Messages out: 'ack' after each chunk, then 'done' with the auditor's result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TreeAuditor, tileWidth } from '../tlog/index.ts';
import { unpackEntries } from '../store/tlog-tables.ts';

export interface AuditWorkerData {
  roots: Array<[number, Uint8Array]>;
  /** Tiles above level 0 (few): the worker keeps them for the whole audit. */
  upper: WorkerTile[];
}

export interface WorkerTile {
  level: number;
  index: number;
  width: number;
  hashes: Uint8Array;
}

export type AuditWorkerRequest =
  | { type: 'chunk'; tiles: WorkerTile[]; bytes: Uint8Array; count: number }
  | { type: 'finish' };

export type AuditWorkerReply =
  | { type: 'ack'; failed: boolean }
  | { type: 'done'; hashes: number; failure: { kind: 'leaf' | 'tile' | 'checkpoint'; message: string } | undefined };

const port = parentPort!;
const data = workerData as AuditWorkerData;
const key = (level: number, index: number) => `${level}/${index}`;
const upper = new Map(data.upper.map((tile) => [key(tile.level, tile.index), tile]));
let level0 = new Map<number, WorkerTile>();

const auditor = new TreeAuditor((tileLevel, index) => {
  const tileIndex = Math.floor(index / tileWidth);
  const tile = tileLevel === 0 ? level0.get(tileIndex) : upper.get(key(tileLevel, tileIndex));
  const offset = index - tileIndex * tileWidth;
  if (!tile || offset >= tile.width) return undefined;
  return Buffer.from(tile.hashes.buffer, tile.hashes.byteOffset + offset * 32, 32);
}, new Map(data.roots.map(([size, root]) => [size, Buffer.from(root)])));

port.on('message', (message: AuditWorkerRequest) => {
  if (message.type === 'finish') {
    const failure = auditor.finish();
    port.postMessage({ type: 'done', hashes: auditor.hashes, failure: failure && { kind: failure.kind, message: failure.message } } satisfies AuditWorkerReply);
    return;
  }
  level0 = new Map(message.tiles.map((tile) => [tile.index, tile]));
  auditor.addEntries(unpackEntries(message));
  port.postMessage({ type: 'ack', failed: auditor.failure !== undefined } satisfies AuditWorkerReply);
});

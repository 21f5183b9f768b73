/**
 * The hashing half of auditStoredLog (audit.ts), in a thread of its own: the main thread
 * reads events and tiles from PostgreSQL while the audit's workers each hash a chunk
 * (chunk-auditor.ts). Messages in: 'chunk' (its start, level-0 tiles, packed entries and
 * the roots signed at the sizes it reaches); out: one 'audited' per chunk, in the order
 * they came.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AuditStart } from '../../tlog/audit.ts';
import { ChunkAuditor, type AuditTile } from './chunk-auditor.ts';

/** Roots by size (a Buffer arrives as a plain Uint8Array). */
export type AuditWorkerRoots = Array<[number, Uint8Array]>;

export interface AuditWorkerData {
  /** Tiles above level 0 (few): the worker keeps them for the whole audit. */
  upper: AuditTile[];
  /** Send back each chunk's inner nodes (ChunkAuditor's keepInnerNodes). */
  keepInnerNodes: boolean;
}

export interface AuditWorkerRequest {
  type: 'chunk';
  start: { size: number; frontier: Uint8Array[] };
  end: number;
  tiles: AuditTile[];
  bytes: Uint8Array;
  count: number;
  roots: AuditWorkerRoots;
}

export interface AuditWorkerReply {
  type: 'audited';
  failure: { kind: 'leaf' | 'tile' | 'checkpoint'; message: string } | undefined;
  hashes: number;
  frontier: Uint8Array[];
  inner: Uint8Array | undefined;
}

const port = parentPort!;
const data = workerData as AuditWorkerData;
const auditor = new ChunkAuditor(data.upper, data.keepInnerNodes);
const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

port.on('message', (message: AuditWorkerRequest) => {
  const start: AuditStart = { size: message.start.size, frontier: message.start.frontier.map(asBuffer) };
  const outcome = auditor.audit({ start, end: message.end, tiles: message.tiles, entries: message, roots: message.roots.map(([size, root]) => [size, asBuffer(root)] as const) });
  const { failure, hashes, frontier, inner } = outcome;
  // The inner nodes' buffer is the chunk's own (Buffer.alloc): moved, not copied.
  port.postMessage({ type: 'audited', failure: failure && { kind: failure.kind, message: failure.message }, hashes, frontier, inner } satisfies AuditWorkerReply, inner ? [inner.buffer as ArrayBuffer] : []);
});

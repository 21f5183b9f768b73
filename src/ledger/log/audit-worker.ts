/**
 * The hashing half of auditStoredLog (audit.ts), in a thread of its own: the main
 * thread reads events and tiles from PostgreSQL while this one hashes the chunk before.
 * Messages in: 'chunk' (level-0 tiles, packed entries and the roots signed at the sizes
 * they reach, in order), then 'finish' (with the roots signed beyond the last chunk).
 * Messages out: 'ack' after each chunk, then 'done' with the auditor's result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ChunkAuditor, type AuditTile } from './chunk-auditor.ts';

/** Roots by size; a Buffer arrives as a plain Uint8Array. */
export type AuditWorkerRoots = Array<[number, Uint8Array]>;

export interface AuditWorkerData {
  /** Tiles above level 0 (few): the worker keeps them for the whole audit. */
  upper: AuditTile[];
  /** Send back each chunk's inner nodes (ChunkAuditor's keepInnerNodes). */
  keepInnerNodes: boolean;
}

export type AuditWorkerRequest =
  | { type: 'chunk'; tiles: AuditTile[]; bytes: Uint8Array; count: number; roots: AuditWorkerRoots }
  | { type: 'finish'; roots: AuditWorkerRoots };

export type AuditWorkerReply =
  | { type: 'ack'; failed: boolean; inner: Uint8Array | undefined }
  | { type: 'done'; hashes: number; failure: { kind: 'leaf' | 'tile' | 'checkpoint'; message: string } | undefined };

const port = parentPort!;
const data = workerData as AuditWorkerData;
const auditor = new ChunkAuditor(data.upper, data.keepInnerNodes);
const asBuffers = (roots: AuditWorkerRoots) => roots.map(([size, root]) => [size, Buffer.from(root.buffer, root.byteOffset, root.byteLength)] as const);

port.on('message', (message: AuditWorkerRequest) => {
  if (message.type === 'finish') {
    const { hashes, failure } = auditor.finish(asBuffers(message.roots));
    port.postMessage({ type: 'done', hashes, failure: failure && { kind: failure.kind, message: failure.message } } satisfies AuditWorkerReply);
    return;
  }
  const { failed, inner } = auditor.add(message.tiles, message, asBuffers(message.roots));
  // The inner nodes' buffer is the chunk's own (Buffer.alloc): moved, not copied.
  port.postMessage({ type: 'ack', failed, inner } satisfies AuditWorkerReply, inner ? [inner.buffer as ArrayBuffer] : []);
});

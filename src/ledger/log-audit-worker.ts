/**
 * The hashing half of auditStoredLog (log-audit.ts), in a thread of its own: the main
 * thread reads events and tiles from PostgreSQL while this one hashes the chunk before.
 * Messages in: 'chunk' (level-0 tiles and packed entries, in order), then 'finish'.
 * Messages out: 'ack' after each chunk, then 'done' with the auditor's result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ChunkAuditor, type AuditTile } from './chunk-auditor.ts';

export interface AuditWorkerData {
  roots: Array<[number, Uint8Array]>;
  /** Tiles above level 0 (few): the worker keeps them for the whole audit. */
  upper: AuditTile[];
  /** Send back each chunk's inner nodes (ChunkAuditor's keepInnerNodes). */
  keepInnerNodes: boolean;
}

export type AuditWorkerRequest =
  | { type: 'chunk'; tiles: AuditTile[]; bytes: Uint8Array; count: number }
  | { type: 'finish' };

export type AuditWorkerReply =
  | { type: 'ack'; failed: boolean; inner: Uint8Array | undefined }
  | { type: 'done'; hashes: number; failure: { kind: 'leaf' | 'tile' | 'checkpoint'; message: string } | undefined };

const port = parentPort!;
const data = workerData as AuditWorkerData;
const auditor = new ChunkAuditor(data.upper, new Map(data.roots.map(([size, root]) => [size, Buffer.from(root)])), data.keepInnerNodes);

port.on('message', (message: AuditWorkerRequest) => {
  if (message.type === 'finish') {
    const { hashes, failure } = auditor.finish();
    port.postMessage({ type: 'done', hashes, failure: failure && { kind: failure.kind, message: failure.message } } satisfies AuditWorkerReply);
    return;
  }
  const { failed, inner } = auditor.add(message.tiles, message);
  // The inner nodes' buffer is the chunk's own (Buffer.alloc): moved, not copied.
  port.postMessage({ type: 'ack', failed, inner } satisfies AuditWorkerReply, inner ? [inner.buffer as ArrayBuffer] : []);
});

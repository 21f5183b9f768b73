/**
 * The full audit of the stored log, driven from the database: events and level-0 tiles
 * are streamed in chunks, the (few) higher tiles are read once. Used at start and by
 * operators; `chipledger log verify` runs the same TreeAuditor over HTTP.
 *
 * A big log is hashed in a worker thread (log-audit-worker.ts) while this thread reads
 * the next chunks: reading a million events from PostgreSQL costs about as much as hashing
 * them, and the two then overlap. A small one is hashed here, since starting the worker
 * (loading its TypeScript) costs more than it saves.
 */
import { Worker } from 'node:worker_threads';
import { limits } from '../core/limits.ts';
import { tileHeight, tileWidth, type AuditFailure } from '../tlog/index.ts';
import type { Pool, PoolClient } from '../store/pool.ts';
import { readEntriesPacked, readTileRange, type TileRow } from '../store/tlog-tables.ts';
import { ChunkAuditor } from './chunk-auditor.ts';
import type { AuditWorkerData, AuditWorkerReply, AuditWorkerRequest } from './log-audit-worker.ts';

/** Level-0 tiles per round trip: 64 × 256 = 16,384 entries. */
export const auditTilesPerChunk = 64;

export interface AuditResult {
  size: number;
  hashes: number;
  failure: AuditFailure | undefined;
}

export interface AuditOptions {
  /** Logs of at least this many entries are hashed in a worker thread (limits.auditWorkerEntriesMin). */
  workerFromEntries?: number;
}

interface Chunk {
  rows: TileRow[];
  bytes: Buffer;
  count: number;
}

export async function auditStoredLog(db: Pool | PoolClient, size: number, roots: ReadonlyMap<number, Buffer>, options: AuditOptions = {}): Promise<AuditResult> {
  const upper: TileRow[] = [];
  for (let level = 1; Math.floor(size / 2 ** (tileHeight * level)) > 0; level += 1) upper.push(...(await readTileRange(db, level, 0, Number.MAX_SAFE_INTEGER)));
  const fetchChunk = async (firstTile: number): Promise<Chunk> => {
    const from = firstTile * tileWidth;
    const rows = await readTileRange(db, 0, firstTile, auditTilesPerChunk);
    return { rows, ...(await readEntriesPacked(db, from, Math.min(size, from + auditTilesPerChunk * tileWidth))) };
  };
  const hasher = size >= (options.workerFromEntries ?? limits.auditWorkerEntriesMin) ? await WorkerHasher.start(upper, roots) : new LocalHasher(upper, roots);
  try {
    // On a pool the next chunk is read while this one is hashed; one client reads in turn.
    const prefetch = isPool(db);
    let next = size > 0 ? fetchChunk(0) : undefined;
    for (let firstTile = 0; next; firstTile += auditTilesPerChunk) {
      const chunk = await next;
      const following = firstTile + auditTilesPerChunk;
      const more = following * tileWidth < size;
      next = more && prefetch ? fetchChunk(following) : undefined;
      if (await hasher.add(chunk)) break;
      if (more && !prefetch) next = fetchChunk(following);
    }
    // Stopped at a failure with a read still in flight: its outcome no longer matters.
    next?.catch(() => {});
    const { hashes, failure } = await hasher.finish();
    return { size, hashes, failure };
  } finally {
    await hasher.close();
  }
}

/** Hashes chunks; add() answers whether the audit failed (stop reading). */
interface Hasher {
  add(chunk: Chunk): Promise<boolean>;
  finish(): Promise<{ hashes: number; failure: AuditFailure | undefined }>;
  close(): Promise<void>;
}

class LocalHasher implements Hasher {
  private readonly auditor: ChunkAuditor;

  constructor(upper: TileRow[], roots: ReadonlyMap<number, Buffer>) {
    this.auditor = new ChunkAuditor(upper, roots);
  }

  async add(chunk: Chunk): Promise<boolean> {
    return this.auditor.add(chunk.rows, chunk);
  }

  async finish(): Promise<{ hashes: number; failure: AuditFailure | undefined }> {
    return this.auditor.finish();
  }

  async close(): Promise<void> {}
}

/**
 * The worker side: at most `inFlightMax` chunks sent and not yet hashed, so memory stays
 * bounded while the reader runs ahead.
 */
class WorkerHasher implements Hasher {
  private static readonly inFlightMax = 2;
  private readonly waiting: Array<{ resolve: (reply: AuditWorkerReply) => void; reject: (error: Error) => void }> = [];
  private readonly acks: Array<Promise<AuditWorkerReply>> = [];
  private broken: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: AuditWorkerReply) => this.waiting.shift()?.resolve(reply));
    const fail = (error: Error) => {
      this.broken = error;
      for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the log audit worker stopped (exit code ${code}) before it answered`)));
  }

  static async start(upper: TileRow[], roots: ReadonlyMap<number, Buffer>): Promise<WorkerHasher> {
    const workerData: AuditWorkerData = {
      roots: [...roots],
      upper,
    };
    return new WorkerHasher(new Worker(new URL('./log-audit-worker.mjs', import.meta.url), { workerData }));
  }

  async add(chunk: Chunk): Promise<boolean> {
    this.acks.push(this.send({ type: 'chunk', tiles: chunk.rows, bytes: chunk.bytes, count: chunk.count }, [chunk.bytes.buffer as ArrayBuffer]));
    if (this.acks.length < WorkerHasher.inFlightMax) return false;
    const reply = await this.acks.shift()!;
    return reply.type === 'ack' && reply.failed;
  }

  async finish(): Promise<{ hashes: number; failure: AuditFailure | undefined }> {
    await Promise.all(this.acks.splice(0));
    const reply = await this.send({ type: 'finish' }, []);
    if (reply.type !== 'done') throw new Error('assertion failed: the log audit worker answered finish with an ack');
    return { hashes: reply.hashes, failure: reply.failure };
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private send(message: AuditWorkerRequest, transfer: ArrayBuffer[]): Promise<AuditWorkerReply> {
    if (this.broken) return Promise.reject(this.broken);
    const reply = new Promise<AuditWorkerReply>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.worker.postMessage(message, transfer);
    return reply;
  }
}

function isPool(db: Pool | PoolClient): db is Pool {
  return 'totalCount' in db;
}

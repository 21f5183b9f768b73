/**
 * The full audit of the stored log, driven from the database: events and level-0 tiles
 * are streamed in chunks, the (few) higher tiles are read once. Used at start and by
 * operators; `chipledger log verify` runs the same TreeAuditor over HTTP.
 *
 * A big log is hashed in a worker thread (audit-worker.ts) while this thread reads
 * the next chunks: reading a million events from PostgreSQL costs about as much as hashing
 * them, and the two then overlap. A small one is hashed here, since starting the worker
 * (loading its TypeScript) costs more than it saves.
 *
 * The roots the log signed are asked of a RootSource chunk by chunk, for the sizes each chunk
 * reaches: every checkpoint is kept (one a second while events come), and a month of them at
 * once is gigabytes, past the heap (`chipledger check` reads them as the audit goes).
 *
 * At start the server keeps what the audit proved (keepTilesMax): the newest tiles, each
 * full level-0 one with the inner nodes the audit computed on the way. Proofs over them
 * then read no tile from PostgreSQL and hash nothing.
 */
import { Worker } from 'node:worker_threads';
import { limits } from '../../core/limits.ts';
import { innerNodesBytes, tileHeight, tileWidth, type AuditFailure } from '../../tlog/index.ts';
import { isPool, type Pool, type PoolClient } from '../../store/pool.ts';
import { readEntriesPacked, readTileRange, type TileRow } from '../../store/tlog-tables.ts';
import { ChunkAuditor } from './chunk-auditor.ts';
import type { AuditWorkerData, AuditWorkerReply, AuditWorkerRequest } from './audit-worker.ts';
import type { CachedTile } from './tile-reader.ts';

export interface AuditResult {
  size: number;
  hashes: number;
  failure: AuditFailure | undefined;
  /**
   * Tiles the audit read and proved, kept as `keepTilesMax` asks: the newest level-0 ones,
   * oldest first, then every tile above level 0. Empty when the audit failed.
   */
  verifiedTiles: CachedTile[];
}

export interface AuditOptions {
  /** Logs of at least this many entries are hashed in a worker thread (limits.auditWorkerEntriesMin). */
  workerFromEntries?: number;
  /** Level-0 tiles a chunk reads (default limits.auditTilesPerChunk; tests take a few, for several chunks over a small log). */
  tilesPerChunk?: number;
  /** Keep at most this many of the tiles read, for verifiedTiles (default: none). */
  keepTilesMax?: number;
}

/**
 * The roots the log signed or recorded, asked as the audit goes. The audit asks `between`
 * for each chunk's sizes in turn (size 0 and the first chunk's, then from each chunk's first
 * entry + 1 to its last; the ranges adjacent, each asked once, one at a time), and last
 * `above` the log's size: any root there is a failure (signed beyond the log).
 */
export interface RootSource {
  between(fromSize: number, toSize: number): Promise<ReadonlyMap<number, Buffer>>;
  above(size: number): Promise<ReadonlyMap<number, Buffer>>;
}

/** A source over roots already in memory (a few: the head, a test's). */
export function rootsFromMap(roots: ReadonlyMap<number, Buffer>): RootSource {
  const pick = (keep: (size: number) => boolean) => new Map([...roots].filter(([size]) => keep(size)));
  return {
    between: async (fromSize, toSize) => pick((size) => size >= fromSize && size <= toSize),
    above: async (logSize) => pick((size) => size > logSize),
  };
}

interface Chunk {
  rows: CachedTile[];
  bytes: Buffer;
  count: number;
  /** The roots at the sizes this chunk reaches. */
  roots: ReadonlyMap<number, Buffer>;
}

export async function auditStoredLog(db: Pool | PoolClient, size: number, roots: RootSource | ReadonlyMap<number, Buffer>, options: AuditOptions = {}): Promise<AuditResult> {
  const source = 'between' in roots ? roots : rootsFromMap(roots);
  const tilesPerChunk = options.tilesPerChunk ?? limits.auditTilesPerChunk;
  const upper: TileRow[] = [];
  for (let level = 1; Math.floor(size / 2 ** (tileHeight * level)) > 0; level += 1) upper.push(...(await readTileRange(db, level, 0, Number.MAX_SAFE_INTEGER)));
  const fetchChunk = async (firstTile: number): Promise<Chunk> => {
    const from = firstTile * tileWidth;
    const to = Math.min(size, from + tilesPerChunk * tileWidth);
    const rows = await readTileRange(db, 0, firstTile, tilesPerChunk);
    const entries = await readEntriesPacked(db, from, to);
    return { rows, ...entries, roots: await source.between(from === 0 ? 0 : from + 1, to) };
  };
  const keepLevel0Max = Math.max(0, (options.keepTilesMax ?? 0) - upper.length);
  const kept: CachedTile[] = [];
  // Kept level-0 tiles also keep the inner nodes the audit computes: proofs then hash nothing.
  const keepInner = keepLevel0Max > 0;
  const hasher = size >= (options.workerFromEntries ?? limits.auditWorkerEntriesMin) ? await WorkerHasher.start(upper, keepInner) : new LocalHasher(upper, keepInner);
  try {
    // On a pool the next chunk is read while this one is hashed; one client reads in turn.
    const prefetch = isPool(db);
    // A read still in flight when the audit stops (a failure, a refusal from the source)
    // no longer matters: handled here, so it cannot end the process as unhandled.
    const read = (firstTile: number) => {
      const chunk = fetchChunk(firstTile);
      chunk.catch(() => {});
      return chunk;
    };
    let next = size > 0 ? read(0) : undefined;
    let failed = false;
    for (let firstTile = 0; next; firstTile += tilesPerChunk) {
      const chunk = await next;
      const following = firstTile + tilesPerChunk;
      const more = following * tileWidth < size;
      next = more && prefetch ? read(following) : undefined;
      if (keepLevel0Max > 0) {
        kept.push(...chunk.rows);
        if (kept.length > keepLevel0Max) kept.splice(0, kept.length - keepLevel0Max);
      }
      failed = await hasher.add(chunk);
      if (failed) break;
      if (more && !prefetch) next = read(following);
    }
    // Roots beyond the last chunk (and size 0 of an empty log, which has no chunk): asked
    // only of an audit that has not failed yet, since the first failure is the one reported.
    const beyond = failed ? [] : [...(size === 0 ? await source.between(0, 0) : []), ...(await source.above(size))];
    const { hashes, failure } = await hasher.finish(beyond);
    // Upper tiles last: a full tile cache drops its oldest entries first, and every proof
    // needs the upper tiles.
    const verifiedTiles = failure || options.keepTilesMax === undefined ? [] : [...kept, ...upper.slice(0, options.keepTilesMax)];
    return { size, hashes, failure, verifiedTiles };
  } finally {
    await hasher.close();
  }
}

/** Hashes chunks; add() answers whether the audit failed (stop reading). */
interface Hasher {
  add(chunk: Chunk): Promise<boolean>;
  finish(rootsBeyond: ReadonlyArray<readonly [number, Buffer]>): Promise<{ hashes: number; failure: AuditFailure | undefined }>;
  close(): Promise<void>;
}

/** Gives each full tile of a chunk its inner nodes, from ChunkAuditor's buffer for the chunk. */
function attachInner(rows: CachedTile[], inner: Uint8Array | undefined): void {
  if (!inner) return;
  const buffer = Buffer.from(inner.buffer, inner.byteOffset, inner.byteLength);
  rows.forEach((row, slot) => {
    if (row.width === tileWidth) row.inner = buffer.subarray(slot * innerNodesBytes, (slot + 1) * innerNodesBytes);
  });
}

class LocalHasher implements Hasher {
  private readonly auditor: ChunkAuditor;

  constructor(upper: TileRow[], keepInner: boolean) {
    this.auditor = new ChunkAuditor(upper, keepInner);
  }

  async add(chunk: Chunk): Promise<boolean> {
    const { failed, inner } = this.auditor.add(chunk.rows, chunk, chunk.roots);
    attachInner(chunk.rows, inner);
    return failed;
  }

  async finish(rootsBeyond: ReadonlyArray<readonly [number, Buffer]>): Promise<{ hashes: number; failure: AuditFailure | undefined }> {
    return this.auditor.finish(rootsBeyond);
  }

  async close(): Promise<void> {}
}

/**
 * The worker side: at most `limits.auditChunksInFlightMax` chunks sent and not yet hashed, so
 * memory stays bounded while the reader runs ahead.
 */
class WorkerHasher implements Hasher {
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

  static async start(upper: TileRow[], keepInnerNodes: boolean): Promise<WorkerHasher> {
    const workerData: AuditWorkerData = {
      upper,
      keepInnerNodes,
    };
    return new WorkerHasher(new Worker(new URL('./audit-worker.mjs', import.meta.url), { workerData }));
  }

  async add(chunk: Chunk): Promise<boolean> {
    // The chunk's roots go with it (copied): the worker wants them before its entries.
    const ack = this.send({ type: 'chunk', tiles: chunk.rows, bytes: chunk.bytes, count: chunk.count, roots: [...chunk.roots] }, [chunk.bytes.buffer as ArrayBuffer]).then((reply) => {
      if (reply.type === 'ack') attachInner(chunk.rows, reply.inner);
      return reply;
    });
    // Awaited later, in order; a worker that dies meanwhile rejects it before then, which
    // without a handler now would end the process as an unhandled rejection.
    ack.catch(() => {});
    this.acks.push(ack);
    if (this.acks.length < limits.auditChunksInFlightMax) return false;
    const reply = await this.acks.shift()!;
    return reply.type === 'ack' && reply.failed;
  }

  async finish(rootsBeyond: ReadonlyArray<readonly [number, Buffer]>): Promise<{ hashes: number; failure: AuditFailure | undefined }> {
    await Promise.all(this.acks.splice(0));
    const reply = await this.send({ type: 'finish', roots: rootsBeyond.map(([size, root]) => [size, root]) }, []);
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

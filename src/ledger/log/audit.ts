/**
 * The full audit of the stored log, driven from the database: events and level-0 tiles
 * are streamed in chunks, the (few) higher tiles are read once. Used at start and by
 * operators; `chipledger log verify` runs the same TreeAuditor over HTTP.
 *
 * Each chunk is a whole aligned subtree, audited on its own from the frontier at its start
 * (chunk-auditor.ts). A big log's chunks are hashed by worker threads (audit-worker.ts),
 * auditWorkersMax of them taking chunks in turn, while this thread reads the next chunks:
 * reading a million events from PostgreSQL costs about a third of hashing them, and with
 * the hashing split the three overlap. The outcomes are taken in chunk order, and the first
 * failure in that order is the one reported, as a one-pass audit would report it. A small
 * log is hashed here, since starting a worker (loading its TypeScript) costs more than it
 * saves.
 *
 * The roots the log signed are asked of a RootSource chunk by chunk, for the sizes each chunk
 * reaches: every checkpoint is kept (one a second while events come), and a month of them at
 * once is gigabytes, past the heap (`chipledger check` reads them as the audit goes).
 *
 * At start the server keeps what the audit proved (keepTilesMax): the newest tiles, each
 * full level-0 one with the inner nodes the audit computed on the way. Proofs over them
 * then read no tile from PostgreSQL and hash nothing.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { limits } from '../../core/limits.ts';
import { innerNodesBytes, tileHeight, tileWidth, TreeAuditor, type AuditFailure } from '../../tlog/index.ts';
import { isPool, type Pool, type PoolClient } from '../../store/pool.ts';
import { readEntriesPacked, readTileRange, type TileRow } from '../../store/tlog-tables.ts';
import { ChunkAuditor, type ChunkInput, type ChunkOutcome } from './chunk-auditor.ts';
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
  /** Logs of at least this many entries are hashed in worker threads (limits.auditWorkerEntriesMin). */
  workerFromEntries?: number;
  /** Worker threads for a big log (default: limits.auditWorkersMax, at most the machine's cores). */
  workers?: number;
  /**
   * Level-0 tiles a chunk reads, a power of two (default limits.auditTilesPerChunk; tests
   * take a few, for several chunks over a small log).
   */
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
  from: number;
  /** The size after its last entry. */
  to: number;
  rows: CachedTile[];
  bytes: Uint8Array;
  count: number;
  /** The roots at the sizes this chunk reaches. */
  roots: ReadonlyMap<number, Buffer>;
}

export async function auditStoredLog(db: Pool | PoolClient, size: number, roots: RootSource | ReadonlyMap<number, Buffer>, options: AuditOptions = {}): Promise<AuditResult> {
  const source = 'between' in roots ? roots : rootsFromMap(roots);
  const tilesPerChunk = options.tilesPerChunk ?? limits.auditTilesPerChunk;
  // A power of two, so each chunk is a whole aligned subtree that can be audited on its own.
  if (!Number.isSafeInteger(tilesPerChunk) || tilesPerChunk < 1 || (tilesPerChunk & (tilesPerChunk - 1)) !== 0) throw new Error(`assertion failed: an audit chunk of ${tilesPerChunk} tiles is not a power of two`);
  const chunkLeaves = tilesPerChunk * tileWidth;
  const upper: TileRow[] = [];
  for (let level = 1; Math.floor(size / 2 ** (tileHeight * level)) > 0; level += 1) upper.push(...(await readTileRange(db, level, 0, Number.MAX_SAFE_INTEGER)));
  const fetchChunk = async (from: number): Promise<Chunk> => {
    const to = Math.min(size, from + chunkLeaves);
    const rows = await readTileRange(db, 0, from / tileWidth, tilesPerChunk);
    const entries = await readEntriesPacked(db, from, to);
    const fromSize = from === 0 ? 0 : from + 1;
    const roots = await source.between(fromSize, to);
    // One outside would be wanted by no chunk, or by one that has passed it: never checked.
    for (const rootSize of roots.keys()) if (rootSize < fromSize || rootSize > to) throw new Error(`assertion failed: the roots between sizes ${fromSize} and ${to} include one at ${rootSize}`);
    return { from, to, rows, ...entries, roots };
  };
  const keepLevel0Max = Math.max(0, (options.keepTilesMax ?? 0) - upper.length);
  const kept: CachedTile[] = [];
  // Kept level-0 tiles also keep the inner nodes the audit computes: proofs then hash nothing.
  const keepInner = keepLevel0Max > 0;
  const chunkAuditor = new ChunkAuditor(upper, keepInner);
  // The default is capped at the machine's cores; a number asked for is taken as it is (tests
  // take three on any machine, so that chunks go round more workers than one).
  const workers = Math.max(1, options.workers ?? Math.min(limits.auditWorkersMax, availableParallelism()));
  const hasher = size >= (options.workerFromEntries ?? limits.auditWorkerEntriesMin) ? WorkerHashers.start(upper, keepInner, workers) : new LocalHasher(chunkAuditor);
  // Outcomes awaited in chunk order, each with its chunk's tiles (which get their inner nodes).
  const pending: Array<{ rows: CachedTile[]; outcome: Promise<ChunkOutcome> }> = [];
  let hashes = 0;
  let failure: AuditFailure | undefined;
  // The frontier where the last chunk taken ended: at its end, each chunk being held to all
  // its entries, so at the log's size once every chunk passed.
  let frontier: Buffer[] = [];
  const takeOldest = async (): Promise<void> => {
    const { rows, outcome } = pending.shift()!;
    const done = await outcome;
    hashes += done.hashes;
    failure = done.failure;
    frontier = done.frontier;
    attachInner(rows, done.inner);
  };
  try {
    // On a pool the next chunk is read while this one is hashed; one client reads in turn.
    const prefetch = isPool(db);
    // A read still in flight when the audit stops (a failure, a refusal from the source)
    // no longer matters: handled here, so it cannot end the process as unhandled.
    const read = (from: number) => {
      const chunk = fetchChunk(from);
      chunk.catch(() => {});
      return chunk;
    };
    let next = size > 0 ? read(0) : undefined;
    while (next && !failure) {
      const chunk = await next;
      const following = chunk.from + chunkLeaves;
      const more = following < size;
      next = more && prefetch ? read(following) : undefined;
      if (keepLevel0Max > 0) {
        kept.push(...chunk.rows);
        if (kept.length > keepLevel0Max) kept.splice(0, kept.length - keepLevel0Max);
      }
      const start = chunkAuditor.chunkStart(chunk.from, chunkLeaves);
      if (start === undefined) {
        // A stored hash the frontier needs is missing: a chunk before this one fails on it.
        while (pending.length > 0 && !failure) await takeOldest();
        if (!failure) throw new Error(`assertion failed: the frontier at ${chunk.from} cannot be made from the stored tiles, yet every chunk before it passed`);
        break;
      }
      const outcome = hasher.audit({ start, end: chunk.to, tiles: chunk.rows, entries: chunk, roots: chunk.roots });
      // Awaited later, in order; one that fails meanwhile must not end the process as unhandled.
      outcome.catch(() => {});
      pending.push({ rows: chunk.rows, outcome });
      while (pending.length >= hasher.inFlightMax && !failure) await takeOldest();
      if (more && !prefetch && !failure) next = read(following);
    }
    while (pending.length > 0 && !failure) await takeOldest();
    // Roots beyond the last chunk (and size 0 of an empty log, which has no chunk): asked
    // only of an audit that has not failed yet, since the first failure is the one reported.
    if (!failure) {
      const beyond = [...(size === 0 ? await source.between(0, 0) : []), ...(await source.above(size))];
      const last = new TreeAuditor(() => undefined, new Map(), undefined, { start: { size, frontier } });
      last.wantRoots(beyond);
      failure = last.finish();
    }
    // Upper tiles last: a full tile cache drops its oldest entries first, and every proof
    // needs the upper tiles.
    const verifiedTiles = failure || options.keepTilesMax === undefined ? [] : [...kept, ...upper.slice(0, options.keepTilesMax)];
    return { size, hashes, failure, verifiedTiles };
  } finally {
    await hasher.close();
  }
}

/** Audits chunks, each on its own, in parallel where it can; each outcome comes with its chunk's promise. */
interface Hasher {
  /** Chunks sent and not yet audited, at most: memory stays bounded while the reader runs ahead. */
  readonly inFlightMax: number;
  audit(chunk: ChunkInput): Promise<ChunkOutcome>;
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
  readonly inFlightMax = 1;

  constructor(private readonly auditor: ChunkAuditor) {}

  async audit(chunk: ChunkInput): Promise<ChunkOutcome> {
    return this.auditor.audit(chunk);
  }

  async close(): Promise<void> {}
}

/**
 * Worker threads taking chunks in turn, each answering its own in the order they came; at
 * most `limits.auditChunksInFlightMax` chunks each sent and not yet audited.
 */
class WorkerHashers implements Hasher {
  readonly inFlightMax: number;
  private sent = 0;

  private constructor(private readonly workers: AuditWorker[]) {
    this.inFlightMax = workers.length * limits.auditChunksInFlightMax;
  }

  static start(upper: TileRow[], keepInnerNodes: boolean, count: number): WorkerHashers {
    const workerData: AuditWorkerData = { upper, keepInnerNodes };
    const workers: AuditWorker[] = [];
    try {
      while (workers.length < count) workers.push(new AuditWorker(workerData));
    } catch (error) {
      // Those started would keep the process alive: no close() would ever reach them.
      for (const worker of workers) void worker.close();
      throw error;
    }
    return new WorkerHashers(workers);
  }

  audit(chunk: ChunkInput): Promise<ChunkOutcome> {
    const worker = this.workers[this.sent % this.workers.length]!;
    this.sent += 1;
    return worker.audit(chunk);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.close()));
  }
}

class AuditWorker {
  private readonly waiting: Array<{ resolve: (reply: AuditWorkerReply) => void; reject: (error: Error) => void }> = [];
  private readonly worker: Worker;
  private broken: Error | undefined;

  constructor(workerData: AuditWorkerData) {
    this.worker = new Worker(new URL('./audit-worker.mjs', import.meta.url), { workerData });
    this.worker.on('message', (reply: AuditWorkerReply) => this.waiting.shift()?.resolve(reply));
    const fail = (error: Error) => {
      this.broken = error;
      for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the log audit worker stopped (exit code ${code}) before it answered`)));
  }

  async audit(chunk: ChunkInput): Promise<ChunkOutcome> {
    const entries = chunk.entries;
    const message: AuditWorkerRequest = {
      type: 'chunk', start: { size: chunk.start.size, frontier: [...chunk.start.frontier] }, end: chunk.end, tiles: [...chunk.tiles], bytes: entries.bytes, count: entries.count, roots: [...chunk.roots].map(([size, root]) => [size, root]),
    };
    // The entries' buffer is the chunk's own (readEntriesPacked): moved, not copied.
    const reply = await this.send(message, [entries.bytes.buffer as ArrayBuffer]);
    const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { failure: reply.failure, hashes: reply.hashes, frontier: reply.frontier.map(asBuffer), inner: reply.inner && asBuffer(reply.inner) };
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private send(message: AuditWorkerRequest, transfer: ArrayBuffer[]): Promise<AuditWorkerReply> {
    if (this.broken) return Promise.reject(this.broken);
    // Queued once sent: a message that could not be sent must not leave a waiter to take the
    // next chunk's reply. Replies come on a later turn of the event loop, never before this.
    this.worker.postMessage(message, transfer);
    return new Promise<AuditWorkerReply>((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
}

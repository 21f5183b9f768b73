/**
 * The transparency log over the ledger's events (invariant 5): event seq i is leaf i of an
 * RFC 6962 tree whose hashes are stored as C2SP tiles, written in the same transaction as
 * the events themselves.
 *
 * The tiles are written by the batch (store/batch-writes.ts writeBatchAndCommit) with
 * the events, in one transaction. In memory we keep only the right edge: the Merkle
 * frontier and the partial tile at each tile level, so an append costs O(log n) and
 * nothing is recomputed at start. Before every batch the edge is compared with the head
 * the batch is applied at (size and root: read under the ledger's lock, or, for a batch
 * sent ahead, the one its opening checks); if another process appended, or our last batch
 * rolled back, the edge is reloaded from the tiles.
 */
import {
  MerkleAppender, leafHash, rootNodes, rootFromNodes, inclusionProofPlan, consistencyProofPlan, planNodes, executePlan,
  hashSize, tileHeight, tileRootOf, tileWidth, type CompletedNode,
} from '../../tlog/index.ts';
import { pollingTurn, yieldToEventLoop } from '../../core/turns.ts';
import type { Pool, PoolClient } from '../../store/pool.ts';
import type { LogHead, StoredHead } from '../../store/head-lock.ts';
import { currentLogKey, readTiles, type TileRow } from '../../store/tlog-tables.ts';
import type { LogAppender } from '../batch-apply.ts';
import { TileReader } from './tile-reader.ts';
import { WriterWithoutLogKey, type HeadSealer } from './head-seal.ts';

/**
 * A big batch hashes its leaves while its events travel to PostgreSQL (store/batch-writes.ts),
 * and those statements move only when the event loop turns: node-postgres answers each
 * protocol step (COPY's go-ahead, the next queued statement) from it. So the hashing gives
 * way every this many leaves, about 0.3 ms of SHA-256 on this machine.
 */
const leavesBetweenYields = 128;

interface EdgeTile {
  index: number;
  hashes: Buffer[];
}

export class TransparencyLog implements LogAppender {
  readonly tiles: TileReader;
  private appender = new MerkleAppender();
  private root: Buffer = this.appender.root();
  /** Tile level -> the right-most tile at that level that is not full yet. */
  private edges = new Map<number, EdgeTile>();
  readonly stats = { leaves: 0, reloads: 0, wholeTiles: 0, tilesForgotten: 0 };
  /**
   * The hash of the last leaf appended (or of the head's, after a reload); after a batch that
   * rolled back, one that never committed, which committed() then does not take.
   */
  private lastLeaf: Buffer | undefined;
  /**
   * The newest head this process knows the database committed (its own batches', and the heads
   * it reloaded at), by its size and last leaf: reload holds the database's history to it.
   */
  private known: { size: number; lastLeaf: Buffer } | undefined;

  /**
   * `cacheTiles`: log tiles kept in memory for proofs (TileReader). `sealer`: in a process that
   * holds the log's key, every head it appends is sealed, and vouch refuses a head no key holder
   * wrote (head-seal.ts); without one, neither.
   */
  constructor(pool: Pool, cacheTiles?: number, private readonly sealer?: HeadSealer) {
    this.tiles = new TileReader(pool, cacheTiles);
  }

  get size(): number {
    return this.appender.size;
  }

  async prepare(client: PoolClient, head: LogHead): Promise<void> {
    if (this.appender.size !== head.size || !this.root.equals(head.root)) await this.reload(client, head);
  }

  async append(client: PoolClient, head: LogHead, leaves: Array<{ seq: number; canonical: Buffer }>): Promise<{ root: Buffer; tiles: TileRow[]; seal: Buffer | null }> {
    await this.prepare(client, head);
    const full: TileRow[] = [];
    const touched = new Set<number>();
    // A big batch's opening went out alone before its rows were made (store/batch-writes.ts),
    // and has most likely answered by now: reading the sockets before hashing sends the
    // events' COPY, and its first rows, on their way at once, not 128 leaves later (about 1 ms
    // of a 2,048-leaf batch's 21 ms, bench/experiments/append-timeline.ts). For a batch
    // hashed before it is sent, the turn costs microseconds.
    if (leaves.length > leavesBetweenYields) await pollingTurn();
    // The nodes at tile levels onto the right edge; a tile that fills is written whole.
    const keep = (nodes: readonly CompletedNode[]) => {
      for (const node of nodes) {
        if (node.level % tileHeight !== 0) continue;
        const level = node.level / tileHeight;
        const tileIndex = Math.floor(node.index / tileWidth);
        let edge = this.edges.get(level);
        if (!edge || edge.index !== tileIndex) this.edges.set(level, (edge = { index: tileIndex, hashes: [] }));
        edge.hashes.push(node.hash);
        touched.add(level);
        if (edge.hashes.length === tileWidth) {
          full.push({ level, index: edge.index, width: tileWidth, hashes: Buffer.concat(edge.hashes) });
          this.edges.delete(level);
        }
      }
    };
    const checkSeq = (leaf: { seq: number }, size: number) => {
      if (leaf.seq !== size) throw new Error(`assertion failed: leaf ${leaf.seq} appended at log size ${size}`);
    };
    let done = 0;
    while (done < leaves.length) {
      const size = this.appender.size;
      if (size % tileWidth === 0 && leaves.length - done >= tileWidth) {
        // A whole level-0 tile: its leaf hashes straight into the tile's bytes, and its
        // subtree hashed level by level, then appended as one node (what 256 appender steps
        // give, without their copies and lists: a fifth to a quarter of the append's time
        // in memory, bench/experiments/append-tiles.ts).
        const tile = Buffer.allocUnsafe(tileWidth * hashSize);
        for (let offset = 0; offset < tileWidth; offset += 1, done += 1) {
          if (done > 0 && done % leavesBetweenYields === 0) await yieldToEventLoop();
          const leaf = leaves[done]!;
          checkSeq(leaf, size + offset);
          leafHash(leaf.canonical).copy(tile, offset * hashSize);
        }
        // The tile's 255 inner hashes in a stretch of their own, as the per-leaf loop spreads them.
        await yieldToEventLoop();
        full.push({ level: 0, index: size / tileWidth, width: tileWidth, hashes: tile });
        // Level 0 listed among the levels touched first, as a leaf at a time lists it: the
        // batch's partial tiles come in the same order either way.
        touched.add(0);
        this.lastLeaf = tile.subarray((tileWidth - 1) * hashSize);
        this.stats.wholeTiles += 1;
        keep(this.appender.appendSubtree(tileHeight, tileRootOf(tile)));
        continue;
      }
      if (done > 0 && done % leavesBetweenYields === 0) await yieldToEventLoop();
      const leaf = leaves[done]!;
      checkSeq(leaf, size);
      this.lastLeaf = leafHash(leaf.canonical);
      keep(this.appender.append(this.lastLeaf));
      done += 1;
    }
    const partial = [...touched].flatMap((level) => {
      const edge = this.edges.get(level);
      return edge ? [{ level, index: edge.index, width: edge.hashes.length, hashes: Buffer.concat(edge.hashes) }] : [];
    });
    this.root = this.appender.root();
    this.stats.leaves += leaves.length;
    const seal = this.sealer?.seal({ size: this.appender.size, root: this.root }) ?? null;
    return { root: this.root, tiles: [...full, ...partial], seal };
  }

  /**
   * With the log's key, the head must be one a key holder vouches for (head-seal.ts). Without it,
   * the log must have no key yet: a head this process wrote would be one no keyed server extends
   * or signs (a command run without the key while, or after, a server adopted one).
   */
  async vouch(client: PoolClient, head: StoredHead): Promise<void> {
    if (this.sealer !== undefined) return this.sealer.assertVouched(client, head);
    const key = await currentLogKey(client);
    if (key !== undefined) throw new WriterWithoutLogKey(key.verifier_key);
  }

  sealIsOurs(head: StoredHead): boolean {
    return this.sealer === undefined ? head.seal === null : this.sealer.sealedBy(head, head.seal);
  }

  /**
   * Told after each COMMIT of a batch, with the head it committed: the newest point of the
   * database's history this process knows (reload holds the database to it). Taken only where
   * the edge in memory is at that head: a batch that appended nothing commits the head it
   * found, which the edge may not be at (after a batch that rolled back).
   */
  committed(head: LogHead): void {
    if (head.size === this.appender.size && head.root.equals(this.root) && this.lastLeaf !== undefined) this.known = { size: head.size, lastLeaf: this.lastLeaf };
  }

  /** The head the start-up check proved, by its size and last leaf (log/check.ts): the first point reload holds the database to. */
  knowCommitted(size: number, lastLeaf: Buffer): void {
    this.known = { size, lastLeaf: Buffer.from(lastLeaf) };
  }

  /**
   * Rebuilds the right edge from the stored tiles at the committed head: one the batch
   * committer vouched for under the lock (vouch), or the one our last batch committed.
   *
   * It also finds a database that went back under the process (a failover to a replica
   * without the newest commits, a restore), whose history past that point is another: the
   * head is shorter than the newest this process knew committed (known), or the leaf there is
   * another. Each event has a random nonce, so another history's leaf at that index is
   * another hash. Then the tiles kept for proofs and roots are forgotten (tile-reader.ts), as
   * when they show the log longer than the head. Reading that leaf costs no round trip: its
   * level-0 tile is read with the right edge's.
   */
  private async reload(client: PoolClient, head: LogHead): Promise<void> {
    this.stats.reloads += 1;
    const known = this.known;
    const edgeTiles: Array<{ level: number; index: number; width: number }> = [];
    for (let level = 0; Math.floor(head.size / 2 ** (tileHeight * level)) > 0; level += 1) {
      const count = Math.floor(head.size / 2 ** (tileHeight * level));
      const width = count % tileWidth;
      if (width > 0) edgeTiles.push({ level, index: Math.floor(count / tileWidth), width });
    }
    const leafTile = (size: number) => ({ level: 0, index: Math.floor((size - 1) / tileWidth) });
    const checked = known !== undefined && known.size <= head.size ? known : undefined;
    // Each tile once: the two leaves' level-0 tile is most often the right edge's.
    const tiles = new Map([...edgeTiles, ...[checked?.size, head.size].flatMap((size) => (size ? [leafTile(size)] : []))].map((tile) => [`${tile.level}/${tile.index}`, tile]));
    const rows = await readTiles(client, [...tiles.values()]);
    const leafAt = (size: number): Buffer | undefined => {
      const { index } = leafTile(size);
      const offset = (size - 1) % tileWidth;
      const row = rows.find((candidate) => candidate.level === 0 && candidate.index === index);
      return row && row.width > offset ? row.hashes.subarray(offset * hashSize, (offset + 1) * hashSize) : undefined;
    };
    const wentBack = known !== undefined && (checked === undefined || !leafAt(checked.size)?.equals(checked.lastLeaf));
    if (wentBack || this.tiles.holdsPast(head.size)) this.forgetTiles();
    let appender = MerkleAppender.fromNodes(head.size, await this.tiles.nodeGetter(rootNodes(head.size), client));
    if (!appender.root().equals(head.root)) {
      // A kept tile of a history the database no longer holds, that the checks above missed
      // (another process's commits lost, the database grown past them since): read them all
      // again. Such a tile that gives no root here is not found (see README, failover).
      this.forgetTiles();
      appender = MerkleAppender.fromNodes(head.size, await this.tiles.nodeGetter(rootNodes(head.size), client));
    }
    const root = appender.root();
    if (!root.equals(head.root)) {
      throw new Error(`transparency log tiles give root ${root.toString('hex')} at size ${head.size}, but the log head records ${head.root.toString('hex')}`);
    }
    const edges = new Map<number, EdgeTile>();
    for (const want of edgeTiles) {
      const row = rows.find((candidate) => candidate.level === want.level && candidate.index === want.index);
      if (!row || row.width < want.width) throw new Error(`transparency log storage is missing tile ${want.level}/${want.index} of width ${want.width}`);
      const hashes: Buffer[] = [];
      for (let i = 0; i < want.width; i += 1) hashes.push(Buffer.from(row.hashes.subarray(i * 32, (i + 1) * 32)));
      edges.set(want.level, { index: want.index, hashes });
    }
    this.appender = appender;
    this.root = root;
    this.edges = edges;
    const lastLeaf = head.size > 0 ? leafAt(head.size) : undefined;
    this.lastLeaf = lastLeaf === undefined ? undefined : Buffer.from(lastLeaf);
    this.known = this.lastLeaf === undefined ? undefined : { size: head.size, lastLeaf: this.lastLeaf };
  }

  /**
   * Forgets the tiles read for proofs and roots: the database no longer holds the history they
   * were read from (a failover, a restore). Proofs read what it holds from then on.
   */
  forgetTiles(): void {
    this.stats.tilesForgotten += 1;
    this.tiles.forget();
  }

  // The reads below take `db`, where a tile the cache lacks is read: the API passes its own
  // pool, whose reads are bounded (store/query-timeout.ts withQueryTimeout), so a stalled database
  // answers a proof 503 instead of holding it; the log's own pool otherwise.

  /** RFC 6962 root at any size the log has reached. */
  async rootAt(size: number, db?: Pool | PoolClient): Promise<Buffer> {
    return rootFromNodes(size, await this.tiles.nodeGetter(rootNodes(size), db));
  }

  /**
   * The roots the database's tiles give at `sizes` now, read in one query and none taken from
   * the proofs' cache: what a signing holds the head and the checkpoint it is pinned to
   * (checkpointer.ts). The cache keeps what this process saw, which a database that went back
   * under it (a failover to a replica without the newest commits) no longer holds; read from
   * it, a checkpoint this process signed before would look as if the database still extended it.
   */
  async storedRootsAt(sizes: readonly number[], client: PoolClient): Promise<Buffer[]> {
    const getNode = await new TileReader(client).nodeGetter(sizes.flatMap((size) => rootNodes(size)));
    return sizes.map((size) => rootFromNodes(size, getNode));
  }

  async inclusionProof(index: number, size: number, db?: Pool | PoolClient): Promise<Buffer[]> {
    const plan = inclusionProofPlan(index, size);
    return executePlan(plan, await this.tiles.nodeGetter(planNodes(plan), db));
  }

  async consistencyProof(oldSize: number, newSize: number, db?: Pool | PoolClient): Promise<Buffer[]> {
    const plan = consistencyProofPlan(oldSize, newSize);
    return executePlan(plan, await this.tiles.nodeGetter(planNodes(plan), db));
  }
}

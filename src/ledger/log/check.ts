/**
 * The start-up check: a log refuses to run on a state it cannot prove. Before a server
 * takes writes (and before it adopts a new key) it checks that
 * - the events are exactly 0..size-1 (no gap, nothing beyond the head),
 * - the level-0 tiles cover exactly `size` leaves, and no tile at any level holds a hash
 *   beyond the tree of that size (a stray the writers would never overwrite),
 * - the key chain holds: the first recorded key (one of `trustedKeys`, when given) and
 *   each later key announced at its first size by a checkpoint that the key before it and
 *   the new key both signed,
 * - every checkpoint row is signed by the key valid at its size, records the root its note
 *   signs, agrees with every other row of its size, and its root is the root of the
 *   entries at its size (so each is consistent with every earlier one: no fork),
 * - every event hashes to its stored leaf and every stored tile hash to the tiles below
 *   (one full pass: a changed event, tile hash or order is found here),
 * - the head's root is the root of the tiles.
 * Each failure says which of these broke (LogCheckError.check) and where.
 */
import {
  formatKeyId, openCheckpoint, parseVerifierKey, rootFromNodes, rootNodes, tileHeight, tilePath, tileWidth, type Checkpoint, type Ed25519NoteVerifier, type OpenedCheckpoint,
} from '../../tlog/index.ts';
import { auditStoredLog, type AuditOptions, type RootSource } from './audit.ts';
import { keyRotationExtension } from './keys.ts';
import { inTransaction, isPool, type Pool, type PoolClient } from '../../store/pool.ts';
import {
  eventSeqExtent, firstCheckpointAbove, levelZeroLeafCount, listAnnouncementCheckpoints, listCheckpointsBetween, listCheckpointsToCheck, listLogKeys, readHead, tilesBeyondTree, type CheckpointRow, type LogKeyRow,
} from '../../store/tlog-tables.ts';
import type { TransparencyLog } from './transparency-log.ts';

export class LogCheckError extends Error {
  constructor(readonly check: string, message: string) {
    super(`transparency log check "${check}" failed: ${message}`);
    this.name = 'LogCheckError';
  }
}

/**
 * Runs the check on one snapshot of the database: another server may be writing while this
 * one starts (several share a database), and reads taken at different moments disagree (a
 * head of N beside N + k events, a tile widened past it, a checkpoint signed after it). So
 * every read is on one connection in one REPEATABLE READ, READ ONLY transaction; what was
 * committed after it began is the next writer's business, not this check's. The audit then
 * reads its chunks in turn (no prefetch on a single connection), and the checkpoints of each
 * chunk's sizes between them. Given a client instead of a pool, the check reads in whatever
 * transaction that client is in. `audit` is for tests (several chunks over a small log, the
 * worker thread on a small one).
 */
export async function checkLogOnStart(
  db: Pool | PoolClient, log: TransparencyLog, trustedKeys: readonly string[] = [], checkpoints: CheckpointScope = 'all', audit: CheckAuditOptions = {},
): Promise<{ size: number; checkpoints: number }> {
  // A client is already in the transaction its caller chose (a test's view of a tampered state).
  if (!isPool(db)) return checkSnapshot(db, log, trustedKeys, checkpoints, audit);
  return inTransaction(db, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', (client) => checkSnapshot(client, log, trustedKeys, checkpoints, audit));
}

export type CheckAuditOptions = Pick<AuditOptions, 'tilesPerChunk' | 'workerFromEntries'>;

/**
 * Which stored checkpoints the check re-verifies (signatures, key, root column, size, one root
 * per size, consistency with the tree): all of them (`chipledger check`), or, at a server's
 * start, the newest ones by size, in signing order and among those cosigned, and every key's
 * announcement (tlog-tables.ts listCheckpointsToCheck). Every checkpoint is kept, one a second
 * while events come, and a start that re-verified them all grew by 0.19 ms and 1-1.7 KB each
 * without bound; the older ones are `chipledger check`'s to re-verify.
 */
export type CheckpointScope = 'all' | { newest: number };

async function checkSnapshot(db: PoolClient, log: TransparencyLog, trustedKeys: readonly string[], scope: CheckpointScope, options: CheckAuditOptions): Promise<{ size: number; checkpoints: number }> {
  const head = await readHead(db);
  const events = await eventSeqExtent(db);
  if (events.n !== head.size || (head.size > 0 && (events.min !== 0 || events.max !== head.size - 1))) {
    throw new LogCheckError('events', `the head says ${head.size} events, the table holds ${events.n} (seq ${events.min ?? '-'}..${events.max ?? '-'})`);
  }
  await checkTileExtent(db, head.size);
  const chain = keyChain(await listLogKeys(db), trustedKeys);
  // The checkpoints are opened as the audit reaches their sizes, a chunk at a time: all of
  // them at once (`chipledger check`) outgrow the heap. A start's few are read at once.
  const rows: CheckpointRowsBySize = scope === 'all' ? storedCheckpointRows(db) : checkpointRowsInMemory(await listCheckpointsToCheck(db, scope.newest));
  const checkpoints = new CheckedCheckpoints(rows, chain, head.size);
  // One pass over every entry and stored hash: a changed event, tile hash, reordering or
  // a checkpoint that disagrees with the log (a fork) stops the start here.
  // The tiles it proves are kept for proofs (as many as the tile cache holds): a proof then
  // needs no tile read from PostgreSQL, which is most of a cold proof's time.
  const audit = await auditStoredLog(db, head.size, checkpoints, { ...options, keepTilesMax: log.tiles.entriesMax });
  if (audit.failure) {
    throw new LogCheckError(audit.failure.kind === 'checkpoint' ? 'checkpoint-consistency' : audit.failure.kind, audit.failure.message);
  }
  checkpoints.assertAllAsked();
  // After the audit, so that a checkpoint's own fault is named first as it always was (the
  // rows of a size are opened in signing order as the audit reaches them).
  checkAnnouncements(chain, await listAnnouncementCheckpoints(db), head.size);
  // The audit proved the tiles; the head must name their root. The tiles proven are taken
  // first, and anything else read comes through the same snapshot: a read through the pool
  // could meet a tile that grew since, and its copy would replace the proven one.
  log.tiles.adopt(audit.verifiedTiles);
  const leaf = head.size === 0 ? [] : [{ level: 0, index: head.size - 1 }];
  const getNode = await log.tiles.nodeGetter([...rootNodes(head.size), ...leaf], db);
  const root = rootFromNodes(head.size, getNode);
  if (!root.equals(head.root)) throw new LogCheckError('root', `tiles give root ${root.toString('hex')} at size ${head.size}, the head records ${head.root.toString('hex')}`);
  // What the log's reload holds the database to from now on (transparency-log.ts known).
  if (head.size > 0) log.knowCommitted(head.size, getNode(0, head.size - 1));
  return { size: head.size, checkpoints: checkpoints.count };
}

/**
 * Level-0 tiles must cover exactly `size` leaves, and no tile row at any level may reach
 * past the hashes the tree has there: the audit compares only the hashes the tree has, and
 * the writers never overwrite a row wider than what they write, so a stray would be served.
 */
async function checkTileExtent(db: PoolClient, size: number): Promise<void> {
  const leaves = await levelZeroLeafCount(db);
  if (leaves !== size) throw new LogCheckError('tiles', `level-0 tiles hold ${leaves} leaf hashes but the log has ${size} events`);
  const [stray] = await tilesBeyondTree(db, size, 1);
  if (stray) {
    const hashesAtLevel = Math.floor(size / 2 ** (tileHeight * stray.level));
    throw new LogCheckError('tiles', `${tilePath(stray.level, stray.index, stray.width)} holds hashes up to ${stray.index * tileWidth + stray.width}, but the tree of size ${size} has ${hashesAtLevel} at level ${stray.level}`);
  }
}

interface ChainKey {
  row: LogKeyRow;
  verifier: Ed25519NoteVerifier;
  /** The sizes this key may sign: from its first size to the next key's first size. */
  firstSize: number;
  lastSize: number;
}

/** The recorded keys as a chain: well-formed, one origin, each after the first announced. */
function keyChain(rows: readonly LogKeyRow[], trustedKeys: readonly string[]): ChainKey[] {
  const chain = rows.map((row, at) => {
    let verifier: Ed25519NoteVerifier;
    try {
      verifier = parseVerifierKey(row.verifier_key);
    } catch (error) {
      throw new LogCheckError('key-chain', `log key ${row.key_id} is not a verifier key: ${(error as Error).message}`);
    }
    if (formatKeyId(verifier.keyId) !== row.key_id) throw new LogCheckError('key-chain', `log key ${row.verifier_key} is recorded under key id ${row.key_id}`);
    const next = rows[at + 1];
    return { row, verifier, firstSize: row.first_size, lastSize: next ? next.first_size : Number.MAX_SAFE_INTEGER };
  });
  const [first] = chain;
  if (first && trustedKeys.length > 0 && !trustedKeys.includes(first.row.verifier_key)) {
    throw new LogCheckError('key-chain', `the log's first key is ${first.row.verifier_key}, not one of the trusted keys`);
  }
  chain.forEach((key, at) => {
    if (key.verifier.name !== first!.verifier.name) throw new LogCheckError('key-chain', `log key ${key.row.verifier_key} is for origin ${key.verifier.name}, not ${first!.verifier.name}`);
    if (at === 0 && key.row.announced_size !== null) throw new LogCheckError('key-chain', `the log's first key ${key.row.verifier_key} claims an announcement at size ${key.row.announced_size}, but no key came before it`);
    if (at > 0 && key.row.announced_size !== key.row.first_size) {
      throw new LogCheckError('key-chain', `log key ${key.row.verifier_key} (from size ${key.row.first_size}) was never announced by the key before it (announced size ${key.row.announced_size ?? 'none'})`);
    }
  });
  return chain;
}

interface OpenedRow {
  checkpoint: Checkpoint;
  /** Chain positions of the log keys whose signatures on the note verified. */
  signedBy: Set<number>;
}

/**
 * One checkpoint row: signed by the key valid at its size (and every other log key's line
 * on it verifies), its root column is the root it signs, and one root per size.
 */
function openCheckpointRow(row: CheckpointRow, chain: readonly ChainKey[], headSize: number, roots: Map<number, Buffer>): OpenedRow {
  const at = chain.findIndex((key) => key.row.key_id === row.key_id);
  const key = chain[at];
  if (!key) throw new LogCheckError('checkpoint-signature', `checkpoint ${row.size} names key id ${row.key_id}, which is not a log key`);
  if (row.size < key.firstSize || row.size > key.lastSize) {
    throw new LogCheckError('key-chain', `checkpoint ${row.size} is by ${key.row.verifier_key}, which signs sizes ${key.firstSize} to ${key.lastSize === Number.MAX_SAFE_INTEGER ? 'now' : key.lastSize} only`);
  }
  let opened: OpenedCheckpoint;
  try {
    opened = openCheckpoint(row.signed_note, key.verifier, chain.filter((other) => other !== key).map((other) => other.verifier));
  } catch (error) {
    throw new LogCheckError('checkpoint-signature', `checkpoint ${row.size}: ${(error as Error).message}`);
  }
  const { size, rootHash } = opened.checkpoint;
  if (size !== row.size || size > headSize) throw new LogCheckError('checkpoint-size', `checkpoint row ${row.size} signs size ${size}; the log has ${headSize}`);
  if (!rootHash.equals(row.root)) {
    throw new LogCheckError('checkpoint-consistency', `checkpoint ${size} by ${row.key_id} signs root ${rootHash.toString('hex')} but records ${row.root.toString('hex')}`);
  }
  const earlier = roots.get(size);
  if (earlier && !earlier.equals(rootHash)) {
    throw new LogCheckError('checkpoint-consistency', `two checkpoints of size ${size} sign different roots, ${earlier.toString('hex')} and ${rootHash.toString('hex')} (a fork)`);
  }
  roots.set(size, rootHash);
  const signedBy = new Set(chain.flatMap((candidate, position) => (opened.note.verified.some((line) => line.name === candidate.verifier.name && line.keyId === candidate.verifier.keyId) ? [position] : [])));
  return { checkpoint: opened.checkpoint, signedBy };
}

/**
 * The checkpoint rows of a range of sizes, in order of size, then signing (created_at),
 * asked in increasing, adjacent ranges: read from the snapshot a range at a time, or from a
 * start's few rows in memory.
 */
interface CheckpointRowsBySize {
  between(fromSize: number, toSize: number): Promise<readonly CheckpointRow[]>;
  /** Rows above the log's size: the first is enough, since any one fails the check. */
  above(size: number): Promise<readonly CheckpointRow[]>;
}

function storedCheckpointRows(db: PoolClient): CheckpointRowsBySize {
  return {
    between: (fromSize, toSize) => listCheckpointsBetween(db, fromSize, toSize),
    above: async (size) => {
      const row = await firstCheckpointAbove(db, size);
      return row ? [row] : [];
    },
  };
}

/** `rows` in order of size, then signing, handed out range by range. */
function checkpointRowsInMemory(rows: readonly CheckpointRow[]): CheckpointRowsBySize {
  let next = 0;
  const upTo = (last: number) => {
    const from = next;
    while (next < rows.length && rows[next]!.size <= last) next += 1;
    return rows.slice(from, next);
  };
  return {
    between: async (_fromSize, toSize) => upTo(toSize),
    above: async () => upTo(Number.MAX_SAFE_INTEGER),
  };
}

/**
 * The audit's source of roots: each checkpoint row of the sizes asked is opened and checked
 * (openCheckpointRow, its rotation line) and counted, and only its root kept, for as long as
 * the audit needs it. A range skipped would leave its checkpoints unchecked: the ranges must
 * follow one another from size 0, and the check asserts they reached past the head.
 */
class CheckedCheckpoints implements RootSource {
  count = 0;
  private askedThrough = -1;
  private askedAbove = false;

  constructor(private readonly rows: CheckpointRowsBySize, private readonly chain: readonly ChainKey[], private readonly headSize: number) {}

  async between(fromSize: number, toSize: number): Promise<Map<number, Buffer>> {
    if (fromSize !== this.askedThrough + 1 || toSize < fromSize || toSize > this.headSize) {
      throw new Error(`assertion failed: checkpoints asked for sizes ${fromSize} to ${toSize}, after ${this.askedThrough}, of a log of ${this.headSize}`);
    }
    this.askedThrough = toSize;
    return this.open(await this.rows.between(fromSize, toSize));
  }

  async above(size: number): Promise<Map<number, Buffer>> {
    if (size !== this.headSize || this.askedThrough !== size) throw new Error(`assertion failed: checkpoints asked above ${size} after sizes to ${this.askedThrough}, of a log of ${this.headSize}`);
    this.askedAbove = true;
    return this.open(await this.rows.above(size));
  }

  /** After an audit that passed: every size was asked, and above the head. */
  assertAllAsked(): void {
    if (this.askedThrough !== this.headSize || !this.askedAbove) throw new Error(`assertion failed: the audit asked for checkpoints to size ${this.askedThrough} of ${this.headSize} (above: ${this.askedAbove})`);
  }

  /** Rows of one size all come in one range, so one root per size is checked within it. */
  private open(rows: readonly CheckpointRow[]): Map<number, Buffer> {
    const roots = new Map<number, Buffer>();
    for (const row of rows) {
      const { checkpoint } = openCheckpointRow(row, this.chain, this.headSize, roots);
      checkRotationLine(this.chain, row, checkpoint);
      this.count += 1;
    }
    return roots;
  }
}

/** No checkpoint but a key's announcement carries a rotation line. */
function checkRotationLine(chain: readonly ChainKey[], row: CheckpointRow, checkpoint: Checkpoint): void {
  const rotation = checkpoint.extensions.filter((line) => line.startsWith(`${keyRotationExtension} `));
  const announces = chain.findIndex((key, at) => at > 0 && key.row.key_id === row.key_id && key.row.announced_size === row.size);
  if (rotation.length > 0 && announces < 0) throw new LogCheckError('key-chain', `checkpoint ${row.size} by ${row.key_id} announces a key, but it is no key's announcement`);
}

/**
 * Each key after the first was announced at its first size by a checkpoint of its own row
 * that the key before it and it both signed, naming it in the rotation line. `announcements`
 * are the rows at each key's announced size (listAnnouncementCheckpoints); the rotation lines
 * of all the others are checked as the audit reaches them (checkRotationLine).
 */
function checkAnnouncements(chain: readonly ChainKey[], announcements: readonly CheckpointRow[], headSize: number): void {
  chain.forEach((key, at) => {
    if (at === 0) return;
    const row = announcements.find((candidate) => candidate.key_id === key.row.key_id && candidate.size === key.row.announced_size);
    if (!row) throw new LogCheckError('key-chain', `log key ${key.row.verifier_key} has no announcement checkpoint at size ${key.row.announced_size}`);
    const { checkpoint, signedBy } = openCheckpointRow(row, chain, headSize, new Map());
    if (!signedBy.has(at - 1) || !signedBy.has(at)) {
      throw new LogCheckError('key-chain', `the announcement of ${key.row.verifier_key} at size ${checkpoint.size} is not signed by both it and the key before it, ${chain[at - 1]!.row.verifier_key}`);
    }
    const expected = `${keyRotationExtension} ${key.row.verifier_key}`;
    if (checkpoint.extensions.length !== 1 || checkpoint.extensions[0] !== expected) {
      throw new LogCheckError('key-chain', `the announcement at size ${checkpoint.size} does not name ${key.row.verifier_key} in its rotation line`);
    }
  });
}

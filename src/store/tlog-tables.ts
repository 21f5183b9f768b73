/**
 * The transparency log's storage surface.
 *
 * Rules of this surface:
 * - Tiles are written inside the ledger batch's transaction (store/batch-writes.ts):
 *   tiles and events commit together or not at all.
 * - A tile row only grows: a partial tile is rewritten with more hashes until it is full
 *   (256), then never again. Every width served is a prefix of what is stored.
 * - Checkpoints are append-only; ON CONFLICT DO NOTHING makes two processes signing the
 *   same size with the same key harmless (the first one stands). A size may hold one
 *   checkpoint per key (rotation); a trigger refuses two roots for one size (a fork).
 * - Signing a checkpoint and adopting a key happen inside inLogSigningTransaction, which
 *   serializes them across processes: a signer re-reads the current key there, so once a
 *   rotation commits, the retired key cannot sign again (not even in another process).
 * - A cosignature belongs to one checkpoint row (size, key id), since one size may hold
 *   two checkpoint texts after a rotation and a cosignature is over one text.
 * - The reads for callers outside the ledger (the published-checkpoint guard, the demo load:
 *   logTablesPresent, logHeadSize, newestCheckpointFrom) are one statement each, so each
 *   reads one snapshot even outside a transaction; none writes.
 */
import { limits } from '../core/limits.ts';
import { advisoryLockHolders, type LockHolder } from './advisory-locks.ts';
import { copyOut, readValuesOfOneColumn } from './copy-binary.ts';
import { unpackEntries, type PackedEntries } from './packed-entries.ts';
import { inTransaction, isPool, prepared, waitBoundsSql, type Pool, type PoolClient } from './pool.ts';
import type { StoredHead } from './head-lock.ts';

type Queryable = Pool | PoolClient;

export interface TileRow {
  level: number;
  index: number;
  width: number;
  hashes: Buffer;
}

export async function readTiles(db: Queryable, tiles: Array<{ level: number; index: number }>): Promise<TileRow[]> {
  if (tiles.length === 0) return [];
  // One tile is the common case (a proof whose leaf tile is not cached yet): a prepared
  // primary-key lookup, planned once per connection.
  if (tiles.length === 1) {
    const [tile] = tiles;
    return (await db.query<TileRow>(prepared('SELECT level, index, width, hashes FROM tlog_tiles WHERE level = $1 AND index = $2', [tile!.level, tile!.index]))).rows;
  }
  const result = await db.query<TileRow>(
    `SELECT t.level, t.index, t.width, t.hashes FROM tlog_tiles t
     JOIN unnest($1::smallint[], $2::bigint[]) AS want(level, index) ON t.level = want.level AND t.index = want.index`,
    [tiles.map((tile) => tile.level), tiles.map((tile) => tile.index)],
  );
  return result.rows;
}

/** Every tile of one level in index order, for audits (a cursor would be kinder past 10^8 leaves). */
export async function readTileRange(db: Queryable, level: number, fromIndex: number, count: number): Promise<TileRow[]> {
  const result = await db.query<TileRow>('SELECT level, index, width, hashes FROM tlog_tiles WHERE level = $1 AND index >= $2 ORDER BY index LIMIT $3', [level, fromIndex, count]);
  return result.rows;
}

/** Any constant: the key of the transaction lock that checkpoint signing and key rotation hold. */
export const logSigningLockKey = 7_201_964_016;

/** The sessions that hold the log signing lock now, to name them when a wait for it runs out. */
export function logSigningLockHolders(db: Queryable): Promise<LockHolder[]> {
  return advisoryLockHolders(db, logSigningLockKey);
}

/**
 * Runs `work` in a transaction that holds the log signing lock (one at a time across every
 * process). A crash anywhere inside rolls all of it back: no checkpoint or key half written.
 * READ COMMITTED whatever the session's default isolation: `work` must read the head, the
 * checkpoints and the keys as the signer before it committed them, and under repeatable read
 * the snapshot would be taken by the settings below, before the lock (a signer that waited
 * would then sign a head it no longer has, or use a key rotated away meanwhile).
 *
 * `waitMs` bounds the wait for the lock and each statement (the checkpointer's signing, a
 * start adopting its key); without it (a test holding the lock) they are not bounded. The
 * time the holder sits idle in it is always bounded, by the smaller of `waitMs` and
 * `idleMs`: a process stopped or cut off while it holds the lock would otherwise keep every
 * other signer out until TCP gives up on it, hours later.
 */
export function inLogSigningTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>, waitMs?: number, idleMs: number = limits.logSigningIdleMsMax): Promise<T> {
  return inTransaction(pool, 'BEGIN ISOLATION LEVEL READ COMMITTED', async (client) => {
    // A checkpoint is published once it commits: it must not be seen before it is on this
    // server's disk (a crash would lose it after a witness saw it). Raised to 'local' only
    // where it is off; a stronger setting (a synchronous standby) is the operator's and stays.
    const settings = ["SELECT set_config('synchronous_commit', 'local', true) WHERE current_setting('synchronous_commit') = 'off'"];
    if (waitMs !== undefined) settings.push(waitBoundsSql(waitMs, 'locks and statements'));
    settings.push(`SET LOCAL idle_in_transaction_session_timeout = ${Math.max(1, Math.trunc(Math.min(waitMs ?? idleMs, idleMs)))}`);
    await client.query(settings.join('; '));
    await client.query('SELECT pg_advisory_xact_lock($1)', [logSigningLockKey]);
    return work(client);
  });
}

/**
 * Tile rows holding hashes the tree of `size` does not have: at level L the tree has
 * floor(size / 256^L) hashes, so a row with index * 256 + width beyond that (or any row at a
 * level above the tree) is a stray. At most `rowsMax`, lowest level first.
 */
export async function tilesBeyondTree(db: Queryable, size: number, rowsMax: number): Promise<Array<{ level: number; index: number; width: number }>> {
  const result = await db.query<{ level: number; index: number; width: number }>(
    `SELECT level, index, width FROM tlog_tiles
     WHERE index * 256 + width > div($1::numeric, power(256::numeric, level))
     ORDER BY level, index LIMIT $2`,
    [size, rowsMax],
  );
  return result.rows;
}

/**
 * The leaves the level-0 tiles hold: the end of the widest reach (index * 256 + width) of any
 * level-0 row, 0 when there is none. Not a count of rows: a gap below the widest row is the
 * audit's to find.
 */
export async function levelZeroLeafCount(db: Queryable): Promise<number> {
  return (await db.query<{ leaves: number | null }>('SELECT max(index * 256 + width) AS leaves FROM tlog_tiles WHERE level = 0')).rows[0]!.leaves ?? 0;
}

/** How many events the table holds, and their lowest and highest seq (null when it holds none). */
export interface EventSeqExtent {
  n: number;
  max: number | null;
  min: number | null;
}

/** The events table's count and seq range, in one statement (one snapshot of it). */
export async function eventSeqExtent(db: Queryable): Promise<EventSeqExtent> {
  return (await db.query<EventSeqExtent>('SELECT count(*)::bigint AS n, max(seq) AS max, min(seq) AS min FROM events')).rows[0]!;
}

/** The log's head with its seal (migration 060). */
export async function readHead(db: Queryable): Promise<StoredHead> {
  const result = await db.query<StoredHead>('SELECT size, root, seal FROM log_head WHERE id = 1');
  return result.rows[0]!;
}

/**
 * The log's head, locked as a batch locks it (store/head-lock.ts) until the transaction ends:
 * no batch moves it, nor commits at it, meanwhile. The transaction may then sit idle no
 * longer than a batch may (limits.headLockIdleMsMax): one frozen here stops every batch.
 */
export async function lockHead(client: PoolClient): Promise<StoredHead> {
  const results = (await client.query(`SET LOCAL idle_in_transaction_session_timeout = ${limits.headLockIdleMsMax}; SELECT size, root, seal FROM log_head WHERE id = 1 FOR UPDATE`)) as unknown as Array<{ rows: StoredHead[] }>;
  return results[1]!.rows[0]!;
}

/** Seals the head that the caller locked (lockHead). */
export async function sealHead(client: PoolClient, seal: Buffer): Promise<void> {
  await client.query('UPDATE log_head SET seal = $1 WHERE id = 1', [seal]);
}

/**
 * Which of the log's tables exist: log_head (the head) and tlog_keys (the keys). Both are
 * false on a database never migrated, whose log is empty; reads nothing else.
 */
export async function logTablesPresent(db: Queryable): Promise<{ head: boolean; keys: boolean }> {
  return (await db.query<{ head: boolean; keys: boolean }>("SELECT to_regclass('log_head') IS NOT NULL AS head, to_regclass('tlog_keys') IS NOT NULL AS keys")).rows[0]!;
}

/** The log's size (events in it) as log_head records it; needs a migrated database. */
export async function logHeadSize(db: Queryable): Promise<number> {
  return Number((await db.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
}

/** Canonical bytes of events [from, to), in order: the log's entries. */
export async function readEntries(db: Queryable, from: number, to: number): Promise<Buffer[]> {
  return unpackEntries(await readEntriesPacked(db, from, to));
}

/** The newest checkpoint's size and age (by the database's clock), the committed head's size and the log's key. */
export interface SigningState {
  headSize: number;
  /** The newest checkpoint: its size, root, and age by the database's clock. */
  newest: { size: number; root: Buffer; ageMs: number } | undefined;
  /** The log's current key (currentLogKey), undefined before the log first signed. */
  logKey: string | undefined;
}

/**
 * The log's newest checkpoint, whole: the largest size, and at one size (a rotation's
 * announcement beside the retiring key's checkpoint) the one whose key was written last
 * (tlog_keys.written_order, drawn in the rotation's lock order), then the later created_at.
 * By created_at alone, a database clock stepped back between the two rows (NTP, a failover
 * to a standby whose clock lags) served the retired key's checkpoint as the newest while
 * /v1/log/key named the new one. The size through the primary key, the few rows of that size
 * sorted.
 */
export const newestCheckpointSql = `SELECT c.* FROM tlog_checkpoints c LEFT JOIN tlog_keys k ON k.key_id = c.key_id
  WHERE c.size = (SELECT max(size) FROM tlog_checkpoints) ORDER BY k.written_order DESC NULLS LAST, c.created_at DESC LIMIT 1`;

/**
 * What a signer's turn needs, in one round trip, waiting at most `waitMs` for a lock and the
 * statement: the head's size, the newest checkpoint's size and age by the database's
 * clock (which every process shares; undefined before the first), and the log's current key.
 * The newest as newestCheckpointSql finds it: max(created_at) scanned the whole table, which
 * grows by about a row a second.
 */
export async function signingState(pool: Pool, waitMs: number): Promise<SigningState> {
  // One statement, one snapshot: READ COMMITTED is enough, whatever the session's default
  // isolation (a serializable one would take predicate locks for nothing).
  const results = (await pool.query(`BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY; ${waitBoundsSql(waitMs, 'locks and statements')};
    SELECT (SELECT size FROM log_head WHERE id = 1) AS head_size, c.size, c.root, (extract(epoch FROM clock_timestamp() - c.created_at) * 1000)::float8 AS age_ms,
           (SELECT verifier_key FROM (${currentLogKeySql}) k) AS log_key
    FROM (SELECT 1) one LEFT JOIN (${newestCheckpointSql}) c ON true;
    COMMIT`)) as unknown as Array<{ rows: Array<{ head_size: number; size: number | null; root: Buffer | null; age_ms: number | null; log_key: string | null }> }>;
  const row = results.at(-2)!.rows[0]!;
  return { headSize: Number(row.head_size), newest: row.size === null ? undefined : { size: Number(row.size), root: row.root!, ageMs: row.age_ms! }, logKey: row.log_key ?? undefined };
}

/**
 * By COPY in the binary format: exact bytes, with no hex on the way (a SELECT would send
 * each event as hex text, since node-postgres decodes binary fields as UTF-8 and would
 * change bytes that are not valid UTF-8, such as a tampered event's). COPY takes no
 * parameters: the bounds are checked integers.
 */
export async function readEntriesPacked(db: Queryable, from: number, to: number): Promise<PackedEntries> {
  if (to <= from) return { bytes: Buffer.alloc(0), count: 0 };
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) throw new Error(`assertion failed: entries ${from}..${to} are not safe integers`);
  const statement = `COPY (SELECT canonical FROM events WHERE seq >= ${from} AND seq < ${to} ORDER BY seq) TO STDOUT (FORMAT binary)`;
  const client = isPool(db) ? await db.connect() : db;
  try {
    return readValuesOfOneColumn(await copyOut(client, statement));
  } finally {
    if (client !== db) (client as PoolClient).release();
  }
}

export interface CheckpointRow {
  size: number;
  root: Buffer;
  key_id: string;
  signed_note: string;
  created_at: string;
}

export async function latestCheckpoint(db: Queryable): Promise<CheckpointRow | undefined> {
  const result = await db.query<CheckpointRow>(newestCheckpointSql);
  return result.rows[0];
}

/** A checkpoint row as a look reads it, with the log's size, in one snapshot. */
export interface NewestCheckpoint {
  headSize: number;
  checkpoint: { size: number; root: Buffer; signed_note: string } | undefined;
}

/**
 * The log's size and its newest checkpoint of at least `sizeMin` (none when there is none):
 * one statement, each part by its primary key, so a look that finds nothing new is an index
 * probe that returns no checkpoint. Needs a migrated database (log_head's one row).
 */
export async function newestCheckpointFrom(db: Queryable, sizeMin: number): Promise<NewestCheckpoint> {
  const row = (await db.query<{ head_size: number; size: number | null; root: Buffer | null; signed_note: string | null }>(`SELECT h.size AS head_size, c.size, c.root, c.signed_note
    FROM log_head h LEFT JOIN LATERAL (SELECT size, root, signed_note FROM tlog_checkpoints WHERE size >= $1 ORDER BY size DESC, key_id DESC LIMIT 1) c ON true
    WHERE h.id = 1`, [sizeMin])).rows[0]!;
  const checkpoint = row.size === null ? undefined : { size: row.size, root: row.root!, signed_note: row.signed_note! };
  return { headSize: row.head_size, checkpoint };
}

/**
 * The checkpoints of sizes fromSize to toSize (both included), in order of size, then signing
 * (created_at), by the primary key (size, key_id). `chipledger check` reads every checkpoint
 * this way, a chunk of the audit at a time: all of them in one result (a row a second,
 * 1-1.7 KB each) outgrow the heap within a month.
 */
export async function listCheckpointsBetween(db: Queryable, fromSize: number, toSize: number): Promise<CheckpointRow[]> {
  return (await db.query<CheckpointRow>('SELECT * FROM tlog_checkpoints WHERE size >= $1 AND size <= $2 ORDER BY size, created_at', [fromSize, toSize])).rows;
}

/** The checkpoint of the smallest size above `size` (the first of its size to be signed), if any. */
export async function firstCheckpointAbove(db: Queryable, size: number): Promise<CheckpointRow | undefined> {
  return (await db.query<CheckpointRow>('SELECT * FROM tlog_checkpoints WHERE size > $1 ORDER BY size, created_at LIMIT 1', [size])).rows[0];
}

/** Each key's announcement checkpoint (tlog_keys.announced_size, signed by the key it names), by size. */
export async function listAnnouncementCheckpoints(db: Queryable): Promise<CheckpointRow[]> {
  return (await db.query<CheckpointRow>(`SELECT c.* FROM tlog_checkpoints c JOIN tlog_keys k ON k.key_id = c.key_id AND k.announced_size = c.size
    ORDER BY c.size, c.created_at`)).rows;
}

/**
 * The announcement checkpoints' notes (each key's row at tlog_keys.announced_size, signed by
 * the key it names), in no set order: a key without an announcement (the first) has none here.
 */
export async function listAnnouncementNotes(db: Queryable): Promise<Array<{ size: number; key_id: string; signed_note: string }>> {
  return (await db.query<{ size: number; key_id: string; signed_note: string }>(
    'SELECT size, key_id, signed_note FROM tlog_checkpoints WHERE (size, key_id) IN (SELECT announced_size, key_id FROM tlog_keys WHERE announced_size IS NOT NULL)',
  )).rows;
}

/**
 * The checkpoints the start-up check re-verifies, in order of size, then signing (created_at):
 * the newest `newest` by size (what is served and recorded: latestCheckpoint orders by size, and a clock
 * stepped back must not hide them), the newest `newest` in signing order (created_at,
 * migration 046's index: a row added at an old size), the newest `newest` that witnesses
 * cosigned (what `?cosignatures=N` serves), and every key's announcement. One IN over a
 * UNION, each part read by an index: an OR of INs made PostgreSQL scan every checkpoint
 * (800 ms a million; the review of session 18's changes).
 */
export async function listCheckpointsToCheck(db: Queryable, newest: number): Promise<CheckpointRow[]> {
  return (await db.query<CheckpointRow>(`SELECT * FROM tlog_checkpoints
    WHERE (size, key_id) IN (
      (SELECT size, key_id FROM tlog_checkpoints ORDER BY size DESC, key_id DESC LIMIT $1)
      UNION (SELECT size, key_id FROM tlog_checkpoints ORDER BY created_at DESC LIMIT $1)
      UNION (SELECT DISTINCT checkpoint_size, checkpoint_key_id FROM tlog_cosignatures ORDER BY checkpoint_size DESC, checkpoint_key_id DESC LIMIT $1)
      UNION SELECT announced_size, key_id FROM tlog_keys WHERE announced_size IS NOT NULL)
    ORDER BY size, created_at`, [newest])).rows;
}

export async function insertCheckpoint(db: Queryable, row: Omit<CheckpointRow, 'created_at'>): Promise<boolean> {
  const result = await db.query('INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES ($1, $2, $3, $4) ON CONFLICT (size, key_id) DO NOTHING', [row.size, row.root, row.key_id, row.signed_note]);
  return (result.rowCount ?? 0) > 0;
}

/** Every checkpoint row of one size (one per key that signed it: two after a rotation), key and note only, in no set order. */
export async function checkpointNotesOfSize(db: Queryable, size: number): Promise<Array<{ key_id: string; signed_note: string }>> {
  return (await db.query<{ key_id: string; signed_note: string }>('SELECT key_id, signed_note FROM tlog_checkpoints WHERE size = $1', [size])).rows;
}

export interface CosignatureRow {
  checkpoint_size: number;
  /** With checkpoint_size, the checkpoint row (and so the text) this cosignature is over. */
  checkpoint_key_id: string;
  witness: string;
  key_id: string;
  timestamp_s: number;
  signature_line: string;
}

export async function insertCosignature(db: Queryable, row: CosignatureRow): Promise<void> {
  await db.query(
    `INSERT INTO tlog_cosignatures (checkpoint_size, checkpoint_key_id, witness, key_id, timestamp_s, signature_line) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (checkpoint_size, checkpoint_key_id, witness, key_id) DO UPDATE SET timestamp_s = EXCLUDED.timestamp_s, signature_line = EXCLUDED.signature_line
       WHERE tlog_cosignatures.timestamp_s < EXCLUDED.timestamp_s`,
    [row.checkpoint_size, row.checkpoint_key_id, row.witness, row.key_id, row.timestamp_s, row.signature_line],
  );
}

/** The cosignatures over one checkpoint row (its size and the key id that signed it). */
export async function cosignaturesFor(db: Queryable, checkpoint: { size: number; key_id: string }): Promise<CosignatureRow[]> {
  return (await db.query<CosignatureRow>(
    'SELECT * FROM tlog_cosignatures WHERE checkpoint_size = $1 AND checkpoint_key_id = $2 ORDER BY witness, key_id',
    [checkpoint.size, checkpoint.key_id],
  )).rows;
}

/**
 * The checkpoints, newest first and at most limits.cosignedCandidatesMax of them, of sizes above
 * `seq` (so covering that event), signed by the key `checkpointKeyId`, that at least
 * `witnessesMin` of `witnesses` cosigned by the stored rows, each witness counted once by
 * name. Only the stored rows are counted: the caller verifies each line again.
 */
export async function listCosignedCandidates(
  db: Queryable, seq: number, witnessesMin: number, checkpointKeyId: string, witnesses: ReadonlyArray<{ name: string; keyId: string }>,
): Promise<CheckpointRow[]> {
  // From the cosignatures, not the checkpoints: a log signs a checkpoint a second, and a
  // scan of them all for a quorum no witness met would read them all (seconds at a million).
  // Only configured witnesses count, in SQL too: lines of one no longer configured must not
  // fill the candidates and hide an older checkpoint that has the quorum.
  return (await db.query<CheckpointRow>(
    `SELECT c.* FROM (
       SELECT checkpoint_size, checkpoint_key_id FROM tlog_cosignatures
       WHERE checkpoint_size > $1 AND checkpoint_key_id = $3 AND (witness, key_id) IN (SELECT * FROM unnest($4::text[], $5::text[]))
       GROUP BY checkpoint_size, checkpoint_key_id HAVING count(DISTINCT witness) >= $2
       ORDER BY checkpoint_size DESC LIMIT ${limits.cosignedCandidatesMax}) w
     JOIN tlog_checkpoints c ON c.size = w.checkpoint_size AND c.key_id = w.checkpoint_key_id
     ORDER BY c.size DESC`,
    [seq, witnessesMin, checkpointKeyId, witnesses.map((witness) => witness.name), witnesses.map((witness) => witness.keyId)],
  )).rows;
}

export interface LogKeyRow {
  key_id: string;
  verifier_key: string;
  first_size: number;
  announced_size: number | null;
}

/** Every log key, in the order they were used. */
export async function listLogKeys(db: Queryable): Promise<LogKeyRow[]> {
  return (await db.query<LogKeyRow>('SELECT key_id, verifier_key, first_size, announced_size FROM tlog_keys ORDER BY written_order')).rows;
}

/** The key that signs now: the newest one (also read by signingState, inside its statement). */
const currentLogKeySql = 'SELECT key_id, verifier_key, first_size, announced_size FROM tlog_keys ORDER BY written_order DESC LIMIT 1';

/** The key that signs now: the newest one; undefined before the log first signed. */
export async function currentLogKey(db: Queryable): Promise<LogKeyRow | undefined> {
  return (await db.query<LogKeyRow>(currentLogKeySql)).rows[0];
}

export async function insertLogKey(db: Queryable, row: LogKeyRow): Promise<void> {
  await db.query('INSERT INTO tlog_keys (key_id, verifier_key, first_size, announced_size) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [row.key_id, row.verifier_key, row.first_size, row.announced_size]);
}

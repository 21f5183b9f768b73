/**
 * The guard against serving a database that went back: the newest checkpoint this server
 * signed or saw is kept OUTSIDE the database, in <CHIPLEDGER_DATA_DIR>/published-checkpoint
 * (the log's signed note, as stored and served), and at start, before the ledger opens (so
 * before anything is migrated, signed or served), the database's log must extend it: at least
 * its size, and at its size the same root.
 *
 * Why: a database restored from an older backup (or a replica behind, or another database
 * under the same settings) holds a shorter or different log. Served, it hands out again the
 * ids and idempotency answers the newer state had given, and its next checkpoint forks the log
 * that monitors and witnesses already hold. Nothing inside the database can tell, since the
 * restore took the record of what was published with it; a file next to the server can.
 *
 * The data dir is local to each server even with DATABASE_URL (serve makes it when missing),
 * so several servers on one database keep a file each. Each records what it signs, and, every
 * limits.seenCheckpointIntervalMs while it runs, the database's newest checkpoint when that is
 * newer: with several servers the one that wins the signing lock may be the only one that
 * signs, and a file moved only by its own signings would stay at its server's start, so that
 * server would start without a word on a backup taken since. Give each server a data dir of
 * its own: two that share one (nothing locks it with DATABASE_URL) write one file, each
 * whole, the last rename winning.
 *
 * The file is believed only once its note verifies with a key of this log (the server's own
 * keys, and the keys the database records): a file changed by hand is its own refusal, never
 * a silent block or pass. The deliberate way on, after deciding to serve an older or another
 * database, is to move the file away (and keep it: it is the record of what was published).
 * That is an act per incident, unlike a setting, which left in a unit file would turn the guard
 * off for every later start without a word; on that start the newest checkpoint of the
 * database is recorded, and the guard holds again from there.
 *
 * Storage rules: the file is replaced whole (a temporary file written and fsynced, renamed over
 * it, the folder fsynced), so a crash at any step leaves the old file or the new one, never a
 * part. It only moves forward: a larger size (whose log extends the one recorded), or nothing.
 * A crash after a checkpoint is committed and before it is recorded leaves the file one
 * signing behind, which the next signing or look makes good. A write that fails (a full disk, a
 * read-only remount of the data dir) leaves the file behind while the server runs: a restart on
 * a backup taken since would not be refused. So from then until the file is written again the
 * server signs no new checkpoint (the ledger keeps committing; the first checkpoint signed once
 * the file is written covers those events), /healthz answers 503 with the rule
 * publishedCheckpointUnrecordedRule, naming the file and the error, and /metrics says so
 * (chipledger_checkpoint_signing_held). Each tick of the signer, and each look, tries the write
 * again. A checkpoint another process signed is believed as the file is: only once its note
 * verifies with a key of this log (a row a database user wrote by hand is never recorded), and
 * only when the database's log holds it and extends the one recorded.
 */
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DomainError } from '../core/errors.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { CheckpointRecorder, SignedCheckpoint } from '../ledger/log/checkpointer.ts';
import { Outage, outageReason } from '../ledger/outage.ts';
import { TileReader } from '../ledger/log/tile-reader.ts';
import { limits } from '../core/limits.ts';
import { inTransaction, withQueryTimeout, type Pool, type PoolClient } from '../store/pool.ts';
import { listLogKeys, readHead } from '../store/tlog-tables.ts';
import { logTablesPresent, newestCheckpointFrom } from '../store/tlog-reads.ts';
import { decodeVerifierKey, isValidKeyName, openCheckpoint, parseCheckpoint, parseNote, parseSignerKey, parseVerifierKey, rootFromNodes, rootNodes, type Ed25519NoteVerifier } from '../tlog/index.ts';
import { dataDirAccessProblem } from './config.ts';
import { Failure, printable } from './output.ts';
import { replaceFile } from './replace-file.ts';

export const publishedCheckpointFileName = 'published-checkpoint';
/** Longest file read: a checkpoint note (three lines, a rotation line, a few signatures) is far shorter. */
export const publishedCheckpointBytesMax = 65_536;
/** Tiles the start check reads: a root needs one per tile level at most. */
const startCheckTilesMax = 64;
/** The rule /healthz answers 503 with while the file is behind what this server signed or saw. */
export const publishedCheckpointUnrecordedRule = 'published-checkpoint-unrecorded';

/** How the file is replaced with a note: replaceFile; a test's may fail as a full disk would. */
export type NoteWriter = (file: string, note: string) => Promise<void>;

const replaceNote: NoteWriter = (file, note) => replaceFile(file, note, { mode: 0o644, folderSync: 'required' });

/** The database log's root at a size (at most its head). */
type RootAt = (size: number) => Promise<Buffer>;

/** A checkpoint as recorded: the signed note and what it signs. */
interface Published {
  size: number;
  root: Buffer;
  note: string;
}

/** What the start check read, in one snapshot, before anything is migrated. */
interface DatabaseLog {
  size: number;
  root: Buffer;
  /** Verifier keys the database records for its log (none on a database never migrated). */
  keys: string[];
}

/** How a running server hears of a failing look at the database's newest checkpoint: as of a failing signing. */
export interface FollowOptions {
  /** Between looks (limits.seenCheckpointIntervalMs). */
  intervalMs?: number;
  /** Told once per outage, as the checkpointer's onError is: a look failing every few seconds is one outage. */
  onError?: (error: unknown, context: string) => void;
  /** Told once when a look works again after failing ones. */
  onRecovered?: (message: string) => void;
  /** How the file is written (replaceNote); tests inject a failing one. */
  write?: NoteWriter;
}

/** How to go on deliberately, said by every refusal. */
function howToGoOn(file: string): string {
  return `if you mean to serve this database anyway (monitors and witnesses of the log will see it go back or fork), move ${file} away (keep it: it records what was published) and start again`;
}

export class PublishedCheckpointGuard implements CheckpointRecorder {
  /** Writes one at a time, in order: the looks' and the checkpointer's. */
  private writing: Promise<void> = Promise.resolve();
  private write: NoteWriter = replaceNote;
  /**
   * The newest checkpoint this server signed or saw whose write failed, larger than the one
   * recorded (cleared once one at least as large is written), why, and since when.
   */
  private owed: { checkpoint: SignedCheckpoint; reason: string; sinceMs: number } | undefined;
  /** The ledger's log's roots, once following: what catchUp checks the recorded checkpoint against. */
  private logRootAt: RootAt | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The timer's look in flight, if any: at most one at a time. */
  private looking: Promise<void> | undefined;
  private readonly outage = new Outage({ again: "recording the database's newest checkpoint works again", failure: ['failed look', 'failed looks'] }, () => Date.now());

  /** `ownKeys`: the verifier keys of the server's signing keys, with which a seen checkpoint may be signed too. */
  private constructor(readonly file: string, private published: Published | undefined, private readonly ownKeys: readonly string[]) {}

  /** The size recorded, if any. */
  get size(): number | undefined {
    return this.published?.size;
  }

  /**
   * Why the file is behind what this server signed or saw (a write failed), as /healthz answers
   * it; undefined while it is not. The checkpointer signs nothing new meanwhile (CheckpointRecorder).
   */
  get behind(): DomainError | undefined {
    const owed = this.owed;
    if (owed === undefined) return undefined;
    const recordedSize = this.published?.size ?? 0;
    const since = new Date(owed.sinceMs).toISOString();
    return new DomainError('unavailable', `${this.file}, which guards against starting on a database that went back, records the checkpoint of size ${recordedSize}, but this server has signed or seen one of size ${owed.checkpoint.size} and could not record it since ${since}: ${owed.reason}; a restart on a backup taken since size ${recordedSize} would not be refused, so this server signs no new checkpoint until the file is written again (it tries every second, and at each look): free space on the data dir's file system, or make it writable again`, {
      rule: publishedCheckpointUnrecordedRule,
      details: { file: this.file, recordedSize, unrecordedSize: owed.checkpoint.size, since, error: owed.reason },
    });
  }

  /**
   * The start check: refuses (a Failure, one line) a database whose log is shorter than the
   * checkpoint recorded, or has another root at its size, and a file whose note no key of
   * this log signed. `signerKeys`: the server's signing key and its previous one, if any.
   * Reads only; call it before Ledger.open, which migrates and may sign.
   */
  static async check(pool: Pool, dataDir: string, signerKeys: readonly string[], refusing = 'refusing to start'): Promise<PublishedCheckpointGuard> {
    try {
      return await PublishedCheckpointGuard.checked(pool, dataDir, signerKeys);
    } catch (error) {
      // Each refusal is said as its caller acts: serve starting, or an admin command writing.
      if (error instanceof Failure) throw new Failure(`${refusing}: ${error.message}`, error.exitCode);
      throw error;
    }
  }

  private static async checked(pool: Pool, dataDir: string, signerKeys: readonly string[]): Promise<PublishedCheckpointGuard> {
    // A file in a folder another user may write guards nothing: that user may remove it (the
    // next start then records whatever the database holds). Said here for every caller, an
    // admin command with DATABASE_URL included, which opens no other file there.
    const untrusted = dataDirAccessProblem(dataDir);
    if (untrusted !== undefined) throw new Failure(untrusted, 2);
    const file = join(dataDir, publishedCheckpointFileName);
    const ownKeys = signerKeys.map((key) => parseSignerKey(key).verifierKey);
    const note = await readPublishedFile(file);
    if (note === undefined) return new PublishedCheckpointGuard(file, undefined, ownKeys);
    const published = await inTransaction(pool, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (client) => {
      const log = await readDatabaseLog(client);
      refuseAnotherLog(file, note, log.keys.at(-1) ?? signerKeys[0]);
      const recorded = openPublished(file, note, [...ownKeys, ...log.keys]);
      if (log.size < recorded.size) {
        throw new Failure(`the database's transparency log has ${log.size} entries (root ${log.root.toString('base64')}), fewer than the checkpoint of size ${recorded.size} (root ${recorded.root.toString('base64')}) this server published, recorded in ${file}: the database is older than what was published (restored from an older backup, or a replica behind) or another database, and served it would give out ids and idempotency answers again and sign a fork of the published log; point chipledger at the newest database, or, ${howToGoOn(file)}`);
      }
      const root = await rootAt(client, recorded.size);
      if (!root.equals(recorded.root)) {
        throw new Failure(`the database's transparency log has root ${root.toString('base64')} at size ${recorded.size} (of ${log.size} entries), but the checkpoint of size ${recorded.size} this server published, recorded in ${file}, has root ${recorded.root.toString('base64')}: the database holds another history (another database, or one restored from a backup and then written to), and served it would sign a fork of the published log; point chipledger at the database it published, or, ${howToGoOn(file)}`);
      }
      return recorded;
    });
    return new PublishedCheckpointGuard(file, published, ownKeys);
  }

  /**
   * Once the ledger is open: records each checkpoint the ledger's checkpointer signs, and looks
   * at the database's newest checkpoint now (the ledger's start-up check proved it; it is what
   * this server serves now, and after a deliberate move of the file it arms the guard again at
   * once) and then every `intervalMs` until stop(), recording it when it is newer (seeNow).
   * A look that fails is said through onError once per outage, as a failing signing is.
   */
  async follow(ledger: Ledger, options: FollowOptions = {}): Promise<void> {
    if (options.write !== undefined) this.write = options.write;
    this.logRootAt = (size) => ledger.log.rootAt(size);
    // The recorder first: the checkpointer is ticking already, and a signing during the look
    // must be recorded too (the writes are kept in order).
    ledger.checkpointer?.recordWith(this);
    // Bounded like the API's reads: a frozen database must not hold a look, and stop(), for ever.
    const pool = withQueryTimeout(ledger.pool, limits.readQueryTimeoutMs);
    // At start a failure to record is serve's to report, in one line: nothing is served yet.
    await this.seeNow(pool).catch((error: unknown) => {
      throw new Failure(`refusing to start: ${(error as Error).message}`);
    });
    this.timer = setInterval(() => this.look(pool, options), options.intervalMs ?? limits.seenCheckpointIntervalMs);
    this.timer.unref();
  }

  /** Stops the looks, once the one in flight ends; call it before the pool closes. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.looking;
  }

  /** The timer's turn: skipped while the look before is in flight (a slow database). */
  private look(pool: Pool, options: FollowOptions): void {
    if (this.looking !== undefined) return;
    this.looking = this.seeNow(pool).then(
      () => {
        const recovery = this.outage.recovered();
        if (recovery !== undefined) options.onRecovered?.(recovery);
      },
      (error: unknown) => {
        const news = this.outage.failed(outageReason(error));
        if (news === 'nothing new') return;
        const another = news === 'new reason' ? ', for another reason now' : '';
        options.onError?.(error, `couldn't record the database's newest checkpoint in ${this.file}${another} (each reason is said once until it works again)`);
      },
    ).finally(() => {
      this.looking = undefined;
    });
  }

  /**
   * One look: the database's newest checkpoint, recorded when it is larger than the one
   * recorded, verifies with a key of this log (the server's own and the database's), and is
   * of the database's log, which extends the recorded one. Thrown: a database whose log is
   * shorter than the recorded checkpoint (it went back under this running server), a row
   * whose note no key of this log signed (written by hand), or one the log does not hold.
   *
   * Cost: one query of one row, read by two primary keys (log_head, and tlog_checkpoints
   * above the size recorded, which finds none when nothing is new: every look of a server
   * whose file is current). Only a newer checkpoint costs more: the log's keys, an Ed25519
   * verification, the roots at two sizes from the tiles (one tile a level at most) in one
   * snapshot, and the file replaced with its fsyncs.
   */
  seeNow(pool: Pool): Promise<void> {
    const next = this.writing.then(() => this.seeNewest(pool));
    this.writing = next.catch(() => {});
    return next;
  }

  private async seeNewest(pool: Pool): Promise<void> {
    const recorded = this.published;
    const newest = await newestCheckpointFrom(pool, recorded === undefined ? 0 : recorded.size + 1);
    if (recorded !== undefined && newest.headSize < recorded.size) throw this.wentBack(recorded.size);
    if (newest.checkpoint === undefined) return;
    const keys = [...this.ownKeys, ...(await listLogKeys(pool)).map((row) => row.verifier_key)];
    const seen = openSeen(newest.checkpoint, keys);
    const roots = await inTransaction(pool, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (client) => ({
      seen: await rootAt(client, seen.size),
      recorded: recorded === undefined ? undefined : await rootAt(client, recorded.size),
    }));
    if (!roots.seen.equals(seen.root)) {
      throw new Error(`the database's newest checkpoint, of size ${seen.size}, has root ${seen.root.toString('base64')}, but the database's log has root ${roots.seen.toString('base64')} at that size: its checkpoints and its log disagree, so it is not recorded in ${this.file}; run chipledger check`);
    }
    // The roots were read in the chain, with the recorded checkpoint they are compared with.
    await this.recordNow({ size: seen.size, root: seen.root, signedNote: seen.note }, async () => roots.recorded!);
  }

  /**
   * Records a checkpoint this server signed (or a look found, larger than the one recorded).
   * Only forward: one of the size recorded and its root changes nothing; one that is smaller,
   * has another root at the size recorded, or is larger but its log does not extend the
   * recorded one (`rootAt` gives the database log's root at a size) means the database went
   * back under this running server (a failover to a replica that lacked the newest commits,
   * say), and is thrown. The thrown messages name the recorded checkpoint only, so that an
   * outage reports them once. A write that fails leaves the checkpoint owed (behind), which
   * holds the checkpointer's signing until it is written.
   */
  record(signed: SignedCheckpoint, rootAt: RootAt = this.followedRootAt()): Promise<void> {
    const next = this.writing.then(() => this.recordNow(signed, rootAt));
    this.writing = next.catch(() => {});
    return next;
  }

  /**
   * Writes the checkpoint owed (behind), if any, so that the checkpointer signs again; throws
   * why it cannot. A look that records the database's newest checkpoint settles it as well.
   */
  async catchUp(): Promise<void> {
    const owed = this.owed;
    if (owed !== undefined) await this.record(owed.checkpoint, this.followedRootAt());
  }

  private followedRootAt(): RootAt {
    if (this.logRootAt === undefined) throw new Error('assertion failed: the guard records with the log\'s roots only once it follows the ledger');
    return this.logRootAt;
  }

  private async recordNow(signed: SignedCheckpoint, rootAt: RootAt): Promise<void> {
    const published = this.published;
    if (published !== undefined) {
      if (signed.size === published.size && signed.root.equals(published.root)) return;
      const extendsRecorded = signed.size > published.size && (await rootAt(published.size)).equals(published.root);
      if (!extendsRecorded) throw this.wentBack(published.size);
    }
    try {
      await this.write(this.file, signed.signedNote);
    } catch (error) {
      throw this.unrecorded(signed, error);
    }
    this.published = { size: signed.size, root: signed.root, note: signed.signedNote };
    if (this.owed !== undefined && signed.size >= this.owed.checkpoint.size) this.owed = undefined;
  }

  /**
   * A write that failed: the checkpoint is owed (behind) until one at least as large is written,
   * and the error said. Its message names the recorded size and the write's error only, so that
   * an outage reports it once however many signings and looks fail the same way.
   */
  private unrecorded(signed: SignedCheckpoint, error: unknown): Error {
    const reason = fileErrorReason(error);
    if (this.owed === undefined || signed.size > this.owed.checkpoint.size) {
      this.owed = { checkpoint: signed, reason, sinceMs: this.owed?.sinceMs ?? Date.now() };
    }
    this.owed.reason = reason;
    return new Error(`couldn't record a checkpoint in ${this.file}, which guards against starting on a database that went back (it records size ${this.published?.size ?? 0}): ${reason}`);
  }

  private wentBack(size: number): Error {
    return new Error(`the database's transparency log no longer extends the checkpoint of size ${size} this server published (recorded in ${this.file}): the database went back while this server ran (a failover to a replica without the newest commits, or a restore); stop this server and point it at the database it published`);
  }
}

/**
 * A failed write's error, said without the paths Node quotes in it: the temporary file's name
 * is random at each write (replace-file.ts), and with it every failure of an outage would be a
 * reason of its own, said each time. The file is named by the message around it.
 */
function fileErrorReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/ '[^']*'( -> '[^']*')?/g, '');
}

/**
 * A checkpoint row another process wrote, believed only when its note verifies with a key of
 * this log and says the size and root of its row: a row a database user wrote by hand is never
 * recorded (the file would then refuse the database's real log at the next start).
 */
function openSeen(row: { size: number; root: Buffer; signed_note: string }, verifierKeys: readonly string[]): Published {
  const keys = [...new Set(verifierKeys)];
  const opened = openByAnyKey(row.signed_note, keys);
  if (typeof opened !== 'string' && opened.size === row.size && opened.root.equals(row.root)) return opened;
  throw new Error(`the database's newest checkpoint, of size ${row.size}, is not a checkpoint of that size signed by a key of this log (${keys.join(', ')}): it was written or changed by hand, so it is not recorded; run chipledger check`);
}

/**
 * The file's text, or undefined when there is none; anything else that stops reading it is a
 * refusal. Opened non-blocking: a FIFO put in its place would otherwise hang the start (it is
 * then refused as not a file).
 */
async function readPublishedFile(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Failure(`couldn't read ${file}, the newest checkpoint this server published: ${(error as Error).message}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Failure(`${file}, where this server records the newest checkpoint it published, is not a file; ${howToGoOn(file)}`);
    if (stat.size > publishedCheckpointBytesMax) throw new Failure(`${file} is longer than ${publishedCheckpointBytesMax} bytes, so it is not the checkpoint this server recorded; ${howToGoOn(file)}`);
    return await readFile(handle, 'utf8');
  } finally {
    await handle.close();
  }
}

/** Longest origin compared with the database's: a key name, as every log origin here is, is far shorter. */
const originLengthMax = 255;

/**
 * Refuses a recorded checkpoint of another log than the database's: a data dir of another
 * deployment (the demo's, left as the default while following the production steps), or a
 * database of another one. Its sizes say nothing about this database, so it is said as what
 * it is, not as a database that went back. Compared before any signature is checked: the
 * other log's checkpoint is signed by a key this server does not hold, and a note changed by
 * hand to name another origin is refused either way. `logKey`: the database's newest log key
 * (a verifier key), or, on a database that records none yet, the caller's first key (a signer
 * key: serve's, which will sign it); its name is the log's origin. A note that does not parse
 * is openPublished's to refuse.
 */
function refuseAnotherLog(file: string, note: string, logKey: string | undefined): void {
  let origin: string;
  let logOrigin: string;
  try {
    origin = parseCheckpoint(parseNote(note).text).origin;
    if (logKey === undefined) return;
    logOrigin = logKey.startsWith('PRIVATE+KEY+') ? parseSignerKey(logKey).name : decodeVerifierKey(logKey).name;
  } catch {
    // A malformed key recorded in the database is the ledger's start-up check's to name.
    return;
  }
  if (origin === logOrigin || origin.length > originLengthMax || !isValidKeyName(origin)) return;
  throw new Failure(`${file} holds a checkpoint of another log (origin ${printable(origin)}; this database's log is ${logOrigin}): the data dir is another deployment's (the demo's, say), or the database is; set CHIPLEDGER_DATA_DIR to the folder of this database's own server, or, ${howToGoOn(file)}`);
}

/** The recorded note, opened with the first of `verifierKeys` that signed it; a refusal when none did. */
function openPublished(file: string, note: string, verifierKeys: readonly string[]): Published {
  const keys = [...new Set(verifierKeys)];
  const opened = openByAnyKey(note, keys);
  if (typeof opened !== 'string') return opened;
  throw new Failure(`${file} should hold the newest checkpoint this server published, but it is not a checkpoint signed by a key of this log (${keys.join(', ')}): ${opened}; it was changed, or comes from another log, so the database cannot be checked against it; put back the file this server wrote, or, ${howToGoOn(file)}`);
}

/**
 * `note` opened as a checkpoint with the first of `keys` that signed it, or why none did (the
 * first key's reason: the server's own, when it has one). A malformed key recorded in the
 * database is skipped: the ledger's start-up check names it.
 */
function openByAnyKey(note: string, keys: readonly string[]): Published | string {
  let why = 'no log key is known';
  for (const key of keys) {
    let verifier: Ed25519NoteVerifier;
    try {
      verifier = parseVerifierKey(key);
    } catch {
      continue;
    }
    try {
      const { checkpoint } = openCheckpoint(note, verifier);
      return { size: checkpoint.size, root: checkpoint.rootHash, note };
    } catch (error) {
      if (key === keys[0]) why = (error as Error).message;
    }
  }
  return why;
}

/**
 * The log's size, root and keys as the database holds them. A database never migrated has no
 * log tables: its log is empty.
 */
async function readDatabaseLog(client: PoolClient): Promise<DatabaseLog> {
  const tables = await logTablesPresent(client);
  const head = tables.head ? await readHead(client) : undefined;
  const keys = tables.keys ? (await listLogKeys(client)).map((row) => row.verifier_key) : [];
  return { size: head?.size ?? 0, root: head?.root ?? (await rootAt(client, 0)), keys };
}

/**
 * The root of the database's log at `size` (at most its head), from its tiles as the ledger
 * keeps them. The ledger's own start-up check, which runs next, proves the tiles against the
 * events; a tile missing here is a refusal of the same kind.
 */
async function rootAt(client: PoolClient, size: number): Promise<Buffer> {
  try {
    return rootFromNodes(size, await new TileReader(client, startCheckTilesMax).nodeGetter(rootNodes(size), client));
  } catch (error) {
    if ((error as { code?: unknown }).code !== undefined) throw error;
    throw new Failure(`couldn't compute the database log's root at size ${size} to compare it with the checkpoint this server published: ${(error as Error).message}`);
  }
}

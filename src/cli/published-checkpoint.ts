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
 *
 * This file is the running guard: the recorder of what this server signs, the checkpoint owed
 * while a write fails, catching up, and following the database's newest checkpoint. The file
 * and the notes it believes: published-checkpoint-file.ts; the start check against the
 * database: published-checkpoint-start.ts.
 */
import { DomainError } from '../core/errors.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { CheckpointRecorder, SignedCheckpoint } from '../ledger/log/checkpointer.ts';
import { Outage, outageReason } from '../ledger/outage.ts';
import { limits } from '../core/limits.ts';
import { inTransaction, type Pool } from '../store/pool.ts';
import { withQueryTimeout } from '../store/query-timeout.ts';
import { listLogKeys, newestCheckpointFrom } from '../store/tlog-tables.ts';
import { Failure } from './output.ts';
import { fileErrorReason, openSeen, replaceNote, type NoteWriter, type Published } from './published-checkpoint-file.ts';
import { checkPublishedCheckpoint, rootAt } from './published-checkpoint-start.ts';

/** The rule /healthz answers 503 with while the file is behind what this server signed or saw. */
export const publishedCheckpointUnrecordedRule = 'published-checkpoint-unrecorded';

/** The database log's root at a size (at most its head). */
type RootAt = (size: number) => Promise<Buffer>;

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
   * The start check (checkPublishedCheckpoint says what it refuses, each a Failure in one line),
   * its refusals prefixed with `refusing`. `signerKeys`: the server's signing key and its
   * previous one, if any. Reads only; call it before Ledger.open, which migrates and may sign.
   */
  static async check(pool: Pool, dataDir: string, signerKeys: readonly string[], refusing = 'refusing to start'): Promise<PublishedCheckpointGuard> {
    try {
      const start = await checkPublishedCheckpoint(pool, dataDir, signerKeys);
      return new PublishedCheckpointGuard(start.file, start.published, start.ownKeys);
    } catch (error) {
      // Each refusal is said as its caller acts: serve starting, or an admin command writing.
      if (error instanceof Failure) throw new Failure(`${refusing}: ${error.message}`, error.exitCode);
      throw error;
    }
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
   * Only forward: one of the size recorded and its root changes nothing, nor does a smaller one
   * the database's log still holds under the recorded one (another server's larger checkpoint
   * was recorded first); one that has another root at the size recorded, is smaller and not
   * held so, or is larger but its log does not extend the recorded one (`rootAt` gives the
   * database log's root at a size) means the database went back under this running server (a failover to a replica that lacked the newest commits,
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
      // Smaller than the one recorded: with several servers signing one log, this server's own
      // signing may be recorded after a look recorded a larger checkpoint another server signed
      // meanwhile. The log has not gone back if it still holds both: the recorded one covers it.
      if (signed.size < published.size) {
        const covered = (await rootAt(signed.size)).equals(signed.root) && (await rootAt(published.size)).equals(published.root);
        if (covered) return;
        throw this.wentBack(published.size);
      }
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

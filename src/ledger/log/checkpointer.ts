/**
 * Signs checkpoints (C2SP tlog-checkpoint as a C2SP signed note, Ed25519): at most a second
 * behind the newest event, about once a second while events arrive, and none while none do.
 * Several server processes may run one each; the table keeps the first checkpoint of each
 * size, and a process skips signing when another process signed within most of its tick.
 *
 * A retired key never signs again: each signing re-reads the log's current key under the
 * log signing lock (the lock a rotation takes too), and a signer whose key was replaced,
 * by a rotation in any process, refuses and stops ticking.
 *
 * A signer whose recorder is behind (the server's published-checkpoint not written: a full
 * disk, a read-only remount) signs nothing new until what it owes is recorded: each tick and
 * each signing tries that first, and fails (a failed tick, said once an outage) while it cannot.
 *
 * A signer signs only a head whose tree extends the newest checkpoint it signed or found
 * verified before (LogWentBack): a database that went back under the running server (a
 * failover to a replica without the newest commits, a restore) and then took other events
 * would otherwise have its fork signed with the key that signed the original, in the same
 * process that published it.
 */
import { DomainError } from '../../core/errors.ts';
import { limits } from '../../core/limits.ts';
import { withTimeout } from '../../core/timeout.ts';
import { formatCheckpoint, formatKeyId, signNote, type Ed25519NoteSigner } from '../../tlog/index.ts';
import { currentLogKey, inLogSigningTransaction, insertCheckpoint, latestCheckpoint, logSigningLockHolders, readHead, signingState, type CheckpointRow } from '../../store/tlog-tables.ts';
import { describeHolders, formatWait, isWaitBoundError } from '../../store/advisory-locks.ts';
import { LogKeyError } from './keys.ts';
import { Outage, outageReason } from '../outage.ts';
import type { Pool, PoolClient } from '../../store/pool.ts';
import { HeadRootMismatch } from './head-root.ts';
import type { HeadSealer } from './head-seal.ts';
import { withQueryTimeout } from '../../store/query-timeout.ts';

export { HeadRootMismatch } from './head-root.ts';

/** The rule a signing refused for the database's log no longer extending a checkpoint (LogWentBack). */
export const logWentBackRule = 'log-went-back';

/**
 * The database's log no longer extends a checkpoint this process signed or saw published
 * before: fewer entries than its size, or another root there. Signed now, the head would be
 * a fork of a published checkpoint.
 */
export class LogWentBack extends DomainError {
  constructor(pinned: PinnedCheckpoint, size: number, storedRoot: Buffer | undefined) {
    const found = storedRoot === undefined ? `holds ${size} entries` : `gives the root ${storedRoot.toString('hex')} at that size, not ${pinned.root.toString('hex')}`;
    super('unavailable', `refused to sign a checkpoint: the database's transparency log ${found}, so it no longer extends the checkpoint of size ${pinned.size} this server ${pinned.signedHere ? 'signed' : 'saw published'} (the database went back under this running server: a failover to a replica without the newest commits, or a restore); nothing was signed, and nothing will be while it does not. Point this server at the database whose log it published, or, if this database is to be kept, stop the servers that signed there and follow the restore steps (chipledger check names what differs)`, { rule: logWentBackRule, details: { checkpointSize: pinned.size, logSize: size } });
    this.name = 'LogWentBack';
  }
}

/** A checkpoint a signing holds the database's log to (Checkpointer.pinned). */
interface PinnedCheckpoint {
  size: number;
  root: Buffer;
  /** Signed by this process, or seen as the log's newest (another process's) by one of its ticks or signings. */
  signedHere: boolean;
}

export const checkpointIntervalMs = limits.checkpointIntervalMs;
/** Another process's checkpoint younger than this share of the tick makes a tick skip. */
const recentSigningShare = 0.8;

/**
 * How often the signer ticks for a given lag bound: the bound less what a signing may take
 * (limits.checkpointSigningMarginMs). A tick reads the head when it starts and its
 * checkpoint is stored a signing later, so an event committed just after that read waits
 * for the next tick's checkpoint: a tick plus a signing. Ticking every interval instead put
 * the worst lag at 1,023–1,060 ms for a 1 s interval. Short test intervals tick at half.
 */
export function tickPeriodMs(intervalMs: number): number {
  return Math.max(intervalMs - limits.checkpointSigningMarginMs, Math.ceil(intervalMs / 2));
}

export interface CheckpointerOptions {
  pool: Pool;
  signer: Ed25519NoteSigner;
  intervalMs?: number;
  /** How long a signing waits for the lock and for each statement (limits.checkpointSigningWaitMsMax). */
  signingWaitMs?: number;
  /**
   * Told of a failing tick once per outage (the first failure), not at every tick: a
   * database away for a minute would otherwise log 60 stacks of the same error.
   */
  onError?: (error: unknown, context: string) => void;
  /** Told once when a tick succeeds after failing ones, saying how many failed and for how long. */
  onRecovered?: (message: string) => void;
  /**
   * The roots the stored tiles give at these sizes, read now on the signing's connection
   * (TransparencyLog.storedRootsAt): a head whose root is not the stored tree's is never
   * signed, nor one whose tree does not extend the checkpoint the signer is pinned to.
   */
  storedRoots?: (sizes: number[], client: PoolClient) => Promise<Buffer[]>;
  /**
   * Told when a signing finds the database went back (LogWentBack): what the process read of
   * the log before may be of a history the database no longer holds (TransparencyLog.forgetTiles).
   */
  onWentBack?: () => void;
  /**
   * The log key's seals (head-seal.ts): a head that is not vouched for, written by something
   * that does not hold the key, is never signed (HeadNotVouched fails the tick).
   */
  sealer?: HeadSealer;
}

/** A checkpoint this process signed, as stored and served (the log's signed note). */
export interface SignedCheckpoint {
  size: number;
  root: Buffer;
  signedNote: string;
}

/**
 * Where the checkpoints this process signs are recorded outside the database (the server's
 * published-checkpoint file, the guard against starting on a database that went back:
 * cli/published-checkpoint.ts). Signing waits for it: while the record is behind what this
 * process signed or saw, this signer signs nothing new, since every checkpoint signed then is
 * published (monitors and witnesses hold it) and the record, which a restart on a backup is
 * checked against, would not know it. The ledger keeps committing meanwhile; the first
 * checkpoint signed once the record is made covers those events.
 */
export interface CheckpointRecorder {
  /**
   * Told of each checkpoint this process signs, once it is committed (so served), before the
   * signing counts as done. What it throws fails that tick like any other failure (onError says
   * it once an outage); the checkpoint stays signed.
   */
  record(checkpoint: SignedCheckpoint): Promise<void>;
  /**
   * Why the record is behind what this process signed or saw, as /healthz answers it (503,
   * with its rule); undefined while it is not. Read at each signing, and by /healthz.
   */
  readonly behind: DomainError | undefined;
  /**
   * Records what is owed, so that signing goes on; throws why it cannot (the signing then
   * fails as a tick does, and signs nothing).
   */
  catchUp(): Promise<void>;
}

/**
 * The log's newest checkpoint, signed by any process, and the committed head, as this
 * signer's last tick read them (signingState) or its own signing made them. Every process
 * that signs reads the same, so a server that lost the signing race does not look behind.
 */
export interface LogSeen {
  /** The committed head's size. */
  headSize: number;
  /** The newest checkpoint: its size, and its age by the database's clock when read; undefined before the first. */
  newest: { size: number; ageMs: number } | undefined;
  /** When it was read, by performance.now() (monotonic): the age has grown since. */
  readAtMs: number;
  /**
   * Whether this signer held its signing then, its recorder behind (CheckpointRecorder): why
   * the uncovered events grow on a server that signs nothing else.
   */
  signingHeld: boolean;
}

/** Why a signer whose key the log retired signs nothing more: its words wherever it is said (the checkpointer, /healthz). */
export function retiredKeyMessage(ownKey: string, currentKey: string): string {
  return `the log key ${ownKey} is no longer the log's key (now ${currentKey}); this process stopped signing checkpoints, since a retired key never signs again`;
}

/** What a signing found; the newest checkpoint is read in the same bounded transaction. */
type SigningOutcome = { kind: 'retired'; replacedBy: string } | { kind: 'covered'; latest: CheckpointRow } | { kind: 'signed'; signed: SignedCheckpoint; latest: CheckpointRow | undefined }
  | { kind: 'went back'; error: LogWentBack };

export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  /** The tick in flight, if any: at most one at a time. */
  private signing: Promise<unknown> | undefined;
  /**
   * skippedTicks: timer turns that found the tick before them still running (a slow or
   * unreachable database, a held lock); failedTicks: ticks that failed (each is reported only
   * when it begins an outage); logSeen: the log's newest checkpoint, whoever signed it
   * (undefined until the first tick reads it).
   */
  readonly stats: { signed: number; lastSize: number; lastSignedAtMs: number; skippedTicks: number; failedTicks: number; logSeen: LogSeen | undefined } = {
    signed: 0, lastSize: 0, lastSignedAtMs: 0, skippedTicks: 0, failedTicks: 0, logSeen: undefined,
  };
  /** Set once this signer found its key replaced: it never signs again. */
  private retiredBy: string | undefined;
  /** A timer turn found the tick before it still running: the next starts as that one ends. */
  private tickOwed = false;
  /** The size this process signed last: its own checkpoint never makes it skip a tick. */
  private ownSize: number | undefined;
  /** Whether the last tick failed (the database slow or away): no last signing is tried then. */
  private lastTickFailed = false;
  /** The step the tick in flight is at: a wait of the signing's that ran out names the lock's holder. */
  private tickStep: 'reading' | 'signing' = 'reading';
  /** The outage the failing ticks belong to: each reason said once, its end said with its count. */
  private readonly outage = new Outage({ again: 'checkpoint signing works again', failure: ['failed tick', 'failed ticks'] }, () => Date.now());
  private period = 0;
  private recorder: CheckpointRecorder | undefined;
  /**
   * The newest checkpoint this process signed or saw the log publish (its ticks read the
   * newest, another process's too): every later signing holds the database's log to it
   * (LogWentBack). A checkpoint another process published before a failover lost its commits
   * is held to here as well, as long as a tick of this process saw it.
   */
  private pinned: PinnedCheckpoint | undefined;
  /** Why the last signing refused for the log no longer extending `pinned`; cleared by one that signs. */
  private wentBackBy: LogWentBack | undefined;

  constructor(private readonly options: CheckpointerOptions) {}

  /**
   * Why this signer will never sign again, once another process rotated the log to a new key;
   * undefined while it signs. A server in that state keeps taking writes that no checkpoint of
   * its will cover: /healthz says so, so that it is restarted with the current key.
   */
  get retired(): Error | undefined {
    return this.retiredBy === undefined ? undefined : this.retiredError(this.retiredBy);
  }

  get signer(): Ed25519NoteSigner {
    return this.options.signer;
  }

  /**
   * Why this signer signs nothing new for now: its recorder is behind (CheckpointRecorder), as
   * /healthz answers it; undefined while it signs.
   */
  get held(): DomainError | undefined {
    return this.recorder?.behind;
  }

  /**
   * Why this signer's last signing refused: the database's log no longer extends a checkpoint
   * it signed or held it to before (LogWentBack), as /healthz answers it; undefined once a
   * signing finds it extended again, and before any refused.
   */
  get wentBack(): LogWentBack | undefined {
    return this.wentBackBy;
  }

  /**
   * Sets the one recorder of the checkpoints this process signs (CheckpointRecorder). It is
   * handed in, not file writing here: the server keeps what it signed outside the database
   * (cli/published-checkpoint.ts), and the data dir is the CLI's, not the ledger's.
   */
  recordWith(recorder: CheckpointRecorder): void {
    if (this.recorder !== undefined) throw new Error('assertion failed: the checkpointer has a recorder already');
    this.recorder = recorder;
  }

  start(): void {
    this.period = tickPeriodMs(this.options.intervalMs ?? checkpointIntervalMs);
    this.timer = setInterval(() => this.startTick(), this.period);
    this.timer.unref();
  }

  /**
   * One tick at a time. While the database is slow or unreachable (connecting waits up to
   * its timeout) or another process holds the signing lock, a tick outlasts the period;
   * starting one every period anyway piled them up, each holding or waiting for one of the
   * pool's connections, until the sequencer could get none and stop() waited only for the
   * newest. So a turn that finds a tick running is owed, and runs as soon as that tick ends:
   * waiting for the next turn instead put up to two periods between signings.
   */
  private startTick(): void {
    if (this.signing) {
      this.stats.skippedTicks += 1;
      this.tickOwed = true;
      return;
    }
    this.signing = this.tick()
      .then(() => this.tickSucceeded(), (error: unknown) => this.tickFailed(error))
      .finally(() => {
        this.signing = undefined;
        if (this.tickOwed && this.timer !== undefined && this.retiredBy === undefined) {
          this.tickOwed = false;
          this.startTick();
        }
      });
  }

  private async tickFailed(error: unknown): Promise<void> {
    this.lastTickFailed = true;
    this.stats.failedTicks += 1;
    // The same reason again is the outage going on; another one (the key replaced while the
    // database was away, which stops this signer for good) must be said too, once. A wait for
    // the signing lock is the database's "not now", like a freeze's timeouts: one reason, whose
    // line names the lock's holder when one holds it. Were a held lock a reason of its own, an
    // outage would be said twice whenever the look for the holder itself timed out (a loaded
    // machine did so), and the look is made only for a line that is said.
    const news = this.outage.failed(outageReason(error));
    if (news === 'nothing new') return;
    const lock = await this.signingLockWait(error);
    const another = news === 'new reason' ? ', for another reason now' : '';
    this.options.onError?.(error, `couldn't sign a checkpoint${another}${lock ?? ''} (each reason is said once until signing works again)`);
  }

  /**
   * When the signing's wait ran out (55P03, or 57014 "statement timeout") while another
   * session holds the log signing lock: ": waited 10 s for the log signing lock, held by
   * PostgreSQL session 4711 (…)". Its error says only "statement timeout", and a restart does
   * not free a lock held elsewhere: the operator needs the session. Undefined for any other
   * failure, when no session holds the lock now (a statement of the signing was slow), or when
   * the holders could not be read (bounded like the signing: the database may be away).
   */
  private async signingLockWait(error: unknown): Promise<string | undefined> {
    if (this.tickStep !== 'signing' || !isWaitBoundError(error)) return undefined;
    const holders = await logSigningLockHolders(this.bounded(this.signingWaitMs)).catch(() => []);
    if (holders.length === 0) return undefined;
    return `: waited ${formatWait(this.signingWaitMs)} for the log signing lock, held by ${describeHolders(holders)}`;
  }

  private tickSucceeded(): void {
    this.lastTickFailed = false;
    const recovery = this.outage.recovered();
    if (recovery !== undefined) this.options.onRecovered?.(recovery);
  }

  /**
   * The timer's turn: stop if another process rotated the log to a new key; otherwise sign
   * unless the head is covered, or another process signed within most of a tick (by the
   * database's clock, which all processes share: it ticks too, so the newest event is covered
   * within the interval while one of them runs). Our own checkpoint never makes us skip: one
   * stored late (a slow connection) would otherwise skip the next turn as well, and put two
   * periods between signings.
   */
  private async tick(): Promise<void> {
    this.tickStep = 'reading';
    // Bounded like the signing: a table lock held elsewhere would keep it waiting, and every
    // later tick skipped.
    const state = await signingState(this.bounded(this.signingWaitMs), this.signingWaitMs);
    this.sawLog(state);
    if (state.newest !== undefined) this.pin({ size: state.newest.size, root: state.newest.root, signedHere: false });
    // A rotation is found at every tick, before anything else: an idle server (no event to
    // sign) found it only at its next signing, and served the retired key as the log's until
    // then (GET /v1/log/key, cosigned proof bundles); a held one (below) never did. Read
    // outside the rotation's lock, which is enough: a retired key never becomes current again.
    if (state.logKey !== undefined && state.logKey !== this.options.signer.verifierKey) throw this.retire(state.logKey);
    // Held: what is owed is recorded first, at every tick, whether or not there is anything to
    // sign; a tick that found the head covered would otherwise count as signing working again
    // (said so) while nothing can be signed.
    if (this.recorder?.behind !== undefined) {
      await this.recorder.catchUp();
      this.sawLog(state);
    }
    const newest = state.newest;
    if (newest !== undefined && newest.size >= state.headSize) return;
    // A negative age is no recent signing: the database's clock stepped back since (NTP, a
    // failover to a standby whose clock lags), and skipping on it left events uncovered for as long as the step.
    if (newest !== undefined && newest.size !== this.ownSize && newest.ageMs >= 0 && newest.ageMs < this.period * recentSigningShare) return;
    this.tickStep = 'signing';
    await this.checkpointNow();
  }

  /** Keeps what a tick read of the log for /metrics (stats.logSeen). */
  private sawLog(state: Pick<LogSeen, 'headSize' | 'newest'>): void {
    const newest = state.newest && { size: state.newest.size, ageMs: state.newest.ageMs };
    this.stats.logSeen = { headSize: state.headSize, newest, readAtMs: performance.now(), signingHeld: this.held !== undefined };
  }

  /**
   * Stops ticking. With `finalSigning`, signs the head once more after the tick in flight
   * (a clean shutdown: the last events are not left uncovered until another process ticks),
   * within limits.finalSigningWaitMsMax, and not at all when the last tick failed; a
   * failure there is reported, not thrown.
   */
  async stop(options: { finalSigning?: boolean } = {}): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.tickOwed = false;
    await this.signing;
    if (!options.finalSigning || this.retiredBy !== undefined || this.lastTickFailed) return;
    const waitMs = Math.min(limits.finalSigningWaitMsMax, this.signingWaitMs);
    // The lock and statement bounds hold the signing itself; the deadline also covers
    // getting a connection, which the pool bounds only by its own (longer) timeout.
    await withTimeout(this.checkpointNow(waitMs), waitMs, `the last signing took more than ${waitMs} ms; stopped without it`)
      .catch((error: unknown) => this.options.onError?.(error, "couldn't sign the last checkpoint before stopping"));
  }

  /**
   * Signs the current head now if no checkpoint covers it yet; returns the newest checkpoint.
   * Throws LogKeyError (and stops the timer) when the log's key is no longer this signer's.
   */
  async checkpointNow(waitMs: number = this.signingWaitMs): Promise<CheckpointRow | undefined> {
    const { signer } = this.options;
    if (this.retiredBy !== undefined) throw this.retiredError(this.retiredBy);
    // Held: what was signed or seen must be recorded first (CheckpointRecorder); a failure
    // here fails the signing, and nothing is signed.
    if (this.recorder?.behind !== undefined) await this.recorder.catchUp();
    const signed = await inLogSigningTransaction(this.bounded(waitMs), async (client): Promise<SigningOutcome> => {
      // Under the lock a rotation takes: the key read here stays current until commit.
      const current = await currentLogKey(client);
      if (current?.verifier_key !== signer.verifierKey) return { kind: 'retired', replacedBy: current?.verifier_key ?? '(no key recorded)' };
      const head = await readHead(client);
      const latest = await latestCheckpoint(client);
      if (latest && latest.size >= head.size) return { kind: 'covered', latest };
      await this.options.sealer?.assertVouched(client, head);
      // Held to the newest checkpoint this process signed or held the log to, and to the log's
      // own newest (another process's): the head's tree must extend both.
      const newest = latest && { size: latest.size, root: latest.root, signedHere: false };
      const pins = [this.pinned, newest && !samePin(newest, this.pinned) ? newest : undefined].filter((pin) => pin !== undefined);
      const shorter = pins.find((pin) => head.size < pin.size);
      if (shorter !== undefined) return { kind: 'went back', error: new LogWentBack(shorter, head.size, undefined) };
      // One read of the tiles for every root: the pins' first, then the head's.
      const stored = await this.options.storedRoots?.([...pins.map((pin) => pin.size), head.size], client);
      if (stored !== undefined) {
        const forked = pins.findIndex((pin, index) => !stored[index]!.equals(pin.root));
        if (forked >= 0) return { kind: 'went back', error: new LogWentBack(pins[forked]!, pins[forked]!.size, stored[forked]) };
        if (!stored.at(-1)!.equals(head.root)) throw new HeadRootMismatch(head.size, head.root, stored.at(-1)!);
      }
      const text = formatCheckpoint({ origin: signer.name, size: head.size, rootHash: head.root, extensions: [] });
      const signedNote = signNote(text, signer);
      await insertCheckpoint(client, { size: head.size, root: head.root, key_id: formatKeyId(signer.keyId), signed_note: signedNote });
      return { kind: 'signed', signed: { size: head.size, root: head.root, signedNote }, latest: await latestCheckpoint(client) };
    }, waitMs);
    if (signed.kind === 'retired') throw this.retire(signed.replacedBy);
    if (signed.kind === 'covered') return signed.latest;
    if (signed.kind === 'went back') {
      // Told once as it is found, not at every tick it lasts: each would drop the proofs' tiles again.
      if (this.wentBackBy === undefined) this.options.onWentBack?.();
      this.wentBackBy = signed.error;
      throw signed.error;
    }
    this.wentBackBy = undefined;
    this.pin({ size: signed.signed.size, root: signed.signed.root, signedHere: true });
    this.ownSize = signed.signed.size;
    this.stats.signed += 1;
    this.stats.lastSize = signed.signed.size;
    this.stats.lastSignedAtMs = Date.now();
    const headSize = Math.max(signed.signed.size, this.stats.logSeen?.headSize ?? 0);
    try {
      // After the commit: a crash before it is recorded leaves this checkpoint served but not
      // recorded, and the next signing records a larger one; a failure to record it holds the
      // signing until it is recorded (held).
      await this.recorder?.record(signed.signed);
    } finally {
      // The newest checkpoint is ours now, just signed, at the head the signing read; and
      // whether the signing is held from here.
      this.sawLog({ headSize, newest: { size: signed.signed.size, ageMs: 0 } });
    }
    return signed.latest;
  }

  /** Holds later signings to `checkpoint` if it is newer than the one they are held to (pinned). */
  private pin(checkpoint: PinnedCheckpoint): void {
    if (this.pinned === undefined || checkpoint.size > this.pinned.size) this.pinned = checkpoint;
  }

  private get signingWaitMs(): number {
    return this.options.signingWaitMs ?? limits.checkpointSigningWaitMsMax;
  }

  /**
   * The pool with each of a signing's replies awaited at most `waitMs` (the bound the server
   * sets on the signing's lock and statements) and limits.databaseReplyMarginMs: a database
   * frozen or cut off enforces none of its bounds, and a tick waiting on it for ever would
   * stop every later signing. The connection of a reply that did not come is closed.
   */
  private bounded(waitMs: number): Pool {
    return withQueryTimeout(this.options.pool, Math.max(1, Math.trunc(waitMs)) + limits.databaseReplyMarginMs);
  }

  /** Stops signing for good: the log's key is `replacedBy` now. Returns the error that says so. */
  private retire(replacedBy: string): LogKeyError {
    this.retiredBy = replacedBy;
    if (this.timer) clearInterval(this.timer);
    return this.retiredError(replacedBy);
  }

  private retiredError(replacedBy: string): LogKeyError {
    return new LogKeyError(retiredKeyMessage(this.options.signer.verifierKey, replacedBy));
  }
}

function samePin(a: PinnedCheckpoint, b: PinnedCheckpoint | undefined): boolean {
  return b !== undefined && a.size === b.size && a.root.equals(b.root);
}

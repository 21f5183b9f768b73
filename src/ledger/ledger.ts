/**
 * The ledger's one public surface: open it on a pool, submit commands, read the
 * invariants back. Servers, the CLI, the demo and the benchmarks all go through here.
 */
import { systemClock, type Clock } from '../core/clock.ts';
import { limits } from '../core/limits.ts';
import type { Pool } from '../store/pool.ts';
import { migrate } from '../store/migrate.ts';
import { ledgerViolations, type Violation } from '../store/violations.ts';
import { Sequencer } from './sequencer.ts';
import type { Answer } from './batch-apply.ts';
import { TransparencyLog } from './log/transparency-log.ts';
import { Checkpointer } from './log/checkpointer.ts';
import { checkLogOnStart } from './log/check.ts';
import { parseSignerKey } from '../tlog/index.ts';
import { adoptLogKey } from './log/keys.ts';
import { HeadSealer } from './log/head-seal.ts';
import { readHead } from '../store/tlog-tables.ts';
import { nothingDueRule } from './handlers/sweep.ts';
import { systemActor, type Actor } from './permissions.ts';
import type { CommandKind, CommandRequest } from './schemas.ts';

export interface LedgerOptions {
  pool: Pool;
  clock?: Clock;
  /** Expire due shipments and licences this often; absent means the caller sweeps. */
  sweepIntervalMs?: number;
  batchCommandsMax?: number;
  /** Rows per table the sequencer keeps between batches; 0 turns the row cache off. */
  rowCacheRows?: number;
  /** How long a batch waits for the head lock before its callers get 503 (limits.headLockWaitMsMax). */
  headLockWaitMs?: number;
  /** Log tiles kept in memory for proofs (limits.tileCacheEntriesMax by default). */
  proofCacheTiles?: number;
  /**
   * The log's signing key (C2SP signer key text). With it, checkpoints are signed every
   * second; without it (tests, read-only tools) none are.
   */
  logSignerKey?: string;
  /** The key that signed the log so far, when logSignerKey is a new one to rotate to. */
  logPreviousSignerKey?: string;
  /**
   * The key whose seals this process writes on the heads it appends and accepts on the heads it
   * extends or signs (log/head-seal.ts), when it is not logSignerKey: the admin commands, which
   * sign nothing, give the log's current key here. Defaults to logSignerKey (and its previous
   * key); without either, heads are neither sealed nor checked (tests, benchmarks).
   */
  logSealingKey?: string;
  checkpointIntervalMs?: number;
  onError?: (error: unknown, context: string) => void;
  /** Told when the sequencer commits, or the checkpointer signs, again after an outage (onError said the outage once). */
  onRecovered?: (message: string) => void;
}

export class Ledger {
  readonly sequencer: Sequencer;
  /** Every committed event is a leaf of this log, written in the event's transaction. */
  readonly log: TransparencyLog;
  readonly checkpointer: Checkpointer | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;

  /** What this process dates its batches by (LedgerOptions.clock): /healthz judges it as the writes are judged. */
  readonly clock: Clock;

  /** Seals the heads this process writes, and vouches for those it extends and signs; undefined without the log's key. */
  readonly sealer: HeadSealer | undefined;

  private constructor(readonly pool: Pool, private readonly options: LedgerOptions) {
    this.clock = options.clock ?? systemClock;
    const sealingKey = options.logSealingKey ?? options.logSignerKey;
    if (sealingKey !== undefined) this.sealer = new HeadSealer(sealingKey);
    this.log = new TransparencyLog(pool, options.proofCacheTiles, this.sealer);
    this.sequencer = new Sequencer({
      pool,
      clock: this.clock,
      logAppender: this.log,
      ...(options.batchCommandsMax ? { batchCommandsMax: options.batchCommandsMax } : {}),
      ...(options.rowCacheRows !== undefined ? { rowCacheRows: options.rowCacheRows } : {}),
      ...(options.headLockWaitMs !== undefined ? { headLockWaitMs: options.headLockWaitMs } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
      ...(options.onRecovered ? { onRecovered: options.onRecovered } : {}),
    });
    if (options.logSignerKey !== undefined) {
      this.checkpointer = new Checkpointer({
        pool,
        signer: parseSignerKey(options.logSignerKey),
        storedRoots: (sizes, client) => this.log.storedRootsAt(sizes, client),
        onWentBack: () => this.log.forgetTiles(),
        ...(this.sealer ? { sealer: this.sealer } : {}),
        ...(options.checkpointIntervalMs ? { intervalMs: options.checkpointIntervalMs } : {}),
        ...(options.onError ? { onError: options.onError } : {}),
        ...(options.onRecovered ? { onRecovered: options.onRecovered } : {}),
      });
    }
  }

  /**
   * Migrates, checks the log (refusing a state it cannot prove), then adopts the signing key
   * and starts. The check comes first: adopting a new key signs the head with the old and the
   * new key, which must never happen over a state the check has not proved. With the log's key,
   * a head no key holder wrote is refused here too (HeadNotVouched), not at the first batch.
   */
  static async open(options: LedgerOptions): Promise<Ledger> {
    await migrate(options.pool);
    const ledger = new Ledger(options.pool, options);
    ledger.sequencer.stats.logSize = (await checkLogOnStart(options.pool, ledger.log, [], { newest: limits.startCheckCheckpointsMax })).size;
    const signer = ledger.checkpointer?.signer;
    // A rotation announces the new key over the head the old key sealed: only that check takes the old key's seals (head-seal.ts).
    const announcing = options.logSealingKey === undefined && options.logSignerKey !== undefined && options.logPreviousSignerKey !== undefined
      ? new HeadSealer(options.logSignerKey, options.logPreviousSignerKey) : ledger.sealer;
    if (signer) await adoptLogKey(options.pool, signer, options.logPreviousSignerKey, undefined, async (size, client) => (await ledger.log.storedRootsAt([size], client))[0]!, announcing);
    await ledger.sealer?.assertVouched(options.pool, await readHead(options.pool));
    ledger.checkpointer?.start();
    if (options.sweepIntervalMs !== undefined) ledger.startSweeping(options.sweepIntervalMs);
    return ledger;
  }

  submit<K extends CommandKind>(kind: K, input: CommandRequest<K>, actor: Actor, idempotencyKey?: string): Promise<Answer> {
    return this.sequencer.submit(kind, input, actor, idempotencyKey);
  }

  /** Runs the expiry sweep now. */
  sweep(): Promise<Answer> {
    return this.sequencer.submit('ledger.sweep', {}, systemActor);
  }

  /**
   * A tick while the last sweep is still unanswered is skipped: a sweep is a batch of its own
   * (batch-choice.ts, chooseBatch), so while the head lock is held elsewhere, sweeps queued every
   * tick would each wait out the lock alone, and the commands behind them with them.
   */
  private startSweeping(intervalMs: number): void {
    let sweeping = false;
    this.sweepTimer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      this.sweep().then(
        (answer) => {
          if (!answer.ok && answer.error.code !== 'unavailable' && answer.error.rule !== nothingDueRule) this.options.onError?.(answer.error, 'the expiry sweep was refused');
        },
        (error: unknown) => this.options.onError?.(error, 'the expiry sweep failed'),
      ).finally(() => {
        sweeping = false;
      });
    }, intervalMs);
    this.sweepTimer.unref();
  }

  /** Every invariant re-checked from the state tables; empty means all hold. */
  async violations(): Promise<Violation[]> {
    return ledgerViolations(this.pool);
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.sequencer.close();
    // Signed once more: the last events committed are covered now, not when a process next ticks.
    await this.checkpointer?.stop({ finalSigning: true });
  }
}

export type { Answer, Actor, Violation };

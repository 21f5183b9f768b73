/**
 * The ledger's one public surface: open it on a pool, submit commands, read the
 * invariants back. Servers, the CLI, the demo and the benchmarks all go through here.
 */
import { systemClock, type Clock } from '../core/clock.ts';
import type { Pool } from '../store/pool.ts';
import { migrate } from '../store/migrate.ts';
import { Sequencer, type Answer, type LogAppender } from './sequencer.ts';
import { systemActor, type Actor } from './permissions.ts';
import type { CommandKind, CommandRequest } from './schemas.ts';

export interface LedgerOptions {
  pool: Pool;
  clock?: Clock;
  logAppender?: LogAppender;
  /** Expire due shipments and licences this often; absent means the caller sweeps. */
  sweepIntervalMs?: number;
  batchCommandsMax?: number;
  onError?: (error: unknown, context: string) => void;
}

export interface Violation {
  invariant: string;
  subject: string;
  detail: string;
}

export class Ledger {
  readonly sequencer: Sequencer;
  private sweepTimer: NodeJS.Timeout | undefined;

  private constructor(readonly pool: Pool, private readonly options: LedgerOptions) {
    this.sequencer = new Sequencer({
      pool,
      clock: options.clock ?? systemClock,
      ...(options.logAppender ? { logAppender: options.logAppender } : {}),
      ...(options.batchCommandsMax ? { batchCommandsMax: options.batchCommandsMax } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  static async open(options: LedgerOptions): Promise<Ledger> {
    await migrate(options.pool);
    const ledger = new Ledger(options.pool, options);
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

  private startSweeping(intervalMs: number): void {
    this.sweepTimer = setInterval(() => {
      this.sweep().then(
        (answer) => {
          if (!answer.ok && answer.error.code !== 'unavailable') this.options.onError?.(answer.error, 'the expiry sweep was refused');
        },
        (error: unknown) => this.options.onError?.(error, 'the expiry sweep failed'),
      );
    }, intervalMs);
    this.sweepTimer.unref();
  }

  /** Every invariant re-checked from the state tables; empty means all hold. */
  async violations(): Promise<Violation[]> {
    return (await this.pool.query<Violation>('SELECT * FROM ledger_violations()')).rows;
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.sequencer.close();
  }
}

export type { Answer, Actor };

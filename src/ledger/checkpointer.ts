/**
 * Signs checkpoints (C2SP tlog-checkpoint as a C2SP signed note, Ed25519): at most a second
 * behind the newest event, about once a second while events arrive, and none while none do.
 * Several server processes may run one each; the table keeps the first checkpoint of each
 * size, and a process skips signing when another signed within most of its tick.
 */
import { limits } from '../core/limits.ts';
import { formatCheckpoint, formatKeyId, signNote, type Ed25519NoteSigner } from '../tlog/index.ts';
import { insertCheckpoint, latestCheckpoint, readHead, type CheckpointRow } from '../store/tlog-tables.ts';
import type { Pool } from '../store/pool.ts';

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
  onError?: (error: unknown, context: string) => void;
}

export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  private signing: Promise<unknown> = Promise.resolve();
  readonly stats = { signed: 0, lastSize: 0, lastSignedAtMs: 0 };

  constructor(private readonly options: CheckpointerOptions) {}

  get signer(): Ed25519NoteSigner {
    return this.options.signer;
  }

  start(): void {
    const period = tickPeriodMs(this.options.intervalMs ?? checkpointIntervalMs);
    this.timer = setInterval(() => {
      this.signing = this.tick(period).catch((error: unknown) => this.options.onError?.(error, "couldn't sign a checkpoint"));
    }, period);
    this.timer.unref();
  }

  /**
   * The timer's turn: sign unless any process signed within most of a tick (by the
   * database's clock, which all processes share). Each signer ticks every period, so the
   * newest event is covered within the interval while one of them runs.
   */
  private async tick(periodMs: number): Promise<void> {
    const recent = await this.options.pool.query<{ age_ms: number }>(
      'SELECT (extract(epoch FROM clock_timestamp() - max(created_at)) * 1000)::float8 AS age_ms FROM tlog_checkpoints',
    );
    const ageMs = recent.rows[0]?.age_ms;
    if (ageMs !== null && ageMs !== undefined && ageMs < periodMs * recentSigningShare) return;
    await this.checkpointNow();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.signing;
  }

  /** Signs the current head now if no checkpoint covers it yet; returns the newest checkpoint. */
  async checkpointNow(): Promise<CheckpointRow | undefined> {
    const { pool, signer } = this.options;
    const [head, latest] = await Promise.all([readHead(pool), latestCheckpoint(pool)]);
    if (latest && latest.size >= head.size) return latest;
    const text = formatCheckpoint({ origin: signer.name, size: head.size, rootHash: head.root, extensions: [] });
    const note = signNote(text, signer);
    await insertCheckpoint(pool, { size: head.size, root: head.root, key_id: formatKeyId(signer.keyId), signed_note: note });
    this.stats.signed += 1;
    this.stats.lastSize = head.size;
    this.stats.lastSignedAtMs = Date.now();
    return latestCheckpoint(pool);
  }
}

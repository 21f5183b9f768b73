/**
 * Signs checkpoints (C2SP tlog-checkpoint as a C2SP signed note, Ed25519): at most one a
 * second, and at most a second behind the newest event. Several server processes may run
 * one each; the table keeps the first checkpoint of each size, and a process skips signing
 * when another signed within the interval.
 */
import { limits } from '../core/limits.ts';
import { formatCheckpoint, formatKeyId, signNote, type Ed25519NoteSigner } from '../tlog/index.ts';
import { insertCheckpoint, latestCheckpoint, readHead, type CheckpointRow } from '../store/tlog-tables.ts';
import type { Pool } from '../store/pool.ts';

export const checkpointIntervalMs = limits.checkpointIntervalMs;
/** Another process's checkpoint younger than this share of the interval makes a tick skip. */
const recentSigningShare = 0.8;

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
    const interval = this.options.intervalMs ?? checkpointIntervalMs;
    this.timer = setInterval(() => {
      this.signing = this.tick(interval).catch((error: unknown) => this.options.onError?.(error, "couldn't sign a checkpoint"));
    }, interval);
    this.timer.unref();
  }

  /**
   * The timer's turn: sign unless any process signed within most of the interval (by the
   * database's clock, which all processes share). Each signer ticks every interval, so the
   * newest event is covered within about one interval while one of them runs.
   */
  private async tick(intervalMs: number): Promise<void> {
    const recent = await this.options.pool.query<{ age_ms: number }>(
      'SELECT (extract(epoch FROM clock_timestamp() - max(created_at)) * 1000)::float8 AS age_ms FROM tlog_checkpoints',
    );
    const ageMs = recent.rows[0]?.age_ms;
    if (ageMs !== null && ageMs !== undefined && ageMs < intervalMs * recentSigningShare) return;
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

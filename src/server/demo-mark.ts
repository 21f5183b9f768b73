/**
 * Whether a server serves demo data: every answer marked X-Chipledger-Demo: true, every event
 * served as demo: true. The demo may be loaded while a server runs (`chipledger demo` through
 * the embedded PostgreSQL serve lends, or another process on a shared DATABASE_URL), so a
 * server that started without it asks the database again, at most once per
 * limits.demoCheckIntervalMs. The mark is one-way: demo rows are never deleted, so once set it stays,
 * and the database is not asked again.
 */
import { limits } from '../core/limits.ts';
import { withTimeout } from '../core/timeout.ts';

export interface DemoMarkOptions {
  /** Marked from the start (`serve --demo`, or a database found to hold the demo at start). */
  marked: boolean;
  /** Whether the database holds the demo now; a failure counts as "not seen yet". */
  holdsDemo: () => Promise<boolean>;
  /** Told once, when the mark is set after the start. */
  onMarked: () => void;
  /** Monotonic milliseconds; performance.now() unless a test moves time itself. */
  nowMs?: () => number;
}

export class DemoMark {
  private marked: boolean;
  private checkedAtMs = Number.NEGATIVE_INFINITY;
  private checking = false;
  private readonly nowMs: () => number;

  constructor(private readonly options: DemoMarkOptions) {
    this.marked = options.marked;
    this.nowMs = options.nowMs ?? (() => performance.now());
  }

  get demo(): boolean {
    return this.marked;
  }

  /**
   * Whether refresh() would ask the database now: the mark unset, no check under way, and the
   * last one begun limits.demoCheckIntervalMs ago or more. Synchronous, so that the request path
   * pays no promise for the thousands of requests a second that find nothing to do.
   */
  due(): boolean {
    return !this.marked && !this.checking && this.nowMs() - this.checkedAtMs >= limits.demoCheckIntervalMs;
  }

  /**
   * Asks the database again if the mark is not set, no check is under way and the last began
   * limits.demoCheckIntervalMs ago or more; waits for that check at most limits.demoCheckWaitMs. Never
   * throws: a failed check leaves the mark as it was, and the request goes on.
   */
  async refresh(): Promise<void> {
    if (!this.due()) return;
    const nowMs = this.nowMs();
    this.checkedAtMs = nowMs;
    this.checking = true;
    const checked = this.options.holdsDemo().then((holds) => {
      if (holds && !this.marked) {
        this.marked = true;
        this.options.onMarked();
      }
    }, () => {}).finally(() => {
      this.checking = false;
    });
    await withTimeout(checked, limits.demoCheckWaitMs).catch(() => {});
  }
}

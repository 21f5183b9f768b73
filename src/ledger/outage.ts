/**
 * The bookkeeping of an outage, for a loop that keeps failing while the database is slow or
 * away (the sequencer's batches, the checkpoint signer's ticks): each reason is said once while
 * the outage lasts, at most limits.outageReasonsMax of them, and its end once, with the failures
 * counted over its duration. Said at every failure instead, a database away for 10 s under 32
 * clients logged 212 lines of stacks, and a minute away 60 stacks of the same signing error.
 *
 * The caller words the failure itself (it knows what failed) and says the lines; this keeps
 * the counts and decides what is worth saying.
 */

import { limits } from '../core/limits.ts';
import { isDatabaseFailure } from './batch-failures.ts';

/**
 * What a failure is, for saying each once an outage: every way of the database being slow or
 * away is one reason (a freeze alternates lock timeouts, statement timeouts and lost
 * connections: the write path's "not now" SQLSTATEs, store/sqlstate.ts), anything else is its own.
 */
export function outageReason(error: unknown): string {
  if (isDatabaseFailure(error)) return 'the database is slow or away';
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** A noun as the recovery line counts it: singular, then plural. */
export type Noun = readonly [one: string, many: string];

export interface OutageWords {
  /** How the recovery line begins: "the ledger commits again". */
  again: string;
  /** What failed, as the recovery line counts it: ["failed tick", "failed ticks"]. */
  failure: Noun;
  /** What the failures held, when the line counts it too ("of 7 commands"); absent, only the failures are counted. */
  part?: Noun;
}

/**
 * What one failure means for the outage: it began it, it brings a reason not said yet in
 * it, or there is nothing new to say (a reason said already, or limits.outageReasonsMax said).
 */
export type OutageNews = 'began' | 'new reason' | 'nothing new';

export class Outage {
  private current: { sinceMs: number; failures: number; parts: number; reasons: Set<string> } | undefined;

  /** `nowMs`: the clock the outage's duration is measured by. */
  constructor(private readonly words: OutageWords, private readonly nowMs: () => number) {}

  /** Counts a failure, of `parts` parts, for `reason`, and says whether it is worth saying. */
  failed(reason: string, parts = 1): OutageNews {
    if (this.current === undefined) {
      this.current = { sinceMs: this.nowMs(), failures: 1, parts, reasons: new Set([reason]) };
      return 'began';
    }
    this.current.failures += 1;
    this.current.parts += parts;
    if (this.current.reasons.has(reason) || this.current.reasons.size >= limits.outageReasonsMax) return 'nothing new';
    this.current.reasons.add(reason);
    return 'new reason';
  }

  /**
   * Something worked: ends the outage, if there was one, and returns the line that says so,
   * with its counts and how long it lasted; undefined when nothing had failed.
   */
  recovered(): string | undefined {
    if (this.current === undefined) return undefined;
    const { sinceMs, failures, parts } = this.current;
    this.current = undefined;
    const seconds = ((this.nowMs() - sinceMs) / 1000).toFixed(1);
    const { again, failure, part } = this.words;
    const held = part === undefined ? '' : ` of ${count(parts, part)}`;
    return `${again}, after ${count(failures, failure)}${held} over ${seconds} s`;
  }
}

function count(n: number, [one, many]: Noun): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The log lines of answers refused for the database (503: away, or a "not now" SQLSTATE), at
 * most one a reason a minute, with how many were refused since the line before. The write path
 * says an outage once (the sequencer); a read refused on its own (a table held by an operator's
 * LOCK, ALTER or VACUUM FULL while nothing is written) was said nowhere, and a line for each
 * such answer was a storm under load (the observability review: 253 lines for one freeze).
 */

import { limits } from '../core/limits.ts';

export class ReadRefusals {
  private readonly lastSaid = new Map<string, { atMs: number; since: number }>();

  constructor(private readonly nowMs: () => number = () => Date.now(), private readonly intervalMs: number = limits.readRefusalLineIntervalMs) {}

  /**
   * Counts a refusal for `reason`; when a line is due, returns how many refusals of that reason
   * it stands for (this one and those unsaid since the last line), else undefined.
   */
  refused(reason: string): number | undefined {
    const now = this.nowMs();
    const said = this.lastSaid.get(reason);
    if (said !== undefined && now - said.atMs < this.intervalMs) {
      said.since += 1;
      return undefined;
    }
    const count = (said?.since ?? 0) + 1;
    this.lastSaid.set(reason, { atMs: now, since: 0 });
    return count;
  }
}

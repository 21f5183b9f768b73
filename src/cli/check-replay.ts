/**
 * `chipledger check --replay`: the state rebuilt from the log's events and held to the
 * database's, column by column. The re-check's other parts hold the state to itself and to
 * the events piece by piece; this sends every command the log records again through this
 * release's rules, in a database of its own on the same server (store/scratch-database.ts),
 * and compares the two (store/state-diff.ts). A change made around the ledger that keeps
 * every count in step (a licence's terms with its newest version's snapshot, say) is found
 * here, as what the events make differs from what the database holds.
 */
import { replayInvariant, replayLog } from '../ledger/replay/replay.ts';
import type { PoolClient } from '../store/pool.ts';
import { createScratchDatabase, ScratchDatabaseRefused } from '../store/scratch-database.ts';
import { stateDifferences } from '../store/state-diff.ts';
import type { Violation } from '../store/violations.ts';
import { Failure, type Output } from './output.ts';
import { createProgress } from './progress.ts';

export interface ReplayCheck {
  violations: Violation[];
  /** One sentence for the check's answer: what was replayed and compared. */
  note: string;
}

/**
 * Replays the log's first `size` events (its head's size: an event row past it is no leaf, and
 * the comparison names it as a row no event of the log makes), read through `source` (the
 * check's snapshot), and compares
 * the state they make with the database's. Where the replay stops short (an event this
 * release cannot make again), that event is the one violation, and the states are not
 * compared: every id made after it would differ.
 */
export async function replayCheck(source: PoolClient, ownerUrl: string, size: number, output: Output): Promise<ReplayCheck> {
  const scratch = await createScratchDatabase(ownerUrl, 'chipledger-check-replay').catch((error: unknown) => {
    throw error instanceof ScratchDatabaseRefused ? new Failure(error.message) : error;
  });
  try {
    const progress = createProgress('replaying', size, 'events', output.errStream);
    let report;
    try {
      report = await replayLog(source, scratch.pool, size, (done) => progress.update(done));
    } catch (error) {
      progress.abandon();
      throw error;
    }
    if (report.divergence !== undefined) {
      progress.abandon();
      return {
        violations: [report.divergence],
        note: `The replay made the log's first ${report.replayed.toLocaleString('en-US')} of ${size.toLocaleString('en-US')} events again and stopped at event ${report.replayed}; the state was not compared with what the events make.`,
      };
    }
    progress.finish();
    const violations = await stateDifferences(source, scratch.pool, replayInvariant);
    return { violations, note: `The replay made all ${size.toLocaleString('en-US')} events again as the log records them, and the state was compared with what they make, row by row.` };
  } finally {
    await scratch.drop();
  }
}

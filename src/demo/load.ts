/**
 * Loads the demo scenario (scenario.ts) through the ledger, command by command, so all of it is
 * in the event stream exactly as if people had done it through the API; nothing is written to
 * the tables directly.
 *
 * Loading twice does not duplicate: the loader holds an advisory lock (two processes loading at
 * once take turns, the second waiting at most limits.demoLoadLockWaitMsMax) and skips when demo
 * data is already there. Crash notes: the load is many commands, each committed on its own; a
 * crash part way leaves a partial demo, which demoState() reports as 'partial' (the caller says
 * so; nothing is guessed or repaired).
 *
 * This file decides whether and when to load, and is the demo's surface; the steps of one load
 * are loader.ts's, the demo's parties and their tokens parties.ts's.
 */
import { limits } from '../core/limits.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { describeHolders, formatWait, takeAdvisoryLock, terminateSql } from '../store/advisory-locks.ts';
import { demoCounts, demoLoadLockKey, releaseDemoLoadLock } from '../store/demo-queries.ts';
import type { Pool, PoolClient } from '../store/pool.ts';
import { logHeadSize } from '../store/tlog-tables.ts';
import { Loader, type LoadedDemo, type LoaderOptions } from './loader.ts';
import { DemoLoadError } from './parties.ts';
import * as scenario from './scenario.ts';

export { holdsDemo } from '../store/demo-queries.ts';
export { createDemoTokens, DemoLoadError, demoParties, type DemoParty, type DemoToken } from './parties.ts';

export type DemoState = 'absent' | 'partial' | 'complete';

export type DemoResult =
  | LoadedDemo
  | { loaded: false; state: Exclude<DemoState, 'absent'> };

export interface DemoOptions extends LoaderOptions {
  /** How long to wait for another chipledger's demo load (limits.demoLoadLockWaitMsMax). */
  lockWaitMs?: number;
  /** After how long that wait is said (limits.lockWaitNoticeDelayMs). */
  lockWaitNoticeAfterMs?: number;
}

/**
 * Whether the demo is loaded: absent, loaded in full, or cut short by a crash. "In full" is
 * judged by what only the loader makes and what people using the demo cannot undo: all its
 * organisations, sites and shipments, the expired shipment and the decommissioned and lost
 * units (the last steps of the load).
 */
export async function demoState(pool: Pool): Promise<DemoState> {
  const found = await demoCounts(pool);
  if (found.organisations === 0) return 'absent';
  const complete = found.organisations === scenario.organisations.length && found.sites === scenario.sites.length
    && found.shipments === scenario.shipments.length && found.expired >= 1 && found.ended === 2;
  return complete ? 'complete' : 'partial';
}

/**
 * Loads the demo unless it is there already. Refused (DemoLoadError) on a database that holds
 * other data: the demo's authority admins could make tokens for its real organisations, and
 * every server on it would serve its real events as demo ones. A database a server started
 * on is still empty: its log key and the empty log's checkpoint are not events.
 */
export async function loadDemo(ledger: Ledger, options: DemoOptions = {}): Promise<DemoResult> {
  const client = await ledger.pool.connect();
  try {
    await takeDemoLock(client, options);
    const state = await demoState(ledger.pool);
    if (state !== 'absent') return { loaded: false, state };
    // Under the lock: a load running elsewhere has either finished (the demo is there) or not
    // begun, so events found here are another's. Every row comes from an event.
    const events = await logHeadSize(ledger.pool);
    if (events > 0) throw new DemoLoadError(`couldn't load the demo: this database holds non-demo data (${events.toLocaleString('en-US')} events); the demo loads only into an empty database`);
    return await new Loader(ledger, options).run();
  } finally {
    await releaseDemoLoadLock(client).catch(() => {});
    client.release();
  }
}

/**
 * Waits for another chipledger's demo load within its bound, saying after a few seconds whose
 * session holds its lock; past the bound, refuses naming it (a load frozen or cut off keeps
 * its session-level lock for as long as that lasts, and no timeout of PostgreSQL's ends it).
 */
async function takeDemoLock(client: PoolClient, options: DemoOptions): Promise<void> {
  const waitMs = options.lockWaitMs ?? limits.demoLoadLockWaitMsMax;
  const outcome = await takeAdvisoryLock(client, demoLoadLockKey, {
    waitMs,
    noticeAfterMs: options.lockWaitNoticeAfterMs ?? limits.lockWaitNoticeDelayMs,
    notice: options.log ?? ((line: string) => void process.stderr.write(`chipledger: ${line}\n`)),
    what: "another chipledger's demo load",
  });
  if (outcome.kind === 'locked') return;
  const terminate = terminateSql(outcome.holders);
  const ending = terminate === undefined ? '' : `, or end its session (${terminate})`;
  throw new DemoLoadError(`couldn't load the demo: waited ${formatWait(waitMs)} for another chipledger's demo load, whose lock is still held by ${describeHolders(outcome.holders)}; `
    + `run this command again once that load has finished, or if it is frozen or gone, stop it${ending}`);
}

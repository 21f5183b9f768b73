/**
 * The server's sweep timer while another writer holds the head lock: a sweep is a batch of
 * its own, so a sweep queued at every tick would wait out the lock alone, one after another,
 * with every command behind them. A tick is skipped while the last sweep is unanswered.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { createPool } from '../store/pool.ts';
import { Ledger } from './ledger.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const tickMs = 50;
const stallMs = 1_000;

it('queues no second sweep while the first waits for the head lock', async () => {
  const pool = createPool({ url: database.url, connectionsMax: 2, applicationName: 'sweep-timer' });
  const holder = await database.pool.connect();
  let ledger: Ledger | undefined;
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM log_head WHERE id = 1 FOR UPDATE');
    ledger = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: world.clock, rowCacheRows: 0, sweepIntervalMs: tickMs, headLockWaitMs: 5_000 });
    await sleep(stallMs);
    // Twenty ticks have passed; the first sweep is in flight, waiting for the lock.
    const queued = ledger.sequencer.stats.queueDepth;
    await holder.query('ROLLBACK');
    expect(queued, 'sweeps queued behind the first').toBe(0);
  } finally {
    holder.release();
    await ledger?.close();
    await pool.end();
  }
});

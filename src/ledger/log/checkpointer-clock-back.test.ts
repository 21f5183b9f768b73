/**
 * The signer skips a tick when another process signed within most of a tick, judged by the
 * database's clock (clock_timestamp() - created_at). When that clock has stepped back since
 * the newest checkpoint was signed (NTP on the database host, a failover to a standby whose
 * clock lags), the age is negative: it is no recent signing, and a restarted server (which
 * signed nothing yet, so every checkpoint is another's) signs at its next tick, not once the
 * database's clock has caught up.
 */
import { describe, expect, it } from 'vitest';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';
import type { TestDatabase } from '../../../test/database.ts';
import { createPool, type Pool } from '../../store/pool.ts';
import { generateSignerKey } from '../../tlog/index.ts';
import { Ledger } from '../ledger.ts';
import { withTriggerOff } from '../../../test/support/tamper.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, db) => { world = made; database = db; });

const logKey = generateSignerKey('log.chipledger.test').signerKey;
const intervalMs = 1_000;
/** Long enough for several ticks of intervalMs; a signer skipping them all signs nothing in it. */
const waitMs = 4 * intervalMs;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const site = (ledger: Ledger, name: string) => ledger.submit('site.register', { name, province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10 }, world.actors.alpha);

async function newestCheckpointSize(): Promise<number> {
  return (await database.pool.query<{ size: number | null }>('SELECT max(size)::int AS size FROM tlog_checkpoints')).rows[0]!.size ?? 0;
}

async function headSize(): Promise<number> {
  return (await database.pool.query<{ size: number }>('SELECT size::int AS size FROM log_head')).rows[0]!.size;
}

/** Polls until the newest checkpoint covers the head, or waitMs has passed. */
async function covered(): Promise<boolean> {
  const started = performance.now();
  while (performance.now() - started < waitMs) {
    if ((await newestCheckpointSize()) >= (await headSize())) return true;
    await sleep(100);
  }
  return false;
}

async function openSigner(name: string): Promise<{ ledger: Ledger; pool: Pool }> {
  const pool = createPool({ url: database.url, connectionsMax: 3, applicationName: name });
  return { pool, ledger: await Ledger.open({ pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKey, checkpointIntervalMs: intervalMs }) };
}

describe('the database\'s clock stepped back', () => {
  it('a restarted server signs at its next tick, though the newest checkpoint reads as signed in the future', async () => {
    const first = await openSigner('chipledger-test-first');
    try {
      expectOk(await site(first.ledger, 'DC-1'));
      expect(await covered()).toBe(true);
    } finally {
      await first.ledger.close();
      await first.pool.end();
    }
    // The database's clock stepped back an hour reads the same as the newest checkpoint dated an hour ahead of it.
    await withTriggerOff(database.pool, 'tlog_checkpoints', () => database.pool.query("UPDATE tlog_checkpoints SET created_at = created_at + interval '1 hour' WHERE size = (SELECT max(size) FROM tlog_checkpoints)"));
    const restarted = await openSigner('chipledger-test-restarted');
    try {
      expectOk(await site(restarted.ledger, 'DC-2'));
      expect(await covered()).toBe(true);
      expect(restarted.ledger.checkpointer!.stats.signed).toBeGreaterThan(0);
    } finally {
      await restarted.ledger.close();
      await restarted.pool.end();
    }
  });
});

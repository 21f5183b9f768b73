/**
 * A ledger of its own on a test's database, as a second server process would open it, signing
 * with `signerKey` (and announcing it with `previous`) only when told: its checkpointer's
 * interval is an hour. It seals with the tests' sealing key, as the world's ledger does (sealing-key.ts).
 * Closing it ends its pool; a refused open ends the pool too.
 */
import type { Clock } from '../../src/core/clock.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import { createPool } from '../../src/store/pool.ts';
import { testSealingKey } from './sealing-key.ts';

export async function openSigningLedger(url: string, clock: Clock, signerKey: string, previous?: string, applicationName = 'signing-ledger'): Promise<Ledger> {
  const pool = createPool({ url, connectionsMax: 3, applicationName });
  try {
    const ledger = await Ledger.open({ pool, clock, logSignerKey: signerKey, ...(previous ? { logPreviousSignerKey: previous } : {}), logSealingKey: testSealingKey, checkpointIntervalMs: 3_600_000 });
    const close = ledger.close.bind(ledger);
    ledger.close = async () => {
      await close();
      await pool.end();
    };
    return ledger;
  } catch (error) {
    await pool.end();
    throw error;
  }
}

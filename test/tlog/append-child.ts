/**
 * A ledger process to kill: opens a Ledger with a log signing key (checkpoints every 50 ms)
 * on the database it is given and books shipments from several concurrent workers without
 * end, printing one line per acknowledged booking after the answer came back:
 *
 *   node --import tsx test/tlog/append-child.ts <database URL> '<config JSON>'
 *
 * Lines: {"type":"ready"} once open, then {"type":"ack","id":"SHP-…","batch":N} per accepted
 * booking, N the size of the last batch committed (batches of 256 events and more write
 * their events by COPY).
 * Stdout to a pipe is written synchronously on Linux, so a printed line survives a kill -9.
 */
import { ManualClock } from '../../src/core/clock.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import type { Actor } from '../../src/ledger/permissions.ts';
import { createPool } from '../../src/store/pool.ts';
import { testSealingKey } from '../support/sealing-key.ts';

export interface AppendChildConfig {
  clock: string;
  signerKey: string;
  exporter: Actor;
  productId: string;
  exportAllocationId: string;
  importAllocationId: string;
  workers: number;
}

const [url, configText] = process.argv.slice(2);
if (!url || !configText) {
  process.stderr.write('usage: append-child.ts <database URL> <config JSON>\n');
  process.exit(2);
}
const config = JSON.parse(configText) as AppendChildConfig;
const pool = createPool({ url, connectionsMax: 4, applicationName: 'tlog-append-child' });
const ledger = await Ledger.open({
  logSealingKey: testSealingKey, pool, clock: new ManualClock(config.clock), logSignerKey: config.signerKey, checkpointIntervalMs: 50,
  onError: (error, context) => process.stderr.write(`${context}: ${String(error)}\n`),
});
process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);

async function worker(): Promise<never> {
  for (;;) {
    const answer = await ledger.submit('shipment.book', {
      exportAllocationId: config.exportAllocationId, importAllocationId: config.importAllocationId, productId: config.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    }, config.exporter);
    if (!answer.ok) {
      process.stderr.write(`booking refused: ${answer.error.code}: ${answer.error.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${JSON.stringify({ type: 'ack', id: String(answer.body.shipmentId), batch: ledger.sequencer.stats.lastBatchSize })}\n`);
  }
}

await Promise.all(Array.from({ length: config.workers }, worker));

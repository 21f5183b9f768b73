/**
 * A 2,048-leaf batch written two ways, alternating batch by batch on one database of a
 * durable embedded PostgreSQL: the leaves hashed into tiles first and then the batch sent
 * (what every batch did before), or the batch's events sent first and the leaves hashed
 * while they travel (writeBatchAndCommit given the log as a function, what a big batch
 * does now). Times from after the lock to COMMIT. Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/hash-overlap.ts [batches]
 */
import { TransparencyLog } from '../../src/ledger/log/transparency-log.ts';
import { writeBatchAndCommit, type EventWrite } from '../../src/store/batch-writes.ts';
import { beginBatch } from '../../src/store/head-lock.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { percentile } from '../stats.ts';
import { entry } from '../tlog-append.ts';

const batches = Number(process.argv[2] ?? 100);
const batchLeaves = 2048;
const server = await startBenchServer('hash-overlap');
try {
  const pool = createPool({ url: await server.createDatabase('hash_overlap'), connectionsMax: 2, applicationName: 'hash-overlap' });
  await migrate(pool);
  const log = new TransparencyLog(pool);
  const client = await pool.connect();
  const spent: Record<string, number[]> = { first: [], overlapped: [] };
  for (let batch = 0; batch < batches; batch += 1) {
    const mode = batch % 2 === 0 ? 'first' : 'overlapped';
    const { head } = await beginBatch(client);
    const events: EventWrite[] = Array.from({ length: batchLeaves }, (_, offset) => ({
      seq: head.size + offset, at: '2026-02-01T00:00:00.000Z', kind: 'shipment.book', actor: 'TOK-bench', subject_id: `SHP-${head.size + offset}`, org_ids: ['ORG-1'], canonical: entry(head.size + offset),
    }));
    const started = performance.now();
    const appendLeaves = async () => {
      const appended = await log.append(client, head, events.map((event) => ({ seq: event.seq, canonical: event.canonical })));
      return { tiles: appended.tiles, head: { size: head.size + batchLeaves, root: appended.root }, seal: appended.seal };
    };
    await writeBatchAndCommit(client, { inserted: {}, updated: {}, unitsChanges: [], unitStages: [], replacedPartiesOf: [], events, idempotency: [] }, mode === 'first' ? await appendLeaves() : appendLeaves);
    spent[mode]!.push(performance.now() - started);
  }
  for (const [mode, list] of Object.entries(spent)) {
    console.log(`${mode === 'first' ? 'hashed first' : 'hashed while the events travel'}: p50 ${percentile(Float64Array.from(list).sort(), 50).toFixed(2)} ms a batch`);
  }
  client.release();
  await pool.end();
} finally {
  await server.stop();
}

import { TransparencyLog } from '../../src/ledger/transparency-log.ts';
import { writeBatchAndCommit, type EventWrite } from '../../src/store/batch-writes.ts';
import { beginBatch } from '../../src/store/ledger-tables.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createPool } from '../../src/store/pool.ts';
import { startBenchServer } from '../database.ts';
import { percentile } from '../stats.ts';
import { entry } from '../tlog-append.ts';

const batches = Number(process.argv[2] ?? 100);
const n = 2048;
const server = await startBenchServer('overlap');
try {
  const pool = createPool({ url: await server.createDatabase('o'), connectionsMax: 2, applicationName: 'o' });
  await migrate(pool);
  const log = new TransparencyLog(pool);
  const client = await pool.connect();
  const spent: Record<string, number[]> = { first: [], overlapped: [] };
  for (let b = 0; b < batches; b += 1) {
    const mode = b % 2 === 0 ? 'first' : 'overlapped';
    const { head } = await beginBatch(client);
    const events: EventWrite[] = Array.from({ length: n }, (_, o) => ({ seq: head.size + o, at: '2026-02-01T00:00:00.000Z', kind: 'shipment.book', actor: 'TOK-bench', subject_id: `SHP-${head.size + o}`, org_ids: ['ORG-1'], canonical: entry(head.size + o) }));
    const t = performance.now();
    const appendLeaves = async () => {
      const a = await log.append(client, head, events.map((e) => ({ seq: e.seq, canonical: e.canonical })));
      return { tiles: a.tiles, head: { size: head.size + n, root: a.root } };
    };
    await writeBatchAndCommit(client, { inserted: {}, updated: {}, endedShipments: [], custodyChanges: [], replacedPartiesOf: [], events, idempotency: [] }, mode === 'first' ? await appendLeaves() : appendLeaves);
    spent[mode]!.push(performance.now() - t);
  }
  for (const [mode, list] of Object.entries(spent)) console.log(mode, 'p50', percentile(Float64Array.from(list).sort(), 50).toFixed(2));
  client.release();
  await pool.end();
} finally { await server.stop(); }

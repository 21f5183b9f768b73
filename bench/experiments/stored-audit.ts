/**
 * Where the stored audit's time goes, on one log of N leaves built once (as `bench tlog`
 * builds it) on a durable embedded PostgreSQL: the events read alone (readEntriesPacked,
 * chunk by chunk, nothing hashed), the level-0 tiles read alone, and the whole audit
 * (auditStoredLog) several times, each beside raw SHA-256 over the same inputs in the same
 * run. Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/stored-audit.ts [leaves] [audits]
 */
import { hash } from 'node:crypto';
import { auditStoredLog, type AuditOptions } from '../../src/ledger/log/audit.ts';
import { limits } from '../../src/core/limits.ts';
import { unpackEntries } from '../../src/store/packed-entries.ts';
import { createPool } from '../../src/store/pool.ts';
import { readEntriesPacked, readHead, readTileRange } from '../../src/store/tlog-tables.ts';
import { generateSignerKey, tileWidth } from '../../src/tlog/index.ts';
import { startBenchServer } from '../database.ts';
import { median } from '../stats.ts';
import { sustainedAppends } from '../tlog-append.ts';

const leaves = Number(process.argv[2] ?? 1_000_000);
const audits = Number(process.argv[3] ?? 5);
const server = await startBenchServer('stored-audit');
try {
  const pool = createPool({ url: await server.createDatabase('stored_audit'), connectionsMax: 8, applicationName: 'stored-audit' });
  const key = generateSignerKey('bench.chipledger/log');
  await sustainedAppends(pool, key.signerKey, leaves, 2048, () => {});
  await pool.query('VACUUM (ANALYZE) events, tlog_tiles');
  await pool.query('CHECKPOINT');
  const head = await readHead(pool);
  const roots = new Map([[head.size, head.root]]);
  const chunkLeaves = limits.auditTilesPerChunk * tileWidth;
  const timed = async (work: () => Promise<unknown>) => {
    const started = performance.now();
    await work();
    return (performance.now() - started) / 1000;
  };
  // Raw SHA-256 over inputs of the same sizes (a leaf input per entry, a node input per
  // inner node): the bench's ratio's numerator.
  const entries: Buffer[] = [];
  for (let from = 0; from < head.size; from += chunkLeaves) {
    const packed = await readEntriesPacked(pool, from, Math.min(head.size, from + chunkLeaves));
    for (const entry of unpackEntries(packed)) entries.push(Buffer.concat([Buffer.of(0), entry]));
  }
  const node = Buffer.alloc(65, 1);
  const raw = () => {
    const started = performance.now();
    for (const input of entries) hash('sha256', input, 'buffer');
    for (let i = 0; i < head.size - 1; i += 1) hash('sha256', node, 'buffer');
    return (performance.now() - started) / 1000;
  };
  const rows: Array<Record<string, number>> = [];
  for (let run = 0; run < audits; run += 1) {
    const events = await timed(async () => {
      for (let from = 0; from < head.size; from += chunkLeaves) await readEntriesPacked(pool, from, Math.min(head.size, from + chunkLeaves));
    });
    const tiles = await timed(async () => {
      for (let first = 0; first * tileWidth < head.size; first += limits.auditTilesPerChunk) await readTileRange(pool, 0, first, limits.auditTilesPerChunk);
    });
    const auditWith = (options: AuditOptions) => timed(async () => {
      const result = await auditStoredLog(pool, head.size, roots, options);
      if (result.failure) throw new Error(result.failure.message);
    });
    const oneWorker = await auditWith({ workers: 1 });
    const audit = await auditWith({});
    const threeWorkers = await auditWith({ workers: 3 });
    const local = await auditWith({ workerFromEntries: Number.POSITIVE_INFINITY });
    const rawSeconds = raw();
    rows.push({ events, tiles, audit, raw: rawSeconds, ratio: rawSeconds / audit });
    console.log(`run ${run + 1}: events read ${events.toFixed(2)} s, level-0 tiles read ${tiles.toFixed(2)} s, audit ${audit.toFixed(2)} s (one worker ${oneWorker.toFixed(2)} s, three ${threeWorkers.toFixed(2)} s, in this thread ${local.toFixed(2)} s), raw SHA-256 ${rawSeconds.toFixed(2)} s: ${(100 * rawSeconds / audit).toFixed(1)} % of raw`);
  }
  console.log(`median: audit ${median(rows.map((row) => row.audit!)).toFixed(2)} s, ${(100 * median(rows.map((row) => row.ratio!))).toFixed(1)} % of raw`);
  await pool.end();
} finally {
  await server.stop();
}

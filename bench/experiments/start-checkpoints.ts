/**
 * A server's start-up log check on a log with a signed checkpoint at every size (as a log
 * whose events come more than a second apart keeps, or a steady one after a day), checking
 * every checkpoint (what `chipledger check` does) against the newest ones and every
 * announcement (a server's start, limits.startCheckCheckpointsMax), alternating, on one
 * durable embedded PostgreSQL. Each run prints the most heap and RSS the process held while
 * it ran (sampled every 5 ms, after a GC when --expose-gc allows): `chipledger check` reads
 * its checkpoints a chunk of the audit at a time, and must not grow with them. Not part of
 * `npm run bench`.
 *
 *   node --expose-gc --import tsx bench/experiments/start-checkpoints.ts [events] [runs]
 */
import { limits } from '../../src/core/limits.ts';
import { checkLogOnStart, type CheckpointScope } from '../../src/ledger/log/check.ts';
import { TransparencyLog } from '../../src/ledger/log/transparency-log.ts';
import { createPool } from '../../src/store/pool.ts';
import { formatKeyId, generateSignerKey, parseSignerKey } from '../../src/tlog/index.ts';
import { formatCheckpoint, signNote } from '../../src/tlog/index.ts';
import { leafHash, nodeHash } from '../../src/tlog/hash.ts';
import { startBenchServer } from '../database.ts';
import { sustainedAppends } from '../tlog-append.ts';

const events = Number(process.argv[2] ?? 30_000);
const runs = Number(process.argv[3] ?? 3);
const server = await startBenchServer('start-checkpoints');
try {
  const pool = createPool({ url: await server.createDatabase('start_checkpoints'), connectionsMax: 4, applicationName: 'start-checkpoints' });
  const key = generateSignerKey('start-checkpoints.example/log');
  await sustainedAppends(pool, key.signerKey, events, 2_048, () => {});
  // A checkpoint at every size the appends' checkpointer did not sign, by the log's key.
  const signer = parseSignerKey(key.signerKey);
  const frontier: Array<{ height: number; hash: Buffer }> = [];
  const rows: { size: number[]; root: Buffer[]; note: string[] } = { size: [], root: [], note: [] };
  for (let from = 0; from < events; from += 10_000) {
    const entries = (await pool.query<{ canonical: Buffer }>('SELECT canonical FROM events WHERE seq >= $1 AND seq < $2 ORDER BY seq', [from, from + 10_000])).rows;
    entries.forEach((entry, offset) => {
      let node = { height: 0, hash: leafHash(entry.canonical) };
      while (frontier.length > 0 && frontier.at(-1)!.height === node.height) node = { height: node.height + 1, hash: nodeHash(frontier.pop()!.hash, node.hash) };
      frontier.push(node);
      let root = frontier.at(-1)!.hash;
      for (let at = frontier.length - 2; at >= 0; at -= 1) root = nodeHash(frontier[at]!.hash, root);
      const size = from + offset + 1;
      rows.size.push(size);
      rows.root.push(root);
      rows.note.push(signNote(formatCheckpoint({ origin: signer.name, size, rootHash: root, extensions: [] }), signer));
    });
    await pool.query(`INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) SELECT s, r, $3, n FROM unnest($1::bigint[], $2::bytea[], $4::text[]) AS t(s, r, n) ON CONFLICT DO NOTHING`,
      [rows.size, rows.root, formatKeyId(signer.keyId), rows.note]);
    rows.size = [];
    rows.root = [];
    rows.note = [];
  }
  await pool.query('VACUUM ANALYZE tlog_checkpoints');
  const stored = Number((await pool.query('SELECT count(*) AS n FROM tlog_checkpoints')).rows[0].n);
  console.log(`${events.toLocaleString('en-US')} events, ${stored.toLocaleString('en-US')} checkpoints; ${server.description}`);
  // The plan of one chunk's read of checkpoints (tlog-tables.ts listCheckpointsBetween).
  const plan = await pool.query(`EXPLAIN SELECT * FROM tlog_checkpoints WHERE size >= $1 AND size <= $2 ORDER BY size, created_at`, [Math.floor(events / 2), Math.floor(events / 2) + 16_383]);
  console.log(`a chunk's checkpoints are read by: ${plan.rows.map((row: { 'QUERY PLAN': string }) => row['QUERY PLAN'].trim()).join(' / ')}`);
  const scopes: Array<[string, CheckpointScope]> = [['every checkpoint (check)', 'all'], [`the newest ${limits.startCheckCheckpointsMax} by size, signing order and cosignature, and the announcements (a start)`, { newest: limits.startCheckCheckpointsMax }]];
  for (let run = 1; run <= runs; run += 1) {
    for (const [what, scope] of scopes) {
      global.gc?.();
      const before = process.memoryUsage();
      const peak = { heapUsed: before.heapUsed, rss: before.rss };
      const sampler = setInterval(() => {
        const now = process.memoryUsage();
        peak.heapUsed = Math.max(peak.heapUsed, now.heapUsed);
        peak.rss = Math.max(peak.rss, now.rss);
      }, 5);
      const started = performance.now();
      const cpu = process.cpuUsage();
      const checked = await checkLogOnStart(pool, new TransparencyLog(pool), [], scope);
      const used = process.cpuUsage(cpu);
      clearInterval(sampler);
      const mb = (bytes: number) => Math.round(bytes / 1048576);
      console.log(`run ${run}: ${what}: ${checked.checkpoints.toLocaleString('en-US')} re-verified in ${Math.round(performance.now() - started)} ms (CPU ${Math.round((used.user + used.system) / 1000)} ms); `
        + `heap used ${mb(before.heapUsed)} MB before, at most ${mb(peak.heapUsed)} MB during; rss ${mb(before.rss)} MB before, at most ${mb(peak.rss)} MB during`);
    }
  }
  await pool.end();
} finally {
  await server.stop();
}

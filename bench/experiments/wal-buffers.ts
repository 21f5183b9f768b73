/**
 * What the embedded server's wal_buffers (store/embedded.ts) does to a 100,000-serial manifest's
 * units COPY: servers with the product's setting and with PostgreSQL's default (-1: shared_buffers
 * / 32) in turn, each a fresh durable server with the real schema and one booked shipment, the
 * COPY timed `runs` times in transactions rolled back (their WAL is written all the same). Also
 * the WAL one COPY writes, and how often the backend found the WAL buffers full and wrote them
 * out itself (pg_stat_wal.wal_buffers_full), which is what the setting is for.
 *
 *   node --import tsx bench/experiments/wal-buffers.ts [rounds] [runs]
 */
import { copyIn, copyStatement, encodeCopyBinary, type CopyColumn } from '../../src/store/copy-binary.ts';
import { startBenchServer } from '../database.ts';
import { bookManifestShipment } from './manifest-shipment.ts';
import { median, round } from '../stats.ts';

const serialsCount = 100_000;
const rounds = Number(process.argv[2] ?? 2);
const runs = Number(process.argv[3] ?? 7);

const unitColumns: CopyColumn[] = [
  { name: 'serial', type: 'text' }, { name: 'gpu_uuid', type: 'text' }, { name: 'product_id', type: 'text' }, { name: 'recipient_org_id', type: 'text' },
  { name: 'custody', type: 'text' }, { name: 'shipment_id', type: 'text' }, { name: 'site_id', type: 'text' }, { name: 'updated_seq', type: 'int8' },
];

const configurations: Array<{ name: string; settings?: Record<string, string> }> = [
  { name: 'the product\'s wal_buffers' },
  { name: 'PostgreSQL\'s default wal_buffers', settings: { wal_buffers: '-1' } },
];

console.log(`units COPY of ${serialsCount.toLocaleString('en-US')} serials, ${runs} runs a server, rolled back; ${rounds} rounds of each configuration in turn`);
for (let roundIndex = 0; roundIndex < rounds; roundIndex += 1) {
  for (const configuration of configurations) {
    const server = await startBenchServer('wal-buffers', configuration.settings ? { settings: configuration.settings } : {});
    try {
      const { pool, productId, recipientOrgId, shipmentId, serials } = await bookManifestShipment(server, 'wal-buffers', serialsCount);
      const units = encodeCopyBinary(unitColumns, serials.map((serial) => [serial, null, productId, recipientOrgId, 'licensed', shipmentId, null, 1]));
      const client = await pool.connect();
      try {
        const setting = (await client.query<{ wal_buffers: string }>('SHOW wal_buffers')).rows[0]!.wal_buffers;
        const fullBefore = Number((await client.query<{ full: string }>('SELECT wal_buffers_full AS full FROM pg_stat_wal')).rows[0]!.full);
        const times: number[] = [];
        let walBytes = 0;
        for (let run = 0; run < runs; run += 1) {
          await client.query('BEGIN');
          const { lsn } = (await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn() AS lsn')).rows[0]!;
          const started = performance.now();
          await copyIn(client, copyStatement('units', unitColumns), units);
          times.push(performance.now() - started);
          walBytes = Number((await client.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1) AS bytes', [lsn])).rows[0]!.bytes);
          await client.query('ROLLBACK');
        }
        const full = Number((await client.query<{ full: string }>('SELECT wal_buffers_full AS full FROM pg_stat_wal')).rows[0]!.full) - fullBefore;
        console.log(`  ${configuration.name} (${setting}): median ${round(median(times), 0)} ms (${times.map((time) => round(time, 0)).join(', ')}); ${round(walBytes / 1e6, 1)} MB of WAL a COPY; WAL buffers found full ${full.toLocaleString('en-US')} times in ${runs}`);
      } finally {
        client.release();
        await pool.end();
      }
    } finally {
      await server.stop();
    }
  }
}

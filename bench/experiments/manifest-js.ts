/**
 * Where a 100,000-serial manifest's JavaScript goes, stage by stage, without PostgreSQL:
 * the input's validation (schemas-fast.ts for a list of bare serials, as the sequencer does), the serials as keys for the batch's load, the handler
 * (attachSerials into a fresh BatchState), the rows to write (changedRows), the COPY
 * encoding of the units (the columns of store/batch-writes.ts), and the
 * event's digest of the serials. The end-to-end time is in `npm run bench -- ledger`; this
 * is the part of it that is ours. Median of the runs, each stage on fresh inputs.
 *
 *   node --import tsx bench/experiments/manifest-js.ts [runs]
 */
import { attachSerials } from '../../src/ledger/handlers/manifests.ts';
import { manifestKeys } from '../../src/ledger/handlers/manifests.ts';
import type { ShipmentRow } from '../../src/ledger/rows.ts';
import { commandSchemas } from '../../src/ledger/schemas.ts';
import { fastParse } from '../../src/ledger/schemas-fast.ts';
import { serialsDigest } from '../../src/ledger/events.ts';
import { BatchState } from '../../src/ledger/state.ts';
import { encodeCopyBinaryPieces, type CopyColumn } from '../../src/store/copy-binary.ts';
import { emptyKeys } from '../../src/store/batch-keys.ts';
import { median } from '../stats.ts';

const runs = Number(process.argv[2] ?? 7);
const serialsCount = 100_000;
const shipment: ShipmentRow = {
  id: 'S-1', exporter_org_id: 'ORG-1', recipient_org_id: 'ORG-2', product_id: 'PRD-1', origin: 'US', destination: 'CN',
  export_allocation_id: 'A-1', import_allocation_id: 'A-2', units: serialsCount, status: 'booked', booked_at: '2026-02-01T00:00:00.000Z',
  deadline: '2026-06-01T00:00:00.000Z', reference: null, serial_count: 0, demo: false, created_seq: 1, updated_seq: 1,
};
const unitColumns: CopyColumn[] = [
  { name: 'serial', type: 'text' }, { name: 'gpu_uuid', type: 'text' }, { name: 'product_id', type: 'text' }, { name: 'recipient_org_id', type: 'text' },
  { name: 'custody', type: 'text' }, { name: 'shipment_id', type: 'text' }, { name: 'site_id', type: 'text' }, { name: 'updated_seq', type: 'int8' },
  { name: 'ever_shipped', type: 'bool' },
];

const stages: Record<string, number[]> = {};
const timed = <T>(stage: string, work: () => T): T => {
  const started = performance.now();
  const result = work();
  (stages[stage] ??= []).push(performance.now() - started);
  return result;
};

for (let run = 0; run < runs; run += 1) {
  // A body as the HTTP layer hands it over: fresh strings from JSON.parse, as in a request.
  const body = JSON.parse(JSON.stringify({ shipmentId: 'S-1', serials: Array.from({ length: serialsCount }, (_, index) => `EXP-SN-${run}-${String(index).padStart(6, '0')}`) }));
  // As the sequencer parses it: a bare-serial manifest by schemas-fast.ts, the schema otherwise.
  const input = timed('validate', () => fastParse('manifest.attach', body)?.data ?? commandSchemas['manifest.attach'].parse(body));
  const keys = emptyKeys();
  timed('keys for the load', () => manifestKeys(input.serials, keys));
  const state = new BatchState({ organisations: [], products: [], tokens: [], licences: [], allocations: [], sites: [], shipments: [shipment], units: [] });
  state.begin();
  timed('handler (attachSerials)', () => attachSerials({ state, actor: { id: 'TOK-1', orgId: 'ORG-1', role: 'exporter' }, at: '2026-02-02T00:00:00.000Z', seq: 2 }, shipment, input.serials));
  const { inserted } = timed('rows to write (changedRows)', () => state.changedRows());
  // (Units only: since migration 075 a manifest writes no lines of its own.)
  // In pieces of 256 rows, each row's values made as its piece is encoded, as store/batch-writes.ts sends them.
  timed('COPY encoding, units', () => {
    let bytes = 0;
    for (const piece of encodeCopyBinaryPieces(unitColumns, inserted.units!, 256, 80 * serialsCount, (unit) => [unit.serial, unit.gpu_uuid, unit.product_id, unit.recipient_org_id, unit.custody, unit.shipment_id, unit.site_id, unit.updated_seq, unit.ever_shipped])) bytes += piece.length;
    return bytes;
  });
  timed('event digest of the serials', () => serialsDigest(input.serials));
}

let total = 0;
console.log(`manifest JavaScript, ${serialsCount.toLocaleString('en-US')} serials, median of ${runs} runs`);
for (const [stage, times] of Object.entries(stages)) {
  total += median(times);
  console.log(`  ${stage.padEnd(42)} ${median(times).toFixed(1).padStart(7)} ms`);
}
console.log(`  ${'sum of the medians'.padEnd(42)} ${total.toFixed(1).padStart(7)} ms`);

/**
 * RFC 8785 text of a booking's event body, as the ledger writes it (core/canonical-json.ts),
 * against the `canonicalize` package it replaced: microseconds per body, medians of 15 runs of
 * 20,000 bodies, the two alternating in each round.
 *
 *   node --import tsx bench/experiments/canonical-json.ts
 */
import canonicalize from 'canonicalize';
import { canonicalJson } from '../../src/core/canonical-json.ts';
import { eventBody } from '../../src/ledger/events.ts';
import { median } from '../stats.ts';

const bodies = Array.from({ length: 20_000 }, (_, index) => eventBody(index + 1, '2026-11-30T12:00:00.000Z', 'shipment.book', { id: 'TOK-EXP-1', orgId: 'ORG-EXPORTER-1', role: 'exporter' } as never, `S-${index}`, {
  exportAllocationId: 'A-US-1', importAllocationId: 'A-CN-1', productId: 'P-H200-SXM', units: 1 + (index % 10), deadline: '2026-12-07T12:00:00.000Z', reference: `PO-${index}`,
}, { shipmentId: `S-${index}`, recipientId: 'ORG-RECIPIENT-1', origin: 'US', destination: 'CN' }));

function timePerBody(write: (value: unknown) => string | undefined): number {
  const started = process.hrtime.bigint();
  let bytes = 0;
  for (const body of bodies) bytes += write(body)!.length;
  if (bytes === 0) throw new Error('nothing written');
  return Number(process.hrtime.bigint() - started) / 1_000 / bodies.length;
}

const runs: Record<'package' | 'ours', number[]> = { package: [], ours: [] };
for (let round = 0; round < 15; round += 1) {
  runs.package.push(timePerBody(canonicalize));
  runs.ours.push(timePerBody(canonicalJson));
}
const [before, after] = [median(runs.package), median(runs.ours)];
console.log(`canonicalize package: ${before.toFixed(2)} µs a booking's event body; canonicalJson: ${after.toFixed(2)} µs (${(before / after).toFixed(1)}× faster)`);
console.log(JSON.stringify({ packageMicros: before, oursMicros: after, ratio: before / after }));

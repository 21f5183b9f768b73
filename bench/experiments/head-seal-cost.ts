/**
 * What sealing one head costs (HeadSealer.seal: an HMAC-SHA-256 over the size and root, one a
 * batch a keyed process commits): 100,000 seals, five runs, the median per seal.
 *
 *   node --import tsx bench/experiments/head-seal-cost.ts
 */
import { HeadSealer } from '../../src/ledger/log/head-seal.ts';
import { generateSignerKey } from '../../src/tlog/index.ts';
import { median } from '../stats.ts';

const seals = 100_000;
const sealer = new HeadSealer(generateSignerKey('seal-cost.chipledger.test').signerKey);
const root = Buffer.alloc(32, 7);
const perSealUs: number[] = [];
for (let run = 0; run < 5; run += 1) {
  const started = performance.now();
  for (let size = 0; size < seals; size += 1) sealer.seal({ size, root });
  perSealUs.push(((performance.now() - started) * 1000) / seals);
}
console.log(`one seal: ${median(perSealUs).toFixed(2)} µs (median of five runs of ${seals.toLocaleString('en')}; runs: ${perSealUs.map((us) => us.toFixed(2)).join(', ')})`);

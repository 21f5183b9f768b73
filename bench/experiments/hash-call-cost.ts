/**
 * What one SHA-256 call costs against what the hashing itself costs: Node's one-shot
 * crypto.hash over a node hash's input (65 bytes), a leaf's (301 bytes, a 300-byte event),
 * and 1 MiB, whose throughput is the machine's hashing with no per-call cost worth the name.
 * The per-call time over the bulk rate's share for those blocks (SHA-256 pads an input to
 * whole 64-byte blocks: 65 bytes are two, 301 five) is what each call spends
 * outside the hashing (JavaScript's checks, the crossing into C++, the result's Buffer): the
 * part of the log's appends and audits that fewer, larger calls could save, if Node had them.
 * Median of the rounds.
 *
 *   node --import tsx bench/experiments/hash-call-cost.ts [rounds]
 */
import { hash } from 'node:crypto';
import { median } from '../stats.ts';

const rounds = Number(process.argv[2] ?? 5);
const sizes = [{ name: 'node input', bytes: 65, calls: 300_000 }, { name: 'leaf input', bytes: 301, calls: 200_000 }, { name: 'bulk', bytes: 1 << 20, calls: 100 }];

const nsPerCall = new Map<string, number[]>();
for (let round = 0; round < rounds; round += 1) {
  for (const { name, bytes, calls } of sizes) {
    const inputs = Array.from({ length: 64 }, (_, index) => Buffer.alloc(bytes, index));
    const started = process.hrtime.bigint();
    for (let call = 0; call < calls; call += 1) hash('sha256', inputs[call & 63]!, 'buffer');
    const list = nsPerCall.get(name) ?? [];
    list.push(Number(process.hrtime.bigint() - started) / calls);
    nsPerCall.set(name, list);
  }
}

const bulk = sizes.at(-1)!;
const nsPerByte = median(nsPerCall.get(bulk.name)!) / bulk.bytes;
console.log(`crypto.hash('sha256'), median of ${rounds} rounds; bulk rate ${(1e3 / nsPerByte).toFixed(0)} MB/s`);
for (const { name, bytes } of sizes.slice(0, -1)) {
  const perCall = median(nsPerCall.get(name)!);
  const blocks = Math.ceil((bytes + 9) / 64); // the input, the 0x80 byte and the 8-byte length
  const hashing = nsPerByte * 64 * blocks;
  console.log(`  ${name} (${bytes} bytes, ${blocks} blocks): ${perCall.toFixed(0)} ns a call, of which hashing at the bulk rate ${hashing.toFixed(0)} ns (${((100 * hashing) / perCall).toFixed(0)} %)`);
}

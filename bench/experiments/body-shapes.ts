/**
 * What parseJsonBody (src/server/body.ts) costs on the largest bodies of each shape the byte
 * bounds admit: many member names, escaped names, bare numbers, one long string, and the
 * largest real manifest, compact and indented. Medians of 3, in process. A body with many
 * names or values is refused before JSON.parse (limits.jsonBodyValuesMax); before that bound
 * the 8 MiB body of 700,000 names was parsed whole, holding the event loop for seconds.
 *
 *   node --import tsx bench/experiments/body-shapes.ts                    # this tree's body.ts
 *   node --import tsx bench/experiments/body-shapes.ts /other/tree/src/server/body.ts   # A/B
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const bodyModule = process.argv[2] === undefined ? new URL('../../src/server/body.ts', import.meta.url).href : pathToFileURL(resolve(process.argv[2])).href;
const { parseJsonBody } = (await import(bodyModule)) as { parseJsonBody: (body: Buffer) => unknown };
function median(f: () => unknown): string {
  const times: number[] = [];
  let outcome = 'parsed';
  for (let i = 0; i < 3; i += 1) {
    const s = performance.now();
    try { f(); outcome = 'parsed'; } catch (e) { outcome = `refused ${(e as { rule?: string }).rule}`; }
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  return `${times[1]!.toFixed(0)} ms (${outcome})`;
}
const n = 700_000;
const MAX = 24 * 1024 * 1024;
const entry = (i: number) => ({ serial: `${'S'.repeat(56)}-${String(i).padStart(7, '0')}`, gpuUuid: `GPU-${i.toString(16).padStart(8, '0')}-aaaa-bbbb-cccc-0123456789ab` });
const manifest = JSON.stringify({ shipmentId: 'S-1', serials: Array.from({ length: 100_000 }, (_, i) => entry(i)) });
const manifestIndented = JSON.stringify({ shipmentId: 'S-1', serials: Array.from({ length: 100_000 }, (_, i) => entry(i)) }, null, 8);
const shapes: Record<string, string> = {
  'names 700k (8 MiB)': '{"name":"x","o":{' + Array.from({ length: n }, (_, i) => `"a${i}":1`).join(',') + '}}',
  'escaped names 700k': '{"name":"x","o":{' + Array.from({ length: n }, (_, i) => `"\\u0061${i}":1`).join(',') + '}}',
  'names 2M (24 MiB)': '{"siteId":"x","serials":["A"],"o":{' + Array.from({ length: 2_000_000 }, (_, i) => `"a${i}":1`).join(',') + '}}',
  'zeros 24 MiB': '{"serials":[' + '0,'.repeat((MAX - 40) / 2) + '0]}',
  'one string 8 MiB': '{"name":"x","o":"' + 'a'.repeat(8_300_000) + '"}',
  'one string of colons/commas 24 MiB': '{"o":"' + ':,'.repeat((MAX - 40) / 2) + '"}',
  'escaped quotes 24 MiB': '{"o":"' + '\\"'.repeat((MAX - 40) / 2) + '"}',
  [`manifest 100k longest (${(manifest.length / 1e6).toFixed(1)} MB)`]: manifest,
  [`manifest 100k indented (${(manifestIndented.length / 1e6).toFixed(1)} MB)`]: manifestIndented,
};
for (const [label, text] of Object.entries(shapes)) {
  const body = Buffer.from(text);
  console.log(`${label}: ${body.length} bytes: parseJsonBody ${median(() => parseJsonBody(body))}`);
}

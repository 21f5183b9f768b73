/**
 * Where a proof request's time goes, layer by layer, on a log of `leaves` synthetic entries:
 * 1. without HTTP, one proof in each level-0 tile after Ledger.open (the tiles its start-up
 *    check proved are kept), counting the queries it sends;
 * 2. through the Fastify app with `inject` (routing, query parsing, the reply; no sockets):
 *    GET /v1/log/key against inclusion proofs;
 * 3. over HTTP against `chipledger serve` in its own process: one proof per tile first, then
 *    the same again, then the constant GET /v1/log/key. SERVE_FLAGS="--trace-gc" prints
 *    the server's garbage collections.
 * Not part of `npm run bench`.
 *
 *   node --import tsx bench/experiments/proof-route.ts [leaves]
 */
import { Agent, request } from 'node:http';
import { Ledger } from '../../src/ledger/ledger.ts';
import { buildServer } from '../../src/server/app.ts';
import { createPool } from '../../src/store/pool.ts';
import { readHead } from '../../src/store/tlog-tables.ts';
import { generateSignerKey } from '../../src/tlog/index.ts';
import { startBenchServer } from '../database.ts';
import { startServerProcess } from '../http-server.ts';
import { percentile } from '../stats.ts';
import { sustainedAppends } from '../tlog-append.ts';

const leaves = Number(process.argv[2] ?? 100_000);

async function time(name: string, count: number, run: (i: number) => Promise<unknown>): Promise<void> {
  const latencies = new Float64Array(count);
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    await run(i);
    latencies[i] = performance.now() - started;
  }
  latencies.sort();
  console.log(`${name.padEnd(34)} p50 ${percentile(latencies, 50).toFixed(3)} ms, p99 ${percentile(latencies, 99).toFixed(3)} ms`);
}

const key = generateSignerKey('bench.chipledger/log');
const server = await startBenchServer('proof-route');
const pool = createPool({ url: await server.createDatabase('proofs'), connectionsMax: 4, applicationName: 'proof-route' });
try {
  await sustainedAppends(pool, key.signerKey, leaves, 2_048, () => {});
  const { size } = await readHead(pool);
  const tiles = Math.floor(size / 256) - 1;
  // One leaf in each full level-0 tile but the first.
  const leafInTile = (i: number) => (i + 1) * 256 + ((i * 37) % 256);
  const inclusion = (i: number) => `/v1/log/proof/inclusion?index=${leafInTile(i)}&size=${size}`;

  const ledger = await Ledger.open({ pool, logSignerKey: key.signerKey, checkpointIntervalMs: 3_600_000 });
  let queries = 0;
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    queries += 1;
    return query(...args);
  };
  await time('no HTTP, first per tile', tiles, (i) => ledger.log.inclusionProof(leafInTile(i), size));
  console.log(`  ${queries} queries for ${tiles} proofs`);
  (pool as unknown as { query: unknown }).query = query;

  const app = await buildServer({ ledger, pool, logger: false });
  for (let pass = 0; pass < 2; pass += 1) {
    await time('inject GET /v1/log/key', tiles, () => app.inject({ method: 'GET', url: '/v1/log/key' }));
    await time('inject inclusion', tiles, (i) => app.inject({ method: 'GET', url: inclusion(i) }));
  }
  await app.close();
  await ledger.close();

  const databaseUrl = (pool as unknown as { options: { connectionString: string } }).options.connectionString;
  const serve = await startServerProcess({ databaseUrl, logSignerKey: key.signerKey, nodeFlags: process.env.SERVE_FLAGS?.split(' ') ?? [] });
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) => new Promise<void>((resolve, reject) => {
      const req = request(`${serve.url}${path}`, { agent }, (response) => {
        response.on('data', () => {});
        response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`${path}: ${response.statusCode}`))));
      });
      req.on('error', reject);
      req.end();
    });
    await get(`/v1/log/proof/inclusion?index=0&size=${size}`);
    await time('HTTP inclusion, first per tile', tiles, (i) => get(inclusion(i)));
    await time('HTTP inclusion, repeated', tiles, (i) => get(inclusion(i)));
    await time('HTTP GET /v1/log/key', tiles, () => get('/v1/log/key'));
    if (process.env.SERVE_FLAGS) console.log(serve.outputTail());
    agent.destroy();
  } finally {
    await serve.stop();
  }
} finally {
  await pool.end();
  await server.stop();
}

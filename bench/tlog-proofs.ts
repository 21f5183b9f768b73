/**
 * Proof latency over HTTP against the real server (its own process): inclusion and consistency proofs at the
 * log's full size, one request at a time on a keep-alive connection, timed at the client.
 * Cold: each request's leaf lies in a level-0 tile no earlier request touched, so its tile
 * comes from PostgreSQL; warm: the same requests again, full tiles now cached (the partial
 * tiles of the right edge are read on every request by design). Every proof is verified
 * (outside the timing) against the signed root.
 */
import { Agent, request } from 'node:http';
import type { Ledger } from '../src/ledger/ledger.ts';
import { startServerProcess } from './http-server.ts';
import type { Pool } from '../src/store/pool.ts';
import { leafHash, rootFromNodes, tileWidth, verifyConsistency, verifyInclusion, type NodeGetter } from '../src/tlog/index.ts';
import { entry } from './tlog-append.ts';
import { percentile, seededRandom } from './stats.ts';

export interface LatencyResult {
  requests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface ProofResult {
  size: number;
  inclusionCold: LatencyResult;
  inclusionWarm: LatencyResult;
  consistencyCold: LatencyResult;
  consistencyWarm: LatencyResult;
  /** The same warm inclusion proofs without HTTP: ledger.log.inclusionProof in this process. */
  inclusionInProcess: LatencyResult;
  /** The same inclusion proofs without HTTP, tiles not cached yet in this process: a tile read from PostgreSQL each. */
  inclusionInProcessCold: LatencyResult;
  /**
   * The floor under the HTTP figures: as many GET /v1/log/key (a constant line, no
   * database, no tree) on the same connection: what the server, the client and this
   * machine cost per request before any proof work.
   */
  keyReference: LatencyResult;
}

/** `count` leaf indexes in distinct full level-0 tiles other than tile 0 (a seeded shuffle), each at a random offset. */
function spreadIndexes(size: number, count: number, random: () => number): number[] {
  const tiles = Math.floor(size / tileWidth);
  const order = Array.from({ length: tiles - 1 }, (_, index) => index + 1);
  for (let i = order.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, Math.min(count, order.length)).map((tile) => tile * tileWidth + Math.floor(random() * tileWidth));
}

/** One keep-alive connection: the client's cost per request stays small and steady. */
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function get(base: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function timeRequests(base: string, paths: string[], check: (path: string, hashes: Buffer[]) => void): Promise<LatencyResult> {
  const latencies = new Float64Array(paths.length);
  const answers: Array<{ path: string; hashes: string[] }> = [];
  for (let i = 0; i < paths.length; i += 1) {
    const started = performance.now();
    const response = await get(base, paths[i]!);
    latencies[i] = performance.now() - started;
    if (response.status !== 200) throw new Error(`GET ${paths[i]} answered ${response.status}: ${response.body}`);
    answers.push({ path: paths[i]!, hashes: response.body.startsWith('{') ? (JSON.parse(response.body) as { hashes: string[] }).hashes : [] });
  }
  for (const answer of answers) if (answer.hashes.length > 0) check(answer.path, answer.hashes.map((hash) => Buffer.from(hash, 'base64')));
  latencies.sort();
  return { requests: paths.length, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: latencies[latencies.length - 1] ?? Number.NaN };
}

async function timeInProcess(ledger: Ledger, indexes: number[], size: number): Promise<LatencyResult> {
  const latencies = new Float64Array(indexes.length);
  for (let i = 0; i < indexes.length; i += 1) {
    const started = performance.now();
    await ledger.log.inclusionProof(indexes[i]!, size);
    latencies[i] = performance.now() - started;
  }
  latencies.sort();
  return { requests: indexes.length, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: latencies[latencies.length - 1] ?? Number.NaN };
}

/**
 * Runs the four phases against the real server (`chipledger serve`, in a process of its
 * own, so the client's heap and event loop do not land in its figures). `getNode` answers
 * tree nodes from memory (the audit's tiles), to compute the old roots consistency proofs
 * are checked with; `ledger` gives the in-process figure for comparison.
 */
export async function proofLatency(ledger: Ledger, pool: Pool, size: number, root: Buffer, getNode: NodeGetter, requests: number, signerKey: string): Promise<ProofResult> {
  const databaseUrl = (pool as unknown as { options: { connectionString: string } }).options.connectionString;
  const server = await startServerProcess({ databaseUrl, logSignerKey: signerKey, logLevel: 'warn' });
  const base = server.url;
  try {
    const random = seededRandom(6962);
    // Disjoint tiles for the two kinds, so the consistency proofs start cold too.
    const indexes = spreadIndexes(size, 2 * requests, random);
    const inclusion = indexes.slice(0, requests).map((index) => `/v1/log/proof/inclusion?index=${index}&size=${size}`);
    const consistency = indexes.slice(requests).map((from) => `/v1/log/proof/consistency?from=${from}&to=${size}`);
    const checkInclusion = (path: string, hashes: Buffer[]) => {
      const index = Number(/index=(\d+)/.exec(path)![1]);
      if (!verifyInclusion(leafHash(entry(index)), index, size, hashes, root)) throw new Error(`the inclusion proof at ${path} does not verify`);
    };
    const checkConsistency = (path: string, hashes: Buffer[]) => {
      const from = Number(/from=(\d+)/.exec(path)![1]);
      if (!verifyConsistency(from, size, hashes, rootFromNodes(from, getNode), root)) throw new Error(`the consistency proof at ${path} does not verify`);
    };
    // One request first so connection set-up is not in the cold figures.
    await get(base, `/v1/log/proof/inclusion?index=0&size=${size}`);
    const inclusionCold = await timeRequests(base, inclusion, checkInclusion);
    const inclusionWarm = await timeRequests(base, inclusion, checkInclusion);
    const consistencyCold = await timeRequests(base, consistency, checkConsistency);
    const consistencyWarm = await timeRequests(base, consistency, checkConsistency);
    // In this process the tiles are not cached yet: a cold pass, then the warm one.
    const inclusionInProcessCold = await timeInProcess(ledger, indexes.slice(0, requests), size);
    const inclusionInProcess = await timeInProcess(ledger, indexes.slice(0, requests), size);
    const keyReference = await timeRequests(base, Array.from({ length: requests }, () => '/v1/log/key'), () => {});
    return { size, inclusionCold, inclusionWarm, consistencyCold, consistencyWarm, inclusionInProcess, inclusionInProcessCold, keyReference };
  } finally {
    await server.stop();
  }
}

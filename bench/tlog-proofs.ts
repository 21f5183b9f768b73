/**
 * Proof latency over HTTP against the real server (its own process): inclusion and consistency proofs at the
 * log's full size, one request at a time on a keep-alive connection, timed by a client in a
 * process of its own (bench/proof-client.ts).
 * First request per tile: each request's leaf lies in a level-0 tile no earlier request
 * touched. The server proved every tile at start and keeps as many as its tile cache holds
 * (limits.tileCacheEntriesMax, 4,096 tiles: about a million leaves), so within that these
 * come from memory too; beyond it, from PostgreSQL. Repeated: the same requests again.
 * Every proof is verified (outside the timing) against the signed root. Without HTTP, the
 * same inclusion proofs in this process: through a log that kept nothing (each tile read
 * from PostgreSQL), then again (cached).
 */
import { TransparencyLog } from '../src/ledger/log/transparency-log.ts';
import { startServerProcess } from './http-server.ts';
import type { Pool } from '../src/store/pool.ts';
import { leafHash, rootFromNodes, tileWidth, verifyConsistency, verifyInclusion, type NodeGetter } from '../src/tlog/index.ts';
import { runProofClient } from './proof-client.ts';
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
  /** Each request's leaf in a level-0 tile no earlier request touched. */
  inclusionFirst: LatencyResult;
  /** The same requests again. */
  inclusionRepeated: LatencyResult;
  consistencyFirst: LatencyResult;
  consistencyRepeated: LatencyResult;
  /** The same inclusion proofs without HTTP, through a log in this process that kept no tiles: a tile read from PostgreSQL each. */
  inclusionInProcessFromDatabase: LatencyResult;
  /** The same again in that log, its tiles now cached. */
  inclusionInProcessCached: LatencyResult;
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

function latencyOf(latenciesMs: number[]): LatencyResult {
  const sorted = Float64Array.from(latenciesMs).sort();
  return { requests: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted[sorted.length - 1] ?? Number.NaN };
}

async function timeRequests(base: string, warmup: string, paths: string[], check: (path: string, hashes: Buffer[]) => void): Promise<LatencyResult> {
  const measured = await runProofClient({ base, warmup, paths });
  measured.bodies.forEach((body, i) => {
    if (body.startsWith('{')) check(paths[i]!, (JSON.parse(body) as { hashes: string[] }).hashes.map((hash) => Buffer.from(hash, 'base64')));
  });
  return latencyOf(measured.latenciesMs);
}

async function timeInProcess(log: TransparencyLog, indexes: number[], size: number): Promise<LatencyResult> {
  const latencies: number[] = [];
  for (const index of indexes) {
    const started = performance.now();
    await log.inclusionProof(index, size);
    latencies.push(performance.now() - started);
  }
  return latencyOf(latencies);
}

/**
 * Runs the four phases against the real server (`chipledger serve`, in a process of its
 * own, so the client's heap and event loop do not land in its figures). `getNode` answers
 * tree nodes from memory (the audit's tiles), to compute the old roots consistency proofs
 * are checked with.
 */
export async function proofLatency(pool: Pool, size: number, root: Buffer, getNode: NodeGetter, requests: number, signerKey: string): Promise<ProofResult> {
  const databaseUrl = (pool as unknown as { options: { connectionString: string } }).options.connectionString;
  const server = await startServerProcess({ databaseUrl, logSignerKey: signerKey, logLevel: 'warn' });
  const base = server.url;
  try {
    const random = seededRandom(6962);
    // Disjoint tiles for the two kinds, so each kind's first pass touches tiles of its own.
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
    // Each client opens its connection with one untimed proof in tile 0, which no timed request touches.
    const warmup = `/v1/log/proof/inclusion?index=0&size=${size}`;
    const inclusionFirst = await timeRequests(base, warmup, inclusion, checkInclusion);
    const inclusionRepeated = await timeRequests(base, warmup, inclusion, checkInclusion);
    const consistencyFirst = await timeRequests(base, warmup, consistency, checkConsistency);
    const consistencyRepeated = await timeRequests(base, warmup, consistency, checkConsistency);
    // A log that skipped the start-up check keeps no tiles: the first pass reads each from PostgreSQL.
    const bare = new TransparencyLog(pool);
    const inclusionInProcessFromDatabase = await timeInProcess(bare, indexes.slice(0, requests), size);
    const inclusionInProcessCached = await timeInProcess(bare, indexes.slice(0, requests), size);
    const keyReference = await timeRequests(base, warmup, Array.from({ length: requests }, () => '/v1/log/key'), () => {});
    return { size, inclusionFirst, inclusionRepeated, consistencyFirst, consistencyRepeated, inclusionInProcessFromDatabase, inclusionInProcessCached, keyReference };
  } finally {
    await server.stop();
  }
}

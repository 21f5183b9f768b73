/**
 * The HTTP benchmark's load generator: node:http over one keep-alive Agent with exactly
 * `connections` sockets (undici is not installed here, and node:http is the cheaper client
 * anyway), N workers each sending its next request as soon as its last is answered. Latency
 * is from the request's start to the last byte of its answer.
 */
import http from 'node:http';
import { percentile } from './stats.ts';

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface RequestSpec {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export class HttpLoadClient {
  private readonly agent: http.Agent;
  private readonly base: URL;
  private readonly sockets = new WeakSet<object>();
  /** Distinct sockets used so far: with keep-alive holding, at most `connections`. */
  socketsOpened = 0;

  constructor(baseUrl: string, readonly connections: number) {
    this.base = new URL(baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: 'fifo' });
  }

  request(spec: RequestSpec): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...spec.headers };
      if (spec.body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(spec.body);
      }
      const request = http.request({
        agent: this.agent, host: this.base.hostname, port: this.base.port, method: spec.method, path: spec.path, headers,
      }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      });
      request.on('socket', (socket) => {
        if (!this.sockets.has(socket)) {
          this.sockets.add(socket);
          this.socketsOpened += 1;
        }
      });
      request.on('error', reject);
      request.end(spec.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface LoadResult {
  requests: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Answers by HTTP status; 'error' for requests that got no answer at all. */
  statuses: Record<string, number>;
  /** The first answer whose status was not the expected one, for the report. */
  firstUnexpected: string | null;
  /** CPU seconds this (load-generating) process used during the run. */
  clientCpuSeconds: number;
}

/**
 * Sends `count` requests from `workers` concurrent workers; `make(index)` builds request
 * `index`, `seen(index, answer)` is told each answer.
 */
export async function drive(client: HttpLoadClient, count: number, workers: number, expected: number, make: (index: number) => RequestSpec, seen?: (index: number, answer: HttpAnswer) => void): Promise<LoadResult> {
  const latencies = new Float64Array(count);
  const statuses: Record<string, number> = {};
  let firstUnexpected: string | null = null;
  let next = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const worker = async () => {
    for (let index = next++; index < count; index = next++) {
      const spec = make(index);
      const sent = performance.now();
      let status: string;
      try {
        const answer = await client.request(spec);
        latencies[index] = performance.now() - sent;
        status = String(answer.status);
        if (answer.status !== expected) firstUnexpected ??= `${spec.method} ${spec.path}: ${answer.status} ${answer.body.slice(0, 300)}`;
        seen?.(index, answer);
      } catch (error) {
        latencies[index] = performance.now() - sent;
        status = 'error';
        firstUnexpected ??= `${spec.method} ${spec.path}: ${(error as Error).message}`;
      }
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort();
  return {
    requests: count, seconds, perSecond: count / seconds,
    p50Ms: percentile(latencies, 50), p90Ms: percentile(latencies, 90), p99Ms: percentile(latencies, 99), maxMs: latencies[count - 1] ?? 0,
    statuses, firstUnexpected, clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

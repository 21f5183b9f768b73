/**
 * The HTTP benchmark's load generator: `connections` keep-alive TCP connections speaking
 * plain HTTP/1.1, N workers each sending its next request as soon as its last is answered.
 * Latency is from the request's start to the last byte of its answer.
 *
 * Why not node:http: on this 2-core machine the load generator shares the cores with the
 * server and PostgreSQL, and node:http's client spent 0.11-0.18 ms of CPU per request
 * (measured), a fifth of all the CPU a booking cost. This client writes one preformatted
 * request and reads the status line, Content-Length and body, like the usual HTTP load
 * tools do; a real deployment's clients are on other machines.
 */
import { connect, type Socket } from 'node:net';
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

const headerEnd = Buffer.from('\r\n\r\n');

/** One keep-alive connection; one request at a time. */
class Connection {
  private pending: { resolve: (answer: HttpAnswer) => void; reject: (error: Error) => void } | null = null;
  private buffer: Buffer = Buffer.alloc(0);
  private closed: Error | null = null;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (error: Error) => {
      this.closed ??= error;
      this.pending?.reject(error);
      this.pending = null;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the server closed the connection')));
  }

  get usable(): boolean {
    return this.closed === null;
  }

  send(request: Buffer): Promise<HttpAnswer> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(request);
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const end = this.buffer.indexOf(headerEnd);
    if (end < 0 || !this.pending) return;
    const head = this.buffer.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!length) {
      this.pending.reject(new Error(`an answer without Content-Length (status ${status}); this client reads no other framing`));
      this.pending = null;
      this.socket.destroy();
      return;
    }
    const total = end + 4 + Number(length[1]);
    if (this.buffer.length < total) return;
    const body = this.buffer.toString('utf8', end + 4, total);
    this.buffer = this.buffer.subarray(total);
    const { resolve } = this.pending;
    this.pending = null;
    resolve({ status, body });
  }
}

export class HttpLoadClient {
  private readonly base: URL;
  private readonly idle: Connection[] = [];
  private readonly waiting: Array<(connection: Connection) => void> = [];
  private open = 0;
  /** Connections opened so far: with keep-alive holding, at most `connections`. */
  socketsOpened = 0;

  constructor(baseUrl: string, readonly connections: number) {
    this.base = new URL(baseUrl);
  }

  async request(spec: RequestSpec): Promise<HttpAnswer> {
    const connection = await this.acquire();
    try {
      return await connection.send(this.format(spec));
    } finally {
      this.release(connection);
    }
  }

  close(): void {
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
  }

  private format(spec: RequestSpec): Buffer {
    const lines = [`${spec.method} ${spec.path} HTTP/1.1`, `host: ${this.base.host}`, 'connection: keep-alive'];
    for (const [name, value] of Object.entries(spec.headers ?? {})) lines.push(`${name}: ${value}`);
    if (spec.body !== undefined) lines.push('content-type: application/json', `content-length: ${Buffer.byteLength(spec.body)}`);
    return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${spec.body ?? ''}`);
  }

  private async acquire(): Promise<Connection> {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.open < this.connections) return this.openOne();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private async openOne(): Promise<Connection> {
    this.open += 1;
    this.socketsOpened += 1;
    const socket = connect({ host: this.base.hostname, port: Number(this.base.port) });
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    } catch (error) {
      this.open -= 1;
      throw error;
    }
    return new Connection(socket);
  }

  private release(connection: Connection): void {
    const waiter = this.waiting.shift();
    if (connection.usable) {
      if (waiter) waiter(connection);
      else this.idle.push(connection);
      return;
    }
    // A broken connection is replaced for whoever waits; requests that fail count as errors.
    this.open -= 1;
    connection.socket.destroy();
    if (waiter) void this.openOne().then(waiter, () => this.waiting.unshift(waiter));
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

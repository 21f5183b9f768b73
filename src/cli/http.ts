/**
 * The client side of the API for CLI commands: bearer auth, a fresh Idempotency-Key per POST,
 * one retry with the SAME key after a network error (so a request that did reach the server is
 * answered from its idempotency record instead of running twice), and RFC 9457 problems turned
 * into readable errors.
 */
import { randomUUID } from 'node:crypto';
import { printable } from './output.ts';

/** How long one request may take, including a 100,000-serial manifest being checked and committed. */
export const requestTimeoutMs = 120_000;
/** Pause before the one retry after a network error. */
export const retryDelayMs = 500;
/** Chunk size of streamed request bodies (the upload progress moves one chunk at a time). */
const uploadChunkBytes = 64 * 1024;

/** An RFC 9457 problem as our API writes it. */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  rule?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** The server answered with an error status. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly problem: ProblemDetails) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
    this.name = 'ApiError';
  }
}

/** The server could not be reached, even after the retry. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

/**
 * The server answered with a success status but not with JSON: CHIPLEDGER_URL points at
 * something else (another web server, a proxy's page), not at the chipledger API.
 */
export class UnexpectedAnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnexpectedAnswerError';
  }
}

export interface ClientOptions {
  baseUrl: string;
  token: string;
  fetch?: typeof fetch;
  retryDelayMs?: number;
  /** Makes idempotency keys; tests pass a fixed one. */
  newKey?: () => string;
}

export interface PostOptions {
  /** Bytes of the body sent so far, as the upload proceeds. */
  onUpload?: (bytesSent: number, bytesTotal: number) => void;
}

export class ApiClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  get<T = unknown>(path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    const url = this.url(path);
    for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, String(value));
    return this.send<T>('GET', url, undefined, {}, {});
  }

  /** A state-changing POST: one Idempotency-Key, reused by the retry. */
  post<T = unknown>(path: string, body: unknown, options: PostOptions = {}): Promise<T> {
    const bytes = Buffer.from(JSON.stringify(body), 'utf8');
    const key = (this.options.newKey ?? randomUUID)();
    return this.send<T>('POST', this.url(path), bytes, { 'content-type': 'application/json', 'idempotency-key': key }, options);
  }

  private url(path: string): URL {
    return new URL(`${this.options.baseUrl}${path}`);
  }

  private async send<T>(method: string, url: URL, body: Buffer | undefined, headers: Record<string, string>, options: PostOptions): Promise<T> {
    const init = (): RequestInit => ({
      method,
      headers: { accept: 'application/json', authorization: `Bearer ${this.options.token}`, ...headers },
      signal: AbortSignal.timeout(requestTimeoutMs),
      ...(body === undefined ? {} : options.onUpload ? { body: streamOf(body, options.onUpload), duplex: 'half' } : { body }),
    });
    let response: Response;
    try {
      response = await this.fetch(url, init());
    } catch (first) {
      await new Promise((done) => setTimeout(done, this.options.retryDelayMs ?? retryDelayMs));
      try {
        response = await this.fetch(url, init());
      } catch (second) {
        throw new NetworkError(`couldn't reach ${url.origin} for ${method} ${url.pathname} (tried twice): ${describeNetworkError(second)}`, { cause: first });
      }
    }
    return readResponse<T>(method, url, response);
  }
}

/** A body that reports how much of it the connection has taken. */
function streamOf(bytes: Buffer, onUpload: (sent: number, total: number) => void): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const chunk = bytes.subarray(offset, offset + uploadChunkBytes);
      offset += chunk.length;
      controller.enqueue(chunk);
      onUpload(offset, bytes.length);
    },
  }, { highWaterMark: 0 }); // no chunk read ahead: the progress counts what the connection took, not what waits for it
}

async function readResponse<T>(method: string, url: URL, response: Response): Promise<T> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    // The connection broke, or the time ran out, while the answer was coming. Not retried:
    // a POST may have been done, and rerunning the command is the user's call.
    throw new NetworkError(`lost the connection to ${url.origin} while reading the answer to ${method} ${url.pathname}: ${describeNetworkError(error)}`, { cause: error });
  }
  const type = response.headers.get('content-type') ?? '';
  let parsed: unknown;
  if (type.includes('json') && text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (response.ok) {
    if (typeof parsed === 'object' && parsed !== null) return parsed as T;
    throw new UnexpectedAnswerError(`${url.origin} answered ${method} ${url.pathname} with ${response.status} and ${type === '' ? 'no content type' : type}, not a JSON object; is CHIPLEDGER_URL the chipledger API?`);
  }
  const problem: ProblemDetails = typeof parsed === 'object' && parsed !== null
    ? (parsed as ProblemDetails)
    : { status: response.status, title: response.statusText, detail: text.slice(0, 500) || undefined };
  throw new ApiError(response.status, problem);
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if ((error as Error).name === 'TimeoutError') return `no answer within ${requestTimeoutMs / 1000} s`;
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}

/** An API error as lines for stderr: status, code, the server's detail, the rule and the numbers. */
export function formatApiError(error: ApiError): string {
  const { problem } = error;
  const text = (value: unknown) => printable(typeof value === 'string' ? value : JSON.stringify(value) ?? String(value));
  const head = `error: ${error.status}${problem.title ? ` ${text(problem.title)}` : ''}${problem.code ? ` (${text(problem.code)})` : ''}`;
  const lines = [head];
  if (problem.detail) lines.push(`  ${text(problem.detail)}`);
  if (problem.rule) lines.push(`  rule: ${text(problem.rule)}`);
  const known = new Set(['type', 'title', 'status', 'detail', 'code', 'rule', 'instance']);
  for (const [name, value] of Object.entries(problem)) {
    if (known.has(name) || value === undefined) continue;
    lines.push(`  ${printable(name)}: ${text(value)}`);
  }
  return lines.join('\n');
}

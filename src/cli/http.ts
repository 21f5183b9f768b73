/**
 * The client side of the API for CLI commands: bearer auth, a fresh Idempotency-Key per POST
 * (or the one the user gives, to rerun a change safely), and RFC 9457 problems turned into
 * readable errors.
 *
 * A request whose outcome is unknown (a network error, an answer lost on the way, or a 502,
 * 503 or 504) is sent again, with the SAME key, up to requestAttemptsMax times in all,
 * waiting what the server's Retry-After asks: a POST that did reach the server is answered
 * from its idempotency record instead of running twice. When the CLI gives up, the error
 * carries the key (unknownOutcome), so the user can rerun the change with it.
 *
 * Redirects are not followed: fetch would turn a POST into a GET and drop the token on the
 * way, and the error would blame the token or the route. A 3xx is said as what it is.
 */
import { randomUUID } from 'node:crypto';
import { printable } from './output.ts';

/** How long one request may take, including a 100,000-serial manifest being checked and committed. */
export const requestTimeoutMs = 120_000;
/** Attempts at one request, the first included, while its outcome is unknown (network error, lost answer, 502, 503, 504). */
export const requestAttemptsMax = 3;
/** Pause before another attempt when the server gave no Retry-After. */
export const retryDelayMs = 500;
/**
 * The longest Retry-After the CLI waits for. A server that asks for more is not tried again
 * sooner than it asked: the CLI gives up and says how to rerun the change with its key.
 */
export const retryAfterMsMax = 5_000;
/** Statuses that leave a change's outcome unknown (README: a 503 means nothing was committed, or the outcome is unknown). */
const retryableStatuses: ReadonlySet<number> = new Set([502, 503, 504]);
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

/**
 * A change sent, perhaps more than once with one Idempotency-Key, whose outcome the CLI could
 * not learn: it may have been made or not. Sending it again with the same key tells which.
 */
export interface UnknownOutcome {
  readonly idempotencyKey: string;
  /** How many times it was sent. */
  readonly attempts: number;
  /** The Retry-After (ms) the server asked for when it was longer than retryAfterMsMax. */
  readonly retryAfterMs?: number;
  /** The command line that sends the same change again with the key; set by the command. */
  rerun?: string;
}

/** The server answered with an error status. */
export class ApiError extends Error {
  /** Set when this ended a POST whose outcome is unknown (a 502, 503 or 504). */
  unknownOutcome: UnknownOutcome | undefined;

  constructor(readonly status: number, readonly problem: ProblemDetails) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
    this.name = 'ApiError';
  }
}

/** The server could not be reached, or its answer was lost, on every attempt. */
export class NetworkError extends Error {
  /** Set when this ended a POST: the request may have reached the server. */
  unknownOutcome: UnknownOutcome | undefined;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

/** The unknown outcome an error of a POST carries, if it does. */
export function unknownOutcomeOf(error: unknown): UnknownOutcome | undefined {
  return error instanceof ApiError || error instanceof NetworkError ? error.unknownOutcome : undefined;
}

/**
 * The server answered with a success status but not with JSON, or with a redirect:
 * CHIPLEDGER_URL points at something else (another web server, a proxy's page, an address
 * that moved), not at the chipledger API.
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
  /** Pause before another attempt when the server gave no Retry-After (default retryDelayMs). */
  retryDelayMs?: number;
  /** Makes idempotency keys; tests pass a fixed one. */
  newKey?: () => string;
  /** Waits between attempts; tests record the pauses instead. */
  sleep?: (ms: number) => Promise<void>;
  /** Milliseconds since the epoch, to read a Retry-After given as a date. */
  now?: () => number;
  /** Told, in a line for people, each time a request is sent again. */
  onRetry?: (message: string) => void;
}

export interface PostOptions {
  /** Bytes of the body sent so far, as the upload proceeds. */
  onUpload?: (bytesSent: number, bytesTotal: number) => void;
  /** The Idempotency-Key to send (a rerun of a change whose outcome was unknown); by default a fresh one. */
  idempotencyKey?: string;
}

/** One attempt's end when the request may be sent again. */
interface Retryable {
  error: ApiError | NetworkError;
  retryAfterMs: number | undefined;
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

  /** A state-changing POST: one Idempotency-Key, reused by every attempt. */
  post<T = unknown>(path: string, body: unknown, options: PostOptions = {}): Promise<T> {
    const bytes = Buffer.from(JSON.stringify(body), 'utf8');
    const key = options.idempotencyKey ?? (this.options.newKey ?? randomUUID)();
    return this.send<T>('POST', this.url(path), bytes, { 'content-type': 'application/json', 'idempotency-key': key }, options);
  }

  private url(path: string): URL {
    return new URL(`${this.options.baseUrl}${path}`);
  }

  private async send<T>(method: string, url: URL, body: Buffer | undefined, headers: Record<string, string>, options: PostOptions): Promise<T> {
    const key = headers['idempotency-key'];
    for (let attempt = 1; ; attempt += 1) {
      const result = await this.attempt<T>(method, url, body, headers, options);
      if (!('error' in result)) return result.value;
      const waitMs = result.retryAfterMs ?? this.options.retryDelayMs ?? retryDelayMs;
      if (attempt >= requestAttemptsMax || waitMs > retryAfterMsMax) throw gaveUp(result.error, attempt, key, waitMs > retryAfterMsMax ? waitMs : undefined);
      this.options.onRetry?.(`${retryReason(result.error)}; sending it again in ${waitMs} ms${key === undefined ? '' : ' with the same Idempotency-Key'} (attempt ${attempt + 1} of ${requestAttemptsMax})`);
      await (this.options.sleep ?? sleep)(waitMs);
    }
  }

  /** One attempt: the answer, a Retryable when the outcome is unknown, or a thrown refusal. */
  private async attempt<T>(method: string, url: URL, body: Buffer | undefined, headers: Record<string, string>, options: PostOptions): Promise<{ value: T } | Retryable> {
    const init: RequestInit = {
      method,
      headers: { accept: 'application/json', authorization: `Bearer ${this.options.token}`, ...headers },
      redirect: 'manual',
      signal: AbortSignal.timeout(requestTimeoutMs),
      ...(body === undefined ? {} : options.onUpload ? { body: streamOf(body, options.onUpload), duplex: 'half' } : { body }),
    };
    let response: Response;
    try {
      response = await this.fetch(url, init);
    } catch (error) {
      return { error: new NetworkError(`couldn't reach ${url.origin} for ${method} ${url.pathname}: ${describeNetworkError(error)}`, { cause: error }), retryAfterMs: undefined };
    }
    try {
      return { value: await readResponse<T>(method, url, response) };
    } catch (error) {
      // The connection broke while the answer came: a POST may have been done; the same key tells.
      if (error instanceof NetworkError) return { error, retryAfterMs: undefined };
      if (error instanceof ApiError && retryableStatuses.has(error.status)) {
        return { error, retryAfterMs: retryAfterMsOf(response.headers.get('retry-after'), (this.options.now ?? Date.now)()) };
      }
      throw error;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

function retryReason(error: ApiError | NetworkError): string {
  return error instanceof ApiError ? `the server answered ${error.status}${error.problem.code ? ` (${printable(String(error.problem.code))})` : ''}` : error.message;
}

/** The last attempt's error, marked with how many were made and, for a POST, the key that can learn its outcome. */
function gaveUp(error: ApiError | NetworkError, attempts: number, key: string | undefined, retryAfterMs: number | undefined): ApiError | NetworkError {
  const ended = error instanceof NetworkError ? new NetworkError(`${error.message} (${attempts === 1 ? '1 attempt' : `${attempts} attempts`})`, { cause: error.cause }) : error;
  if (key !== undefined) ended.unknownOutcome = { idempotencyKey: key, attempts, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  return ended;
}

/** Retry-After in milliseconds: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMsOf(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^[0-9]{1,9}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * What a user whose change has an unknown outcome reads after the error: the key, and how to
 * send the change again with it (the command's own line when the command gave one).
 */
export function formatUnknownOutcome(outcome: UnknownOutcome): string {
  const sent = `sent ${outcome.attempts === 1 ? 'once' : `${outcome.attempts} times`} with Idempotency-Key ${outcome.idempotencyKey}`;
  const waited = outcome.retryAfterMs === undefined ? '' : `; the server asked to wait ${Math.ceil(outcome.retryAfterMs / 1000)} s before another try, longer than chipledger waits (${retryAfterMsMax / 1000} s)`;
  const lines = [`chipledger: the outcome is unknown: the change may have been made or not (${sent}${waited}).`];
  if (outcome.rerun === undefined) {
    lines.push(`  Send the same request again with Idempotency-Key ${outcome.idempotencyKey}: if the change was made, the answer says so and nothing is done twice; if not, it is made then.`);
  } else {
    lines.push('  To learn it, rerun the command with the same key: if the change was made, the answer says so and nothing is done twice; if not, it is made then:');
    lines.push(`  ${outcome.rerun}`);
  }
  return lines.join('\n');
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
    // The connection broke, or the time ran out, while the answer was coming: a POST may
    // have been done. The caller sends it again with the same Idempotency-Key, which tells.
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
  if (response.status >= 300 && response.status <= 399) throw new UnexpectedAnswerError(redirectMessage(method, url, response));
  if (response.ok) {
    if (typeof parsed === 'object' && parsed !== null) return parsed as T;
    throw new UnexpectedAnswerError(`${url.origin} answered ${method} ${url.pathname} with ${response.status} and ${type === '' ? 'no content type' : type}, not a JSON object; is CHIPLEDGER_URL the chipledger API?`);
  }
  const problem: ProblemDetails = typeof parsed === 'object' && parsed !== null
    ? (parsed as ProblemDetails)
    : { status: response.status, title: response.statusText, detail: text.slice(0, 500) || undefined };
  throw new ApiError(response.status, problem);
}

/** A 3xx, said with where it points and what to set CHIPLEDGER_URL to. */
function redirectMessage(method: string, url: URL, response: Response): string {
  const location = response.headers.get('location');
  const head = `${url.origin} answered ${method} ${url.pathname} with ${response.status}, a redirect`;
  if (location === null) return `${head} without a Location; chipledger does not follow redirects: is CHIPLEDGER_URL the chipledger API?`;
  let target: URL | undefined;
  try {
    target = new URL(location, url);
  } catch {
    target = undefined;
  }
  // The base the API would have there: the Location less the path asked for (http://a → https://a).
  const base = target !== undefined && target.pathname.endsWith(url.pathname) ? `${target.origin}${target.pathname.slice(0, -url.pathname.length)}` : undefined;
  const to = printable(target?.href ?? location);
  return `${head} to ${to}; chipledger does not follow redirects (a POST would become a GET, without the token): ${base === undefined ? 'set CHIPLEDGER_URL to the address of the chipledger API' : `set CHIPLEDGER_URL to ${printable(base)}`}`;
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

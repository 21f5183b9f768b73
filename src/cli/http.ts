/**
 * The client side of the API for CLI commands: bearer auth, a fresh Idempotency-Key per POST
 * (or the one the user gives, to rerun a change safely), and RFC 9457 problems turned into
 * readable errors. How requests are sent (again with the same key while the outcome is
 * unknown, Retry-After, redirects refused, answers bounded) is the shared transport's
 * (fetch.ts); when the CLI gives up on a change, the error carries its key (unknownOutcome),
 * so the user can rerun the change with it.
 */
import { randomUUID } from 'node:crypto';
import { limits } from '../core/limits.ts';
import { failedBeforeSending, HttpError, jsonObjectOf, send, type HttpRequest, type ProblemDetails, type SendOptions } from './fetch.ts';
import { Failure, printable, printableJson } from './output.ts';

/** Chunk size of streamed request bodies (the upload progress moves one chunk at a time). */
const uploadChunkBytes = 64 * 1024;

/**
 * A change sent, perhaps more than once with one Idempotency-Key, whose outcome the CLI could
 * not learn: it may have been made or not. Sending it again with the same key tells which.
 */
export interface UnknownOutcome {
  readonly idempotencyKey: string;
  /** How many times it was sent. */
  readonly attempts: number;
  /** The Retry-After (ms) the server asked for when it was longer than limits.retryAfterMsMax. */
  readonly retryAfterMs?: number;
  /**
   * The success status the change was answered with, when its JSON answer could not be read
   * (over the bound): then it was made, and sending it again with the key reads it.
   */
  readonly answeredStatus?: number;
  /**
   * Set when the change was interrupted before any attempt could connect (refused, no such
   * host: the test after which a change that was given up on is said not sent): nothing
   * reached the server, so nothing was done, and `attempts` is how many were tried.
   */
  readonly notSent?: true;
  /** The command line that sends the same change again with the key, as `chipledger …`; set by the command. */
  rerun?: string;
}

/** The server answered with an error status. */
export class ApiError extends Error {
  /** Set when this ended a POST whose outcome is unknown: a 502, 503 or 504, or any answer after an attempt that got one (or none). */
  unknownOutcome: UnknownOutcome | undefined;
  /** Set when a read (GET) was given up on such a status: how often it was sent, and a longer wait the server asked for. */
  givenUp: { attempts: number; retryAfterMs?: number } | undefined;

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
  return error instanceof ApiError || error instanceof NetworkError || error instanceof UnexpectedAnswerError || error instanceof InterruptedError ? error.unknownOutcome : undefined;
}

/**
 * The server answered with a success status but not with JSON, with a redirect, or with more
 * than apiResponseBytesMax: CHIPLEDGER_URL points at something else (another web server, a proxy's page, an address
 * that moved), not at the chipledger API; or, too large, a page of long rows asked for at a
 * size whose answer passes the bound.
 */
export class UnexpectedAnswerError extends Error {
  /**
   * Set when a POST was answered with a success status whose answer could not be read (the
   * change was made, and its key reads the answer), or redirected after an attempt whose outcome was unknown.
   */
  unknownOutcome: UnknownOutcome | undefined;

  constructor(message: string, readonly failure: 'not-json' | 'redirect' | 'too-large') {
    super(message);
    this.name = 'UnexpectedAnswerError';
  }
}

/** What a GET of the api command was answered with: a JSON object, or a text/plain route's bytes as they came. */
export type GetAnswer = { kind: 'json'; answer: Record<string, unknown>; bytes: number } | { kind: 'text'; text: Buffer; bytes: number };

/** The signals that end a POST being awaited, and the exit code of each: 128 and its number, as a shell reports a process it ended. */
const interruptExitCodes = { SIGINT: 130, SIGTERM: 143 } as const;
type InterruptSignal = keyof typeof interruptExitCodes;

/**
 * A Ctrl-C (SIGINT) or SIGTERM while a POST was awaited: the change may have been made or not,
 * as for any answer lost, so it carries the key that learns which (and its rerun, once the
 * command sets it); the process exits with exitCode.
 */
export class InterruptedError extends Error {
  readonly exitCode: number;

  constructor(readonly signal: InterruptSignal, asked: string, readonly unknownOutcome: UnknownOutcome) {
    super(`interrupted (${signal}) while waiting for the answer to ${asked}`);
    this.name = 'InterruptedError';
    this.exitCode = interruptExitCodes[signal];
  }
}

/**
 * `sending`, or, when SIGINT or SIGTERM comes first, the error `interrupted` makes for it. The
 * handlers are there only while it is awaited; after a signal, one that repeats within
 * limits.repeatedStopSignalWindowMs is the same Ctrl-C (npm forwards a copy; the second would
 * otherwise kill the process before the key is printed) and is ignored, and a later one exits at
 * once with its code.
 */
function untilInterrupted<T>(sending: Promise<T>, interrupted: (signal: InterruptSignal) => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const signals = Object.keys(interruptExitCodes) as InterruptSignal[];
    const onSignal = (signal: InterruptSignal): void => {
      signals.forEach((name) => process.off(name, onSignal));
      const receivedAt = Date.now();
      // Kept until the process exits, which the rejection below leads to at once.
      const onRepeat = (again: InterruptSignal): void => {
        if (Date.now() - receivedAt > limits.repeatedStopSignalWindowMs) process.exit(interruptExitCodes[again]);
      };
      signals.forEach((name) => process.on(name, onRepeat));
      reject(interrupted(signal));
    };
    signals.forEach((name) => process.on(name, onSignal));
    const settled = (): void => signals.forEach((name) => process.off(name, onSignal));
    sending.then((value) => {
      settled();
      resolve(value);
    }, (error: unknown) => {
      settled();
      reject(error);
    });
  });
}

export interface ClientOptions extends SendOptions {
  baseUrl: string;
  token: string;
  /** Makes idempotency keys; tests pass a fixed one. */
  newKey?: () => string;
}

export interface PostOptions {
  /** Bytes of the body sent so far, as the upload proceeds. */
  onUpload?: (bytesSent: number, bytesTotal: number) => void;
  /** The Idempotency-Key to send (a rerun of a change whose outcome was unknown); by default a fresh one. */
  idempotencyKey?: string;
}

export class ApiClient {
  constructor(private readonly options: ClientOptions) {}

  async get<T = unknown>(path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    return (await this.getCounted<T>(path, query)).answer;
  }

  /** A GET's answer, and the bytes it came in: for a command that gathers many answers and bounds them together. */
  getCounted<T = unknown>(path: string, query: Record<string, string | number | undefined> = {}): Promise<{ answer: T; bytes: number }> {
    const url = this.url(path);
    for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, String(value));
    return this.sendCounted<T>({ method: 'GET', url });
  }

  /**
   * A GET whose answer may also be text: the API's text/plain routes (the log's verifier key,
   * an event's serial list), which the api command prints as they came. Every other command
   * reads JSON only (get, getCounted).
   */
  async getAnswer(path: string, query: Record<string, string | number | undefined> = {}): Promise<GetAnswer> {
    const url = this.url(path);
    for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, String(value));
    return this.sendCounted<Record<string, unknown>>({ method: 'GET', url, headers: { accept: 'application/json, text/plain' } }, { acceptsText: true });
  }

  /**
   * A state-changing POST: one Idempotency-Key, reused by every attempt. While it is awaited, a
   * Ctrl-C (SIGINT) or a SIGTERM ends it with InterruptedError, which carries the key: the
   * change may have been made, and running the command again without the key would make it
   * twice (a second booking).
   */
  post<T = unknown>(path: string, body: unknown, options: PostOptions = {}): Promise<T> {
    const bytes = Buffer.from(JSON.stringify(body), 'utf8');
    const key = options.idempotencyKey ?? (this.options.newKey ?? randomUUID)();
    const headers = { 'content-type': 'application/json', 'idempotency-key': key };
    const fetchOnce = this.options.fetch ?? globalThis.fetch;
    // For the interruption: the attempts made, and those that may have reached the server (one
    // still under way may have), so that it says "sent N times", or, when none connected, not sent.
    const tried = { all: 0, reached: 0, underWay: 0 };
    const counting = (async (...args: Parameters<typeof fetch>) => {
      tried.all += 1;
      tried.underWay += 1;
      try {
        const response = await fetchOnce(...args);
        tried.reached += 1;
        return response;
      } catch (error) {
        if (!failedBeforeSending(error)) tried.reached += 1;
        throw error;
      } finally {
        tried.underWay -= 1;
      }
    }) as typeof fetch;
    const url = this.url(path);
    const sending = this.sendCounted<T>({ method: 'POST', url, headers, body: () => (options.onUpload ? streamOf(bytes, options.onUpload) : bytes) }, { fetch: counting });
    return untilInterrupted(sending.then(({ answer }) => answer), (signal) => {
      const sent = tried.reached + tried.underWay;
      const outcome = sent === 0 ? { idempotencyKey: key, attempts: tried.all, notSent: true as const } : { idempotencyKey: key, attempts: sent };
      return new InterruptedError(signal, `POST ${url.pathname}`, outcome);
    });
  }

  private url(path: string): URL {
    return new URL(`${this.options.baseUrl}${path}`);
  }

  /** The answer's JSON object (or, acceptsText, its text) and its length in bytes, or this client's error for what went wrong. */
  private async sendCounted<T>(request: HttpRequest, how: { acceptsText: true; fetch?: typeof fetch }): Promise<GetAnswer>;
  private async sendCounted<T>(request: HttpRequest, how?: { acceptsText?: false; fetch?: typeof fetch }): Promise<{ answer: T; bytes: number }>;
  private async sendCounted<T>(request: HttpRequest, how: { acceptsText?: boolean; fetch?: typeof fetch } = {}): Promise<{ answer: T; bytes: number } | GetAnswer> {
    const { method, url } = request;
    const transport = {
      ...this.options, ...(how.fetch === undefined ? {} : { fetch: how.fetch }),
      timeoutMs: limits.apiRequestTimeoutMs, responseBytesMax: limits.apiResponseBytesMax, addressSetting: 'CHIPLEDGER_URL',
    };
    const key = request.headers?.['idempotency-key'];
    let answer;
    try {
      answer = await send(transport, { ...request, token: this.options.token, headers: { accept: 'application/json', ...request.headers } });
    } catch (error) {
      throw error instanceof HttpError ? apiErrorOf(error, key) : error;
    }
    const type = answer.headers.get('content-type') ?? '';
    const parsed = type.includes('json') ? jsonObjectOf(answer.body) : undefined;
    if (parsed !== undefined) return how.acceptsText ? { kind: 'json', answer: parsed as Record<string, unknown>, bytes: answer.body.length } : { answer: parsed as T, bytes: answer.body.length };
    // The API's text routes say text/plain (src/server/log-routes.ts, an event's serials); the api command asks only /v1/ paths.
    if (how.acceptsText && /^text\/plain(;|$)/i.test(type.trim())) return { kind: 'text', text: answer.body, bytes: answer.body.length };
    const unreadable = new UnexpectedAnswerError(`${url.origin} answered ${method} ${url.pathname}${url.search} with ${answer.status} and ${type === '' ? 'no content type' : printable(type)}, not a JSON object; is CHIPLEDGER_URL the chipledger API?`, 'not-json');
    // A success that is not JSON may not be chipledger's at all (a catch-all page, a portal, a
    // wrong port): nothing says the change was made, so its outcome is unknown, and the key learns it.
    if (key !== undefined) unreadable.unknownOutcome = { idempotencyKey: key, attempts: answer.attempts };
    throw unreadable;
  }
}

/** The transport's error as this client's; for a POST whose outcome is unknown, marked with the key that can learn it. */
function apiErrorOf(error: HttpError, key: string | undefined): Error {
  if (error.failure === 'redirect' || error.failure === 'too-large') {
    const unexpected = new UnexpectedAnswerError(error.message, error.failure);
    // A success too large to read: the change was made, and its key reads the answer (a server that still answers too much is said then).
    const made = error.failure === 'too-large' && error.status !== undefined && error.status >= 200 && error.status <= 299;
    if (key !== undefined && made) unexpected.unknownOutcome = { idempotencyKey: key, attempts: error.attempts, answeredStatus: error.status };
    // A redirect after an attempt that got no answer: that attempt may have been done.
    else if (key !== undefined && error.outcomeUnknown) unexpected.unknownOutcome = { idempotencyKey: key, attempts: error.attempts };
    return unexpected;
  }
  // A change none of whose attempts could connect was not sent: said, since "couldn't reach" alone leaves the user to wonder.
  const notSent = key !== undefined && error.failure === 'network' && !error.outcomeUnknown
    ? '; the change was not sent (no attempt could connect), so nothing was done, and running the command again is safe' : '';
  const ended = error.failure === 'status' ? new ApiError(error.status!, error.problem!) : new NetworkError(`${error.message}${notSent}`, { cause: error.cause });
  const waited = error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs };
  if (key !== undefined && error.outcomeUnknown) ended.unknownOutcome = { idempotencyKey: key, attempts: error.attempts, ...waited };
  else if (ended instanceof ApiError && error.worthRetrying) ended.givenUp = { attempts: error.attempts, ...waited };
  return ended;
}

/** How often a request was sent (with its key, if any), and the longer wait the server asked for, as one line. */
function givenUpLine(given: { attempts: number; retryAfterMs?: number }, idempotencyKey?: string): string {
  const sent = `sent ${given.attempts === 1 ? 'once' : `${given.attempts} times`}${idempotencyKey === undefined ? '' : ` with Idempotency-Key ${idempotencyKey}`}`;
  return given.retryAfterMs === undefined ? sent : `${sent}; the server asked to wait ${Math.ceil(given.retryAfterMs / 1000)} s before another try, longer than chipledger waits (${limits.retryAfterMsMax / 1000} s)`;
}

/**
 * What a user whose change has an unknown outcome reads after the error: the key, and how to
 * send the change again with it (the command's own line when the command gave one, begun as
 * this process was started: chipledgerCommand). `env`: this process's environment.
 */
export function formatUnknownOutcome(outcome: UnknownOutcome, env: NodeJS.ProcessEnv = process.env): string {
  // Interrupted before any attempt connected: said as a change given up on then is (apiErrorOf).
  if (outcome.notSent) {
    const tried = outcome.attempts === 1 ? 'once' : `${outcome.attempts} times`;
    return `chipledger: the change was not sent (no attempt could connect; tried ${tried}), so nothing was done, and running the command again is safe.`;
  }
  const sent = givenUpLine(outcome, outcome.idempotencyKey);
  // A success too large to read (answeredStatus) was made: the key reads its answer.
  const said = outcome.answeredStatus === undefined
    ? {
      first: `chipledger: the outcome is unknown: the change may have been made or not (${sent}).`,
      send: `  Send the same request again with Idempotency-Key ${outcome.idempotencyKey}: if the change was made, the answer says so and nothing is done twice; if not, it is made then.`,
      rerun: '  To learn it, rerun the command with the same key: if the change was made, the answer says so and nothing is done twice; if not, it is made then:',
    }
    : {
      first: `chipledger: the change was made (answered ${outcome.answeredStatus}), but its answer could not be read (${sent}).`,
      send: `  Send the same request again with Idempotency-Key ${outcome.idempotencyKey} to read its answer: the change is not made twice.`,
      rerun: '  To read its answer, rerun the command with the same key: the change is not made twice:',
    };
  const how = outcome.rerun === undefined ? [said.send] : [said.rerun, `  ${rerunLine(outcome.rerun, env)}`];
  return [said.first, ...how].join('\n');
}

/** A rerun command as the user runs it: begun as this process was started (chipledgerCommand). */
function rerunLine(rerun: string, env: NodeJS.ProcessEnv): string {
  return rerun.startsWith('chipledger ') ? `${chipledgerCommand(env)}${rerun.slice('chipledger'.length)}` : rerun;
}

/**
 * How a command line printed for the user to run begins, so that it runs as typed. Started by
 * one of the repository's own scripts (`npm start`, `npm run chipledger -- …`: npm names the
 * script in npm_lifecycle_event and the package in npm_package_name), there may be no
 * `chipledger` on PATH, as after `npm ci && npm start`: the line is `npm run -s chipledger --
 * …`, which runs the same command in the repository (-s: without npm's banner, so its output
 * can be captured). Started any other way (a linked or installed `chipledger`), it is
 * `chipledger …`.
 */
export function chipledgerCommand(env: NodeJS.ProcessEnv = process.env): string {
  const byRepositoryScript = env.npm_package_name === 'chipledger' && (env.npm_lifecycle_event === 'start' || env.npm_lifecycle_event === 'chipledger');
  return byRepositoryScript ? 'npm run -s chipledger --' : 'chipledger';
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

/** An API error as lines for stderr: status, code, the server's detail, the rule and the numbers. */
export function formatApiError(error: ApiError): string {
  const { problem } = error;
  // A member nested too deep to print (a hostile or wrong server) is said as such, not thrown:
  // this runs where a command's failure is reported, and nothing catches a throw there.
  const text = (value: unknown) => {
    if (typeof value === 'string') return printable(value);
    try {
      return printableJson(value, 'one line');
    } catch (error) {
      if (error instanceof Failure) return '(too large or nested too deep to print)';
      throw error;
    }
  };
  const head = `error: ${error.status}${problem.title ? ` ${text(problem.title)}` : ''}${problem.code ? ` (${text(problem.code)})` : ''}`;
  const lines = [head];
  if (problem.detail) lines.push(`  ${text(problem.detail)}`);
  if (problem.rule) lines.push(`  rule: ${text(problem.rule)}`);
  const known = new Set(['type', 'title', 'status', 'detail', 'code', 'rule', 'instance']);
  for (const [name, value] of Object.entries(problem)) {
    if (known.has(name) || value === undefined) continue;
    lines.push(`  ${printable(name)}: ${text(value)}`);
  }
  if (error.givenUp !== undefined) lines.push(`  ${givenUpLine(error.givenUp)}`);
  return lines.join('\n');
}

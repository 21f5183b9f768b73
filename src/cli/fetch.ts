/**
 * The CLI's one HTTP transport, under the API client (http.ts) and the log client
 * (log/client.ts): the rules of talking to a server are here once, so a fix reaches both.
 * A request safe to send again (a GET, or a POST with its Idempotency-Key) is sent again while
 * its outcome is unknown (a network error, an answer lost on the way, a 502, 503 or 504), or
 * after a 429 (not done: the organisation's share of the server was full), waiting what
 * Retry-After asks: a POST that did reach the server is answered from its idempotency record,
 * not run twice. Redirects are not followed: fetch would turn a POST into
 * a GET and drop the token, and the error would blame the token or the route. Answers are read
 * up to a bound, also those sent without a Content-Length. Every error names the server, the
 * request and what the server said, made printable (its text reaches a terminal).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { limits } from '../core/limits.ts';
import { printable } from './output.ts';

/** Statuses that leave a request's outcome unknown (README: a 503 means nothing was committed, or the outcome is unknown). */
const outcomeUnknownStatuses: ReadonlySet<number> = new Set([502, 503, 504]);
/**
 * Statuses that say the request was not done, for now: sent again like those above, after
 * Retry-After (429: the organisation's request bodies in flight fill its share, RFC 6585 §4).
 */
const notDoneYetStatuses: ReadonlySet<number> = new Set([429]);
/** Characters of an error answer that is not a JSON object kept as its detail (a proxy's page). */
const errorTextCharsMax = 500;

/**
 * The ports fetch refuses to connect to, whatever the server: the "bad ports" of the Fetch
 * standard (https://fetch.spec.whatwg.org/#port-blocking), blocked against cross-protocol
 * attacks; Node's fetch (undici) keeps the same list and fails such a request with "bad port"
 * before sending anything. Config refuses them for the server and CHIPLEDGER_URL, since no
 * client command could reach them.
 */
export const fetchBlockedPorts: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113,
  115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556,
  563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667,
  6668, 6669, 6679, 6697, 10080,
]);

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

/** What a client, or a test, may choose about sending. */
export interface SendOptions {
  fetch?: typeof fetch;
  /** Pause before another attempt when the server gave no Retry-After (default limits.retryDelayMs). */
  retryDelayMs?: number;
  /** Waits between attempts; tests record the pauses instead. */
  sleep?: (ms: number) => Promise<void>;
  /** Milliseconds since the epoch, to read a Retry-After given as a date. */
  now?: () => number;
  /** Told, in a line for people, each time a request is sent again. */
  onRetry?: (message: string) => void;
}

/** A client's fixed rules on top of SendOptions. */
export interface Transport extends SendOptions {
  timeoutMs: number;
  responseBytesMax: number;
  /** Where the user gives the server's address (CHIPLEDGER_URL, --url), named when a redirect shows it is wrong. */
  addressSetting: string;
}

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: URL;
  /** Sent as `Authorization: Bearer` when given. */
  token?: string | undefined;
  /** An `idempotency-key` here makes a POST safe to send again. */
  headers?: Record<string, string>;
  /** The body of one attempt, made anew for each (a stream is read once). */
  body?: () => NonNullable<RequestInit['body']>;
}

/** A 2xx answer, its body read whole, and how many times the request was sent to get it. */
export interface HttpAnswer { status: number; headers: Headers; body: Buffer; attempts: number }

/**
 * Why a request failed: no answer ('network'), an answer cut off ('lost'; for both, `status` is
 * undefined), a redirect, an answer over the bound ('too-large'), an error status ('status'), or
 * a request fetch refused to send at all ('not-sent': a port it blocks), which no retry changes.
 */
export class HttpError extends Error {
  /** How many times the request was sent. */
  attempts = 1;
  /** The Retry-After (ms) of this answer; once given up, only when it was longer than limits.retryAfterMsMax. */
  retryAfterMs: number | undefined;

  constructor(message: string, readonly failure: 'network' | 'lost' | 'redirect' | 'too-large' | 'status' | 'not-sent', readonly status?: number, readonly problem?: ProblemDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HttpError';
  }

  /**
   * Set by send when an earlier attempt of the request had an unknown outcome: that attempt may
   * have been done, whatever this one was answered (a 429 is checked before the Idempotency-Key
   * is looked up, so it says nothing of the attempts before it).
   */
  earlierOutcomeUnknown = false;

  /** Whether the request may have been done or not: sending it again (with the same key) tells. */
  get outcomeUnknown(): boolean {
    return this.earlierOutcomeUnknown || this.attemptOutcomeUnknown;
  }

  /** Whether sending it again may get another answer: this attempt's outcome is unknown, or it was not done for now (429, or a connection not made). */
  get worthRetrying(): boolean {
    return this.attemptOutcomeUnknown || this.notDoneYet;
  }

  /**
   * Set on a 'network' failure that happened while connecting (connectionNotMadeCodes): no byte
   * of the request left this machine, so it was not done; sent again all the same, as a server
   * that is restarting refuses connections for a moment.
   */
  notConnected = false;

  /** Whether this attempt, alone, may have been done or not. */
  private get attemptOutcomeUnknown(): boolean {
    return (this.failure === 'network' && !this.notConnected) || this.failure === 'lost' || (this.failure === 'status' && outcomeUnknownStatuses.has(this.status!));
  }

  /** Whether this attempt may get another answer when sent again, though its outcome is known (not done). */
  private get notDoneYet(): boolean {
    return (this.failure === 'network' && this.notConnected) || (this.failure === 'status' && notDoneYetStatuses.has(this.status!));
  }
}

/**
 * Codes of a fetch that failed before a connection was made (refused, no such host, no route):
 * nothing was sent. A time-out is not among them: it may come after the request was sent.
 */
const connectionNotMadeCodes: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Sends `request`, again while its outcome is unknown if that is safe; a 2xx answer or an HttpError. */
export async function send(transport: Transport, request: HttpRequest): Promise<HttpAnswer> {
  const key = request.headers?.['idempotency-key'];
  const attemptsMax = request.method === 'GET' || key !== undefined ? limits.requestAttemptsMax : 1;
  // Once an attempt's outcome is unknown, so is the request's until an answer says what was
  // done: a later 429 (or a refusal made before the key is looked up) does not, and the user
  // needs the key to learn it.
  let earlierOutcomeUnknown = false;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return { ...(await sendOnce(transport, request)), attempts: attempt };
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      const thisOutcomeUnknown = error.outcomeUnknown;
      error.earlierOutcomeUnknown = earlierOutcomeUnknown;
      earlierOutcomeUnknown ||= thisOutcomeUnknown;
      if (!error.worthRetrying) throw Object.assign(error, { attempts: attempt });
      const waitMs = error.retryAfterMs ?? transport.retryDelayMs ?? limits.retryDelayMs;
      if (attempt >= attemptsMax || waitMs > limits.retryAfterMsMax) {
        // The last attempt's error, with how many were made and the longer wait the server asked for.
        if (error.failure !== 'status') error.message += ` (${attempt === 1 ? '1 attempt' : `${attempt} attempts`})`;
        throw Object.assign(error, { attempts: attempt, retryAfterMs: waitMs > limits.retryAfterMsMax ? waitMs : undefined });
      }
      const reason = error.failure === 'status' ? `the server answered ${error.status}${error.problem?.code ? ` (${printable(String(error.problem.code))})` : ''}` : error.message;
      transport.onRetry?.(`${reason}; sending it again in ${waitMs} ms${key === undefined ? '' : ' with the same Idempotency-Key'} (attempt ${attempt + 1} of ${attemptsMax})`);
      await (transport.sleep ?? sleep)(waitMs);
    }
  }
}

async function sendOnce(transport: Transport, request: HttpRequest): Promise<Omit<HttpAnswer, 'attempts'>> {
  const { method, url } = request;
  const asked = `${method} ${url.pathname}${url.search}`;
  const body = request.body?.();
  const headers = { ...request.headers, ...(request.token ? { authorization: `Bearer ${request.token}` } : {}) };
  let response: Response;
  try {
    const init: RequestInit = { method, headers, redirect: 'manual', signal: AbortSignal.timeout(transport.timeoutMs), ...(body === undefined ? {} : { body, duplex: 'half' }) };
    response = await (transport.fetch ?? globalThis.fetch)(url, init);
  } catch (error) {
    if (isBadPortError(error)) {
      // Nothing left this machine: the outcome is known (not done), and another try fails alike.
      throw new HttpError(`couldn't reach ${url.origin} for ${asked}: fetch refuses port ${url.port} (a "bad port" of the Fetch standard, blocked against cross-protocol attacks); run the server on another port and set ${transport.addressSetting} to it`, 'not-sent', undefined, undefined, { cause: error });
    }
    const failed = new HttpError(`couldn't reach ${url.origin} for ${asked}: ${networkReason(error, transport)}`, 'network', undefined, undefined, { cause: error });
    failed.notConnected = connectionNotMade(error);
    throw failed;
  }
  if (response.status >= 300 && response.status <= 399) {
    await response.body?.cancel().catch(() => {});
    throw new HttpError(redirectMessage(asked, url, response, transport.addressSetting), 'redirect', response.status);
  }
  const bytes = await boundedBody(transport, asked, url, response);
  if (response.ok) return { status: response.status, headers: response.headers, body: bytes };
  const problem = (jsonObjectOf(bytes) as ProblemDetails | undefined)
    ?? { status: response.status, title: response.statusText, detail: bytes.toString('utf8').slice(0, errorTextCharsMax) || undefined };
  const said = typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : '';
  const error = new HttpError(`${url.href} answered ${response.status}${said === '' ? '' : `: ${printable(said)}`}`, 'status', response.status, problem);
  error.retryAfterMs = retryAfterMsOf(response.headers.get('retry-after'), (transport.now ?? Date.now)());
  throw error;
}

/**
 * The body, read up to the bound; a connection broken, or the time run out, on the way is
 * 'lost'. An error answer's body is cut at limits.errorBodyBytesMax instead: its status is what counts.
 */
async function boundedBody(transport: Transport, asked: string, url: URL, response: Response): Promise<Buffer> {
  const cut = !response.ok;
  const max = cut ? limits.errorBodyBytesMax : transport.responseBytesMax;
  const tooLarge = () => new HttpError(`${url.origin} answered ${asked} with ${response.status}: the answer is more than ${max} bytes, the most chipledger reads`, 'too-large', response.status);
  if (!cut && Number(response.headers.get('content-length') ?? 0) > max) { // said before any of it is read
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = response.body?.getReader();
  try {
    while (reader !== undefined) {
      const { done, value } = await reader.read();
      if (done) break;
      if (length + value.byteLength > max) {
        await reader.cancel().catch(() => {});
        if (!cut) throw tooLarge();
        chunks.push(value.subarray(0, max - length));
        length = max;
        break;
      }
      length += value.byteLength;
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    // A POST may have been done: the caller sends it again with the same Idempotency-Key, which tells.
    throw new HttpError(`lost the connection to ${url.origin} while reading the answer to ${asked}: ${networkReason(error, transport)}`, 'lost', undefined, undefined, { cause: error });
  }
  return Buffer.concat(chunks, length);
}

/** The body as a JSON object (not an array), or undefined. */
export function jsonObjectOf(body: Buffer): object | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** A 3xx, said with where it points and what to set the server's address to. */
function redirectMessage(asked: string, url: URL, response: Response, addressSetting: string): string {
  const location = response.headers.get('location');
  const head = `${url.origin} answered ${asked} with ${response.status}, a redirect`;
  if (location === null) return `${head} without a Location; chipledger does not follow redirects: is ${addressSetting} the chipledger API?`;
  const target = URL.canParse(location, url.href) ? new URL(location, url) : undefined;
  // The base the API would have there: the Location less the path asked for (http://a → https://a).
  const base = target !== undefined && target.pathname.endsWith(url.pathname) ? `${target.origin}${target.pathname.slice(0, -url.pathname.length)}` : undefined;
  return `${head} to ${printable(target?.href ?? location)}; chipledger does not follow redirects (a POST would become a GET, without the token): `
    + `set ${addressSetting} to ${base === undefined ? 'the address of the chipledger API' : printable(base)}`;
}

/**
 * Whether a fetch failed before any byte of the request left this machine: no connection made
 * (connectionNotMadeCodes), or a port fetch blocks. A change whose every attempt failed so was
 * not sent (HttpError.outcomeUnknown false), and an interrupted one neither (http.ts).
 */
export function failedBeforeSending(error: unknown): boolean {
  return isBadPortError(error) || connectionNotMade(error);
}

function connectionNotMade(error: unknown): boolean {
  return connectionNotMadeCodes.has(String((error as { cause?: { code?: unknown } }).cause?.code));
}

/** fetch's failure for a port it blocks (fetchBlockedPorts): a TypeError caused by "bad port". */
function isBadPortError(error: unknown): boolean {
  return (error as { cause?: { message?: unknown } } | undefined)?.cause?.message === 'bad port';
}

function networkReason(error: unknown, transport: Transport): string {
  if ((error as Error).name === 'TimeoutError') return `no answer within ${transport.timeoutMs / 1000} s`;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return printable(String(cause?.code ?? cause?.message ?? (error as Error).message ?? error));
}

/** Retry-After in milliseconds: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMsOf(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^[0-9]{1,9}$/.test(text)) return Number(text) * 1000;
  const at = httpDateMs(text, nowMs);
  return at === undefined ? undefined : Math.max(0, at - nowMs);
}

const monthNames = 'Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec';
const clock = '([0-9]{2}):([0-9]{2}):([0-9]{2})';
/** The three forms of an HTTP-date (RFC 9110 §5.6.7), each in UTC: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must still read. */
const imfFixdate = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (${monthNames}) ([0-9]{4}) ${clock} GMT$`);
const rfc850Date = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), ([0-9]{2})-(${monthNames})-([0-9]{2}) ${clock} GMT$`);
const asctimeDate = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (${monthNames}) ( [0-9]|[0-9]{2}) ${clock} ([0-9]{4})$`);

/**
 * An HTTP-date as milliseconds since the epoch, or undefined for anything else. Read by its
 * grammar, not by Date.parse: that reads asctime, which has no zone and is UTC by definition, in
 * the local time zone (in New York a wait of seconds became one of five hours), takes a date
 * with no zone at all as local too, and takes "1.5" or "-1" as dates long past.
 */
function httpDateMs(text: string, nowMs: number): number | undefined {
  const imf = imfFixdate.exec(text);
  if (imf) return utcMs(Number(imf[3]), imf[2]!, Number(imf[1]), imf.slice(4, 7).map(Number));
  const rfc850 = rfc850Date.exec(text);
  if (rfc850) {
    // A two-digit year more than 50 years ahead is the latest past year ending in those digits (RFC 9110 §5.6.7).
    const nowYear = new Date(nowMs).getUTCFullYear();
    const year = nowYear - (nowYear % 100) + Number(rfc850[3]);
    return utcMs(year > nowYear + 50 ? year - 100 : year, rfc850[2]!, Number(rfc850[1]), rfc850.slice(4, 7).map(Number));
  }
  const asctime = asctimeDate.exec(text);
  if (asctime) return utcMs(Number(asctime[6]), asctime[1]!, Number(asctime[2]!.trim()), asctime.slice(3, 6).map(Number));
  return undefined;
}

/** A UTC time from an HTTP-date's fields, or undefined when one is out of range (31 Feb, 25:00); second 60 is a leap second. */
function utcMs(year: number, monthName: string, day: number, [hour, minute, second]: number[]): number | undefined {
  const month = monthNames.split('|').indexOf(monthName);
  if (hour! > 23 || minute! > 59 || second! > 60) return undefined;
  if (day < 1 || day > new Date(Date.UTC(year, month + 1, 0)).getUTCDate()) return undefined;
  return Date.UTC(year, month, day, hour, minute, second);
}

/**
 * The log's HTTP surface as a client sees it (C2SP tlog-tiles paths, RFC 9162 proofs, C2SP
 * tlog-proof bundles). Every answer is checked for shape here (a tile is width × 32 bytes,
 * an entry bundle holds exactly `width` entries, a proof is base64 of 32-byte hashes), so the
 * verifiers behind it only ever see well-formed data and report disagreements, not crashes.
 * Every error names the URL and what the server said, made printable (a log may be anyone's,
 * and its text reaches a terminal). Requests go through the CLI's one transport (../fetch.ts):
 * retries of a GET, Retry-After, redirects refused, answers bounded, as for the API client.
 */
import { limits } from '../../core/limits.ts';
import { entriesPath, hashSize, tilePath } from '../../tlog/index.ts';
import { HttpError, jsonObjectOf, send, type HttpAnswer, type HttpRequest, type SendOptions } from '../fetch.ts';
import { printableJson } from '../output.ts';

/** The server could not be reached, or answered with an error status or a malformed body. */
export class LogFetchError extends Error {
  /** A Retry-After (ms) the server asked for that was longer than the transport waits (limits.retryAfterMsMax). */
  retryAfterMs: number | undefined;

  constructor(
    readonly url: string,
    readonly status: number | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LogFetchError';
  }
}

/** What the verifiers need from a log; LogClient fetches it, tests may hand in tampered data. */
export interface LogSource {
  /** Where the data comes from, for messages. */
  readonly description: string;
  checkpoint(): Promise<string>;
  /** A hash tile: width × 32 bytes. */
  tile(level: number, index: number, width: number): Promise<Buffer>;
  /** The entries of the bundle beside level-0 tile `index`: exactly `width` of them. */
  entries(index: number, width: number): Promise<Buffer[]>;
  consistencyProof(from: number, to: number): Promise<Buffer[]>;
  /** Every key the log was signed with, oldest first, each later one with its announcement. */
  keys(): Promise<LogKeyEntry[]>;
}

/** One entry of GET /v1/log/keys. */
export interface LogKeyEntry {
  verifierKey: string;
  firstSize: number;
  /** The checkpoint note that announced this key, signed by the key before it; null for the first key. */
  announcement: string | null;
}

export interface LogClientOptions extends SendOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8080 (the /v1/log paths are added). */
  baseUrl: string;
  /** Bearer token: needed for entry bundles (authority or auditor) and for events. */
  token?: string;
  timeoutMs?: number;
}

/** A page of GET /v1/events, as far as `log prove` reads it. */
export class LogClient implements LogSource {
  private readonly base: string;

  constructor(private readonly options: LogClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
  }

  get description(): string {
    return this.base;
  }

  get hasToken(): boolean {
    return this.options.token !== undefined && this.options.token !== '';
  }

  async verifierKey(): Promise<string> {
    return (await this.text('/v1/log/key')).trim();
  }

  async checkpoint(): Promise<string> {
    return this.text('/v1/log/checkpoint');
  }

  async tile(level: number, index: number, width: number): Promise<Buffer> {
    const path = `/v1/log/${tilePath(level, index, width)}`;
    const bytes = await this.bytes(path, false);
    if (bytes.length !== width * hashSize) throw new LogFetchError(this.url(path), 200, `GET ${this.url(path)}: expected ${width * hashSize} bytes (${width} hashes), got ${bytes.length}`);
    return bytes;
  }

  async entries(index: number, width: number): Promise<Buffer[]> {
    const path = `/v1/log/${entriesPath(index, width)}`;
    const bytes = await this.bytes(path, true);
    const entries = parseEntryBundle(bytes);
    if (entries === undefined || entries.length !== width) {
      throw new LogFetchError(this.url(path), 200, `GET ${this.url(path)}: not an entry bundle of ${width} entries (${entries === undefined ? 'malformed' : `${entries.length} entries`})`);
    }
    return entries;
  }

  async inclusionProof(index: number, size: number): Promise<Buffer[]> {
    return this.proof(`/v1/log/proof/inclusion?index=${index}&size=${size}`);
  }

  async consistencyProof(from: number, to: number): Promise<Buffer[]> {
    return this.proof(`/v1/log/proof/consistency?from=${from}&to=${to}`);
  }

  async keys(): Promise<LogKeyEntry[]> {
    const path = '/v1/log/keys';
    const body = parseJson<{ keys?: unknown }>(this.url(path), await this.bytes(path, false));
    const keys = Array.isArray(body.keys) ? body.keys : [];
    const valid = keys.length > 0 && keys.every((key: Partial<LogKeyEntry> | null) => typeof key === 'object' && key !== null
      && typeof key.verifierKey === 'string' && Number.isSafeInteger(key.firstSize) && (key.announcement === null || typeof key.announcement === 'string'));
    if (!valid) throw new LogFetchError(this.url(path), 200, `GET ${this.url(path)}: the answer is not a list of log keys`);
    return keys as LogKeyEntry[];
  }

  /** The C2SP tlog-proof bundle of event `seq`. */
  async eventProof(seq: number): Promise<string> {
    return this.text(`/v1/log/events/${seq}/proof`);
  }

  /**
   * The canonical bytes of event `seq` through GET /v1/events/:seq (the caller's own events),
   * or undefined when the token does not see it (404).
   */
  async event(seq: number): Promise<Buffer | undefined> {
    const path = `/v1/events/${seq}`;
    let bytes: Buffer;
    try {
      bytes = await this.bytes(path, true);
    } catch (error) {
      if (error instanceof LogFetchError && error.status === 404) return undefined;
      throw error;
    }
    const item = parseJson<{ seq?: unknown; canonical?: unknown }>(this.url(path), bytes);
    return item.seq === seq && typeof item.canonical === 'string' ? Buffer.from(item.canonical, 'base64') : undefined;
  }

  /**
   * POST a cosigned checkpoint; returns how many cosignatures the log stored, and whose (as
   * name+hexid; undefined from a log that does not say).
   */
  async postCosignature(note: string): Promise<{ stored: number; witnesses: string[] | undefined }> {
    const path = '/v1/log/cosignatures';
    const answer = await this.send(path, false, { method: 'POST', body: () => note, headers: { 'content-type': 'text/plain; charset=utf-8' } });
    const body = parseJson<{ stored?: unknown; witnesses?: unknown }>(this.url(path), answer.body);
    const witnesses = Array.isArray(body.witnesses) && body.witnesses.every((witness) => typeof witness === 'string') ? body.witnesses as string[] : undefined;
    return { stored: typeof body.stored === 'number' ? body.stored : 0, witnesses };
  }

  private url(path: string): string {
    return `${this.base}${path}`;
  }

  private async proof(path: string): Promise<Buffer[]> {
    const body = parseJson<{ hashes?: unknown }>(this.url(path), await this.bytes(path, false));
    const hashes = Array.isArray(body.hashes) ? body.hashes : undefined;
    const decoded = hashes?.map((hash) => (typeof hash === 'string' ? Buffer.from(hash, 'base64') : Buffer.alloc(0)));
    if (decoded === undefined || decoded.some((hash) => hash.length !== hashSize)) {
      throw new LogFetchError(this.url(path), 200, `GET ${this.url(path)}: the answer is not a list of base64 SHA-256 hashes`);
    }
    return decoded;
  }

  private async text(path: string): Promise<string> {
    return (await this.bytes(path, false)).toString('utf8');
  }

  private async bytes(path: string, authorized: boolean): Promise<Buffer> {
    return (await this.send(path, authorized, { method: 'GET' })).body;
  }

  /** The token is sent only with the requests that need it (`authorized`: entry bundles, events). */
  private async send(path: string, authorized: boolean, request: Omit<HttpRequest, 'url' | 'token'>): Promise<HttpAnswer> {
    const url = this.url(path);
    const transport = { ...this.options, timeoutMs: this.options.timeoutMs ?? limits.logRequestTimeoutMs, responseBytesMax: limits.logResponseBytesMax, addressSetting: '--url' };
    try {
      return await send(transport, { ...request, url: new URL(url), token: authorized ? this.options.token : undefined });
    } catch (error) {
      throw error instanceof HttpError ? Object.assign(new LogFetchError(url, error.status, error.message, { cause: error }), { retryAfterMs: error.retryAfterMs }) : error;
    }
  }
}

/**
 * A JSON answer of a 2xx status. Anything else (an HTML page from a proxy, or a --url that is
 * not a chipledger server) is a LogFetchError naming the URL, never a parser's stack trace.
 */
function parseJson<T>(url: string, body: Buffer): T {
  const parsed = jsonObjectOf(body);
  if (parsed !== undefined) return parsed as T;
  throw new LogFetchError(url, 200, `${url} answered with something that is not a JSON object (${printableJson(body.subarray(0, 60).toString('utf8'), 'one line')}…); is --url a chipledger server?`);
}

/** C2SP tlog-tiles entry bundle: each entry as a big-endian uint16 length, then its bytes. */
export function parseEntryBundle(bytes: Buffer): Buffer[] | undefined {
  const entries: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 2 > bytes.length) return undefined;
    const length = bytes.readUInt16BE(offset);
    if (offset + 2 + length > bytes.length) return undefined;
    entries.push(bytes.subarray(offset + 2, offset + 2 + length));
    offset += 2 + length;
  }
  return entries;
}

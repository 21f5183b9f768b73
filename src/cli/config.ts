/**
 * The CLI's configuration: ONE typed object, read from the environment and a few command-line
 * flags, checked once at start (STYLE.md habit 5). Every problem is listed at once; a
 * CHIPLEDGER_* variable we do not know is refused (a typo must not be silently ignored);
 * nothing is guessed beyond the defaults written below.
 *
 * Every setting is declared, with its meaning and default, in `settings`; `chipledger --help`
 * and README.md's configuration table are written from the same words.
 */
import { isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import { limits } from '../core/limits.ts';
import { fetchBlockedPorts } from './fetch.ts';
import { formatKeyId, parseCosignatureVerifierKey, parseSignerKey } from '../tlog/index.ts';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/** Where the ledger's PostgreSQL is: an external server, or one we start under the data dir. */
export type DatabaseConfig = { kind: 'external'; url: string; writerUrl?: string } | { kind: 'embedded'; dataDir: string };

export interface Config {
  database: DatabaseConfig;
  /** Folder for the embedded PostgreSQL and the CLI's lock file. */
  dataDir: string;
  /** Address the API listens on. */
  host: string;
  port: number;
  logLevel: LogLevel;
  /** How often the server expires due shipments and licences. */
  sweepIntervalMs: number;
  /** Log tiles the server keeps in memory for proofs (the newest ones). */
  proofCacheTiles: number;
  /** Connections the API holds open at once from one remote address. */
  connectionsPerAddressMax: number;
  /** What client commands talk to. */
  api: { url: string; token: string | undefined };
  /** The transparency log's signing key and the witnesses whose cosignatures it keeps. */
  log: { keyFile: string | undefined; signerKey: string | undefined; previousKeyFile: string | undefined; witnessKeys: string[] };
}

/** Values given on the command line; they win over the environment. */
export interface ConfigFlags {
  port?: string;
  host?: string;
}

/** Settings whose values are secret: problems name them without their value. */
const secretVariables = new Set(['DATABASE_URL', 'DATABASE_WRITER_URL', 'CHIPLEDGER_TOKEN', 'CHIPLEDGER_LOG_SIGNER_KEY']);

interface Setting {
  variable: string;
  flag?: keyof ConfigFlags;
  description: string;
  defaultText: string;
}

/** The settings, in the order the help text lists them. */
export const settings: readonly Setting[] = [
  { variable: 'DATABASE_URL', description: 'PostgreSQL connection URL (postgres://user:password@host:port/database) of an external server', defaultText: 'none: an embedded PostgreSQL is started under CHIPLEDGER_DATA_DIR' },
  { variable: 'DATABASE_WRITER_URL', description: "with DATABASE_URL: the URL every connection but the migrations' logs in with, as a role that owns nothing (chipledger grants it the rights it needs at each start), so the server cannot switch the database's triggers off; DATABASE_URL's user must own chipledger's tables. The same server and database as DATABASE_URL", defaultText: "none: the server writes as DATABASE_URL's user (the embedded PostgreSQL always uses a writer role of its own)" },
  { variable: 'CHIPLEDGER_DATA_DIR', description: 'folder for the embedded PostgreSQL (pg/) and the lock file that lets admin commands reuse a running server', defaultText: './.chipledger' },
  { variable: 'CHIPLEDGER_HOST', flag: 'host', description: 'address the API listens on; 0.0.0.0 for every interface', defaultText: '127.0.0.1' },
  { variable: 'CHIPLEDGER_PORT', flag: 'port', description: 'TCP port of the API; serve fails, naming it, when the port is taken. The ports fetch refuses (the Fetch standard\'s "bad ports": 6000, 5060, 6665-6669, 10080 and others) are refused, as client commands could not reach them', defaultText: '8080' },
  { variable: 'CHIPLEDGER_LOG_LEVEL', description: `log level of the server's JSON logs on stderr: ${logLevels.join(', ')}`, defaultText: 'info' },
  { variable: 'CHIPLEDGER_SWEEP_INTERVAL_MS', description: `how often the server expires bookings past their deadline or under a licence no longer in force, and licences past their validity (${limits.sweepIntervalMsMin}-${limits.sweepIntervalMsMax})`, defaultText: '5000' },
  { variable: 'CHIPLEDGER_PROOF_CACHE_TILES', description: `transparency-log tiles the server keeps in memory for proofs, the newest first, 16 KiB each; a tile covers 256 events, so the default keeps about the newest million events. Proofs over older events read a tile from PostgreSQL (${limits.proofCacheTilesMin}-${limits.proofCacheTilesMax})`, defaultText: '4096' },
  { variable: 'CHIPLEDGER_CONNECTIONS_PER_ADDRESS_MAX', description: `connections the API holds open at once from one remote address; past it a new one is closed as it is accepted. Behind a reverse proxy every client has the proxy's address: bound each client at the proxy, and raise this to the connections the proxy opens (1-${limits.connectionsMax.toLocaleString('en-US')}, the bound on all connections)`, defaultText: String(limits.connectionsPerAddressMax) },
  { variable: 'CHIPLEDGER_URL', description: 'base URL of the API for client commands: http:// or https://, a path if the API is under one; no whitespace, query (?), fragment (#), user name or password, nor a port fetch refuses', defaultText: 'http://CHIPLEDGER_HOST:CHIPLEDGER_PORT (127.0.0.1 when the host is 0.0.0.0)' },
  { variable: 'CHIPLEDGER_TOKEN', description: 'bearer token (clt_...) for client commands; make one with `chipledger token create`', defaultText: 'none; client commands need it' },
  { variable: 'CHIPLEDGER_LOG_KEY_FILE', description: 'file holding the transparency log\'s signing key (C2SP signer key; mode 0600); make one with `chipledger log keygen`', defaultText: 'none: serve refuses to start without a log key, except with --demo (which keeps a demo key in CHIPLEDGER_DATA_DIR)' },
  { variable: 'CHIPLEDGER_LOG_SIGNER_KEY', description: 'the log\'s signing key itself (PRIVATE+KEY+...), for secret managers; instead of CHIPLEDGER_LOG_KEY_FILE', defaultText: 'none' },
  { variable: 'CHIPLEDGER_LOG_PREVIOUS_KEY_FILE', description: 'to rotate the log key: the file of the key that signed so far; the server announces the new key in a checkpoint both keys sign', defaultText: 'none' },
  { variable: 'CHIPLEDGER_LOG_WITNESSES', description: 'comma-separated witness verifier keys (C2SP cosignature/v1) whose cosignatures of our checkpoints are kept and served', defaultText: 'none' },
];

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/** Reads and checks everything; `problems` lists every problem found, each naming its source. */
export function readConfig(env: NodeJS.ProcessEnv, flags: ConfigFlags = {}, cwd: string = process.cwd()): ConfigResult {
  const problems: string[] = [];
  const known = new Set(settings.map((setting) => setting.variable));
  for (const name of Object.keys(env).sort()) {
    if (name.startsWith('CHIPLEDGER_') && !known.has(name)) {
      problems.push(`${name}: unknown setting; known CHIPLEDGER_* settings are ${[...known].filter((k) => k.startsWith('CHIPLEDGER_')).join(', ')}`);
    }
  }
  const read = <T>(variable: string, flag: keyof ConfigFlags | undefined, fallback: T, parse: (raw: string) => T | Problem): T => {
    const fromFlag = flag === undefined ? undefined : flags[flag];
    const raw = fromFlag ?? env[variable];
    if (raw === undefined) return fallback;
    const source = fromFlag === undefined ? variable : `--${flag}`;
    if (raw.length > limits.settingLengthMax) {
      problems.push(`${source}: longer than ${limits.settingLengthMax} characters`);
      return fallback;
    }
    const parsed = parse(raw);
    if (parsed instanceof Problem) {
      // Secrets (passwords in URLs, tokens) are never echoed back.
      problems.push(secretVariables.has(variable) ? `${source}: ${parsed.message}` : `${source}: ${parsed.message} (got ${JSON.stringify(withoutUrlPassword(raw))})`);
      return fallback;
    }
    return parsed;
  };
  const databaseUrl = read<string | undefined>('DATABASE_URL', undefined, undefined, parseDatabaseUrl);
  const writerUrl = read<string | undefined>('DATABASE_WRITER_URL', undefined, undefined, parseWriterUrl);
  if (writerUrl !== undefined && databaseUrl === undefined) problems.push('DATABASE_WRITER_URL: set only with DATABASE_URL (the embedded PostgreSQL makes its own writer role)');
  if (writerUrl !== undefined && databaseUrl !== undefined && sameLogin(writerUrl, databaseUrl)) problems.push("DATABASE_WRITER_URL: logs in as DATABASE_URL's user; the writer must be a role of its own");
  if (writerUrl !== undefined && databaseUrl !== undefined && !sameDatabase(writerUrl, databaseUrl)) problems.push("DATABASE_WRITER_URL: names another server or database than DATABASE_URL; give the same host, port and database, with the writer's user and password");
  const dataDir = resolve(cwd, read('CHIPLEDGER_DATA_DIR', undefined, './.chipledger', parseNonEmpty));
  const host = read('CHIPLEDGER_HOST', 'host', '127.0.0.1', parseHost);
  const port = read('CHIPLEDGER_PORT', 'port', 8080, parsePort);
  const logLevel = read<LogLevel>('CHIPLEDGER_LOG_LEVEL', undefined, 'info', parseLogLevel);
  const sweepIntervalMs = read('CHIPLEDGER_SWEEP_INTERVAL_MS', undefined, 5_000, parseSweepInterval);
  const proofCacheTiles = read('CHIPLEDGER_PROOF_CACHE_TILES', undefined, limits.tileCacheEntriesMax, (raw) => parseInteger(raw, limits.proofCacheTilesMin, limits.proofCacheTilesMax));
  const connectionsPerAddressMax = read('CHIPLEDGER_CONNECTIONS_PER_ADDRESS_MAX', undefined, limits.connectionsPerAddressMax, (raw) => parseInteger(raw, 1, limits.connectionsMax));
  const clientHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const url = read('CHIPLEDGER_URL', undefined, `http://${clientHost.includes(':') ? `[${clientHost}]` : clientHost}:${port}`, parseApiUrl);
  const token = read<string | undefined>('CHIPLEDGER_TOKEN', undefined, undefined, parseToken);
  const keyFile = read<string | undefined>('CHIPLEDGER_LOG_KEY_FILE', undefined, undefined, (raw) => resolve(cwd, raw));
  const signerKey = read<string | undefined>('CHIPLEDGER_LOG_SIGNER_KEY', undefined, undefined, parseSignerKeyText);
  const previousKeyFile = read<string | undefined>('CHIPLEDGER_LOG_PREVIOUS_KEY_FILE', undefined, undefined, (raw) => resolve(cwd, raw));
  const witnessKeys = read<string[]>('CHIPLEDGER_LOG_WITNESSES', undefined, [], parseWitnessKeys);
  // Asked of what was set, not of what was read: a value refused on its own (a malformed key,
  // one past settingLengthMax) is read as unset, and the conflict is a problem whatever else is.
  if (env.CHIPLEDGER_LOG_KEY_FILE !== undefined && env.CHIPLEDGER_LOG_SIGNER_KEY !== undefined) problems.push('CHIPLEDGER_LOG_KEY_FILE and CHIPLEDGER_LOG_SIGNER_KEY: set one of them, not both');
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    config: {
      database: databaseUrl === undefined ? { kind: 'embedded', dataDir: resolve(dataDir, 'pg') } : { kind: 'external', url: databaseUrl, ...(writerUrl === undefined ? {} : { writerUrl }) },
      dataDir,
      host,
      port,
      logLevel,
      sweepIntervalMs,
      proofCacheTiles,
      connectionsPerAddressMax,
      api: { url, token },
      log: { keyFile, signerKey, previousKeyFile, witnessKeys },
    },
  };
}

/** Client commands need a token; this is the one place that says so. */
export function apiToken(config: Config): { ok: true; token: string } | { ok: false; problem: string } {
  if (config.api.token === undefined) {
    return { ok: false, problem: 'CHIPLEDGER_TOKEN is not set: client commands need a bearer token (clt_...); `chipledger token create --org ORG --role ROLE --label L` prints one (on a new deployment, register the first organisation with `chipledger organisation register` first: README, "Setting up a production deployment"), or `chipledger demo` for the demo' };
  }
  return { ok: true, token: config.api.token };
}

/** A human-readable list of every problem, for stderr. */
export function formatProblems(problems: readonly string[]): string {
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return [`chipledger: the configuration has ${count}:`, ...problems.map((problem) => `  - ${problem}`), 'Run `chipledger --help` for every setting.'].join('\n');
}

/** The settings as help text. */
export function describeSettings(): string {
  return settings
    .map((setting) => `  ${setting.variable}${setting.flag ? ` (or --${setting.flag})` : ''}\n      ${setting.description}\n      default: ${setting.defaultText}`)
    .join('\n');
}

/**
 * A setting's value as echoed in a problem: a password in a URL (a mistake, but a secret all
 * the same) is hidden. A URL that does not parse (a bad port, a space in the host) may still
 * carry one: then whatever comes between :// and the last @ before the path is hidden.
 */
function withoutUrlPassword(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password === '') return raw;
    url.password = '(hidden)';
    return url.toString();
  } catch {
    return raw.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, '$1(hidden)@');
  }
}

class Problem {
  constructor(readonly message: string) {}
}

function parseDatabaseUrl(raw: string): string | Problem {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return new Problem('must be a URL such as postgres://user:password@db.example:5432/chipledger');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return new Problem(`must use postgres:// or postgresql://, not ${url.protocol}//`);
  if (url.hostname === '' && !url.searchParams.has('host')) return new Problem('must name a host');
  return raw;
}

/** A writer URL names its role: the grants go to it by name. */
function parseWriterUrl(raw: string): string | Problem {
  const parsed = parseDatabaseUrl(raw);
  if (parsed instanceof Problem) return parsed;
  return new URL(raw).username === '' ? new Problem('must name the writer role as its user (postgres://chipledger_writer:password@host/database)') : raw;
}

/** Whether two database URLs log in as one user (a URL without one logs in as the same default). */
function sameLogin(a: string, b: string): boolean {
  return decodeURIComponent(new URL(a).username) === decodeURIComponent(new URL(b).username);
}

/**
 * Whether two database URLs name one server and database: host (as written: localhost and
 * 127.0.0.1 are two), port (5432 when left out) and database (the user's name when left out),
 * and the host and port query parameters (a socket folder) where given.
 */
function sameDatabase(a: string, b: string): boolean {
  const place = (text: string) => {
    const url = new URL(text);
    // Without a database in the path, PostgreSQL connects to the one named after the user.
    const database = url.pathname === '' || url.pathname === '/' ? decodeURIComponent(url.username) : decodeURIComponent(url.pathname.slice(1));
    return JSON.stringify([url.hostname.toLowerCase(), url.port === '' ? '5432' : url.port, database, url.searchParams.get('host'), url.searchParams.get('port')]);
  };
  return place(a) === place(b);
}

function parseNonEmpty(raw: string): string | Problem {
  return raw.trim() === '' ? new Problem('must not be empty') : raw;
}

function parseHost(raw: string): string | Problem {
  const problem = new Problem('must be a host name or IP address such as 127.0.0.1 or 0.0.0.0');
  if (!/^[A-Za-z0-9.:-]+$/.test(raw)) return problem;
  // The client commands' default URL is made from it: it must be a host a URL can name
  // (1.2.3.4.5 is no IPv4 address to the URL parser, and a: b no IPv6 one).
  if (raw.includes(':')) return isIPv6(raw) ? raw : problem;
  try {
    new URL(`http://${raw}/`);
  } catch {
    return problem;
  }
  return raw;
}

function parseInteger(raw: string, min: number, max: number): number | Problem {
  if (!/^[0-9]+$/.test(raw)) return new Problem(`must be a whole number from ${min} to ${max}`);
  const value = Number(raw);
  if (value < min || value > max) return new Problem(`must be from ${min} to ${max}`);
  return value;
}

/** Said of CHIPLEDGER_PORT and of CHIPLEDGER_URL's port alike. */
const blockedPortRule = 'must not use a port that fetch refuses to connect to (a "bad port" of the Fetch standard, such as 6000 or 10080): client commands could not reach the server there; choose another port';

/**
 * serve's port. A port fetch blocks (fetchBlockedPorts: 6000, 5060, 10080 …) is refused rather
 * than warned about: serve would listen there, but every client command (and every browser)
 * would fail to reach it, and the default CHIPLEDGER_URL points there.
 */
function parsePort(raw: string): number | Problem {
  const port = parseInteger(raw, 1, 65_535);
  if (typeof port === 'number' && fetchBlockedPorts.has(port)) return new Problem(blockedPortRule);
  return port;
}

function parseSweepInterval(raw: string): number | Problem {
  return parseInteger(raw, limits.sweepIntervalMsMin, limits.sweepIntervalMsMax);
}

function parseLogLevel(raw: string): LogLevel | Problem {
  return (logLevels as readonly string[]).includes(raw) ? (raw as LogLevel) : new Problem(`must be one of ${logLevels.join(', ')}`);
}

/**
 * The API's base URL, as the parsed URL says it (origin and path, no trailing slash): client
 * commands append /v1/... to it as text. Whitespace anywhere is refused, not trimmed (the URL
 * parser drops it at the ends, so the raw text, a space included, became the base and every
 * request an "Invalid URL"), and so are '?' and '#' anywhere: a bare one at the end leaves
 * search and hash empty, yet the paths would have been appended after it.
 */
function parseApiUrl(raw: string): string | Problem {
  if (/\s/.test(raw)) return new Problem('must not contain spaces or other whitespace');
  if (/[?#]/.test(raw)) return new Problem("must not have a query or fragment ('?' or '#')");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return new Problem('must be a URL such as http://127.0.0.1:8080');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return new Problem(`must use http:// or https://, not ${url.protocol}//`);
  // fetch refuses such a URL, and its error (printed) would carry the password.
  if (url.username !== '' || url.password !== '') return new Problem('must not hold a user name or password; client commands authenticate with CHIPLEDGER_TOKEN');
  if (url.port !== '' && fetchBlockedPorts.has(Number(url.port))) return new Problem(blockedPortRule);
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

function parseSignerKeyText(raw: string): string | Problem {
  try {
    parseSignerKey(raw.trim());
    return raw.trim();
  } catch (error) {
    return new Problem(`must be a C2SP Ed25519 signer key (PRIVATE+KEY+name+id+key): ${(error as Error).message}`);
  }
}

/**
 * Witness keys, each once: a witness is told apart by its name and key id, and two entries
 * for one (the same key listed twice) would leave it unclear which verifies its lines.
 */
function parseWitnessKeys(raw: string): string[] | Problem {
  const keys = raw.split(',').map((key) => key.trim()).filter((key) => key !== '');
  const seen = new Set<string>();
  for (const key of keys) {
    let witness;
    try {
      witness = parseCosignatureVerifierKey(key);
    } catch (error) {
      return new Problem(`each entry must be a witness verifier key (name+id+key, signature type 0x04 (cosignature/v1) or 0x01 (Ed25519)): ${(error as Error).message}`);
    }
    const identity = `${witness.name}+${formatKeyId(witness.keyId)}`;
    if (seen.has(identity)) return new Problem(`lists the witness key ${identity} more than once; list each witness once`);
    seen.add(identity);
  }
  return keys;
}

/** A chipledger API token's form; the log commands hold their --token to it too. */
export const apiTokenPattern = /^clt_[A-Za-z0-9_-]+$/;
export const apiTokenRule = 'must be a chipledger token: clt_ followed by letters, digits, _ and -';

function parseToken(raw: string): string | Problem {
  if (!apiTokenPattern.test(raw)) return new Problem(apiTokenRule);
  return raw;
}

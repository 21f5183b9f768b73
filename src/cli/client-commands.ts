/**
 * Client commands: thin over the HTTP API (src/server), with CHIPLEDGER_URL and CHIPLEDGER_TOKEN.
 * Lists print one page as a table (or --json); bulk files are checked whole before anything is
 * sent, and sent in one request, since a manifest is all or nothing.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { limits } from '../core/limits.ts';
import { shipmentBook, shipmentReturn, shipmentTransition, tokenSecretPrefix, unitsDeploy } from '../ledger/schemas.ts';
import { apiToken, type Config } from './config.ts';
import { amountOf, checkBody, idSegment, parseDeadline, revokeAdvice, unitsOf } from './client-values.ts';
import { ApiClient, unknownOutcomeOf } from './http.ts';
import { Failure, isUnprintable, printable, printableJson, type Output } from './output.ts';
import { getPage, pageCommand, recordCommand } from './page-commands.ts';
import { createProgress } from './progress.ts';
import { checkSerialCsv, formatCsvProblems, serialCsvBytesMax, type SerialEntry } from './serials-csv.ts';
import { renderTable, type Row } from './table.ts';

export interface ListOptions {
  status?: string;
  /** allocations list: only those on this licence. */
  licence?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
}

export function clientFor(config: Config, output?: Output): ApiClient {
  const token = apiToken(config);
  if (!token.ok) throw new Failure(token.problem, 2);
  return new ApiClient({ baseUrl: config.api.url, token: token.token, ...(output === undefined ? {} : { onRetry: (message: string) => output.err(`note: ${message}`) }) });
}

/** What every state-changing command takes: the Idempotency-Key of an earlier run to rerun it with. */
export interface ChangeOptions {
  idempotencyKey?: string;
}

/** The server's rule for a key (src/server/commands.ts): said before anything is read or sent. */
const idempotencyKeyPattern = /^[\x21-\x7E]+$/;

export function checkedKey(options: ChangeOptions): ChangeOptions {
  const key = options.idempotencyKey;
  if (key === undefined) return {};
  if (key.length > limits.idempotencyKeyLengthMax || !idempotencyKeyPattern.test(key)) {
    throw new Failure(`--idempotency-key must be 1 to ${limits.idempotencyKeyLengthMax} visible ASCII characters (no spaces); got ${key.length} characters`, 2);
  }
  // The server keeps keys in plain text for good and refuses a token's secret as one (rule
  // idempotency-key-secret); said here before anything is sent, and without quoting the key.
  if (key.startsWith(tokenSecretPrefix)) {
    throw new Failure(`--idempotency-key starts with ${tokenSecretPrefix} as a token's secret does, and the server keeps keys in plain text; nothing was sent. Give another key (or none: a fresh one is made); ${revokeAdvice(key)}`, 2);
  }
  return { idempotencyKey: key };
}

/**
 * Sends a change. When its outcome is unknown (the client gave up on a 503, or the answer
 * was lost), the error gets the command line that sends the same change with the same key:
 * `rerun` is the command as it would be typed, every value as sent (a --deadline of 30d is
 * given as the time it was, or the server would see another body under the same key).
 * `file` is the serial file the change was read from: one read from stdin is not there to
 * send again, and the line says so after a '#', so that it can still be pasted as it is.
 */
export async function change<T>(rerun: readonly string[], send: () => Promise<T>, file?: string): Promise<T> {
  try {
    return await send();
  } catch (error) {
    const outcome = unknownOutcomeOf(error);
    if (outcome !== undefined) outcome.rerun = `${commandLine([...rerun, '--idempotency-key', outcome.idempotencyKey])}${file === stdinFile ? '  # with the same file on stdin' : ''}`;
    throw error;
  }
}

/**
 * Words as a shell reads them back, so that the line, pasted, sends the same request byte for
 * byte: under the same Idempotency-Key, a value that differs by one character is refused (422
 * idempotency_mismatch), and a user told to use a new key would make the change twice. A word
 * of plain characters is given as it is, one with others in single quotes, and one holding a
 * character a terminal acts on (a line break in a reason or a site's name, which the API keeps;
 * a tab, an escape, a bidi control) in ANSI-C quotes, $'…', with such characters escaped
 * (shellEscaped): bash, zsh, ksh and POSIX.1-2024 sh read them, and the line holds nothing a
 * terminal acts on, so it is also safe to print.
 */
export function commandLine(words: readonly string[]): string {
  return words.map(shellWord).join(' ');
}

function shellWord(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  if (![...word].some(isUnprintable)) return `'${word.replaceAll("'", "'\\''")}'`;
  return `$'${shellEscaped(word)}'`;
}

/** The escapes of $'…' that have names, and the backslash, which is its escape; every other character escaped is given as its UTF-8 bytes. */
const namedEscapes: Readonly<Record<string, string>> = { '\n': '\\n', '\t': '\\t', '\r': '\\r', '\\': '\\\\' };

/**
 * A word's text inside $'…'. A control or bidi character, and a quote, are written as their
 * UTF-8 bytes, \xHH each: bytes, unlike \uHHHH, do not depend on the shell's locale, and
 * the argument is those bytes whatever it is. A quote so written also keeps an interactive
 * bash's history expansion from reading a '!' after it as outside the quotes. A hex digit
 * right after an \xHH is escaped too: POSIX leaves \x followed by three hex digits unspecified.
 */
function shellEscaped(word: string): string {
  let escaped = '';
  let afterHexEscape = false;
  for (const character of word) {
    const named = namedEscapes[character];
    const asBytes: boolean = isUnprintable(character) || character === "'" || (afterHexEscape && /^[0-9A-Fa-f]$/.test(character));
    if (named !== undefined) escaped += named;
    else if (asBytes) escaped += [...Buffer.from(character, 'utf8')].map((byte) => `\\x${byte.toString(16).padStart(2, '0')}`).join('');
    else escaped += character;
    afterHexEscape = named === undefined && asBytes;
  }
  return escaped;
}

/** The ids a shipment command's refusal of an id gives as examples (idSegment). */
const shipmentIdExamples = 'L-7 or S-12';

export async function listCommand(client: ApiClient, resource: 'licences' | 'allocations' | 'shipments', preferred: readonly string[], options: ListOptions, output: Output): Promise<number> {
  const view = resource === 'licences'
    ? { columns: preferred, rows: (items: Row[]) => items.map(licenceRow), note: (items: Row[]) => (items.some((item) => item.totalsScope === ownAllocations) ? `(own allocations: ${ownAllocationsNote})` : undefined) }
    : { columns: preferred };
  return pageCommand(client, `/v1/${resource}`, { status: options.status, licenceId: options.licence }, view, options, output);
}

/** The API's totalsScope of a recipient's figures: sums over its own allocations. */
const ownAllocations = 'own_allocations';
const ownAllocationsNote = "on a licence marked so, allocatedUnits and shippedUnits count only your own allocations, not the rest of the licence's authorisedUnits";

/**
 * A licence as a list shows it. Its allocatedUnits and shippedUnits reach as far as the API's
 * totalsScope says; for a recipient that is its own allocations, which the id says, as the
 * utilisation report does, so they are not read as shares of the licence's authorisedUnits.
 */
function licenceRow(licence: Row): Row {
  return licence.totalsScope === ownAllocations ? { ...licence, id: `${String(licence.id)} (own allocations)` } : licence;
}

export async function showCommand(client: ApiClient, resource: 'licences' | 'shipments', id: string, options: { json?: boolean }, output: Output): Promise<number> {
  return recordCommand(client, `/v1/${resource}${idSegment(id, shipmentIdExamples)}`, options, output, resource === 'licences' ? withValue : undefined);
}

/**
 * A licence with its value in its currency's units on a line of its own, before the minor
 * units it is stored in: "valueMinor 100,000" beside "currency USD" reads as 100,000 dollars
 * (the output review), and `licences versions` says 1,000.00 USD.
 */
function withValue(licence: Row): Row {
  if (licence.valueMinor === undefined || licence.valueMinor === null) return licence;
  return Object.fromEntries(Object.entries(licence).flatMap(([key, value]) => (key === 'valueMinor' ? [['value', amountOf(value, licence.currency)], [key, value]] : [[key, value]])));
}

export const columns = {
  licences: ['id', 'reference', 'direction', 'status', 'authorisedUnits', 'allocatedUnits', 'shippedUnits', 'validTo', 'demo'],
  allocations: ['id', 'licenceId', 'recipientId', 'units', 'reservedUnits', 'shippedUnits', 'availableUnits', 'periodStart', 'periodEnd'],
  shipments: ['id', 'reference', 'status', 'recipientId', 'productId', 'units', 'serialCount', 'deadline'],
} as const;

export interface BookOptions extends ChangeOptions {
  exportAllocation: string;
  importAllocation: string;
  product: string;
  units: string;
  deadline: string;
  reference?: string;
}

/** The option that gives each field of a booking, for checkBody's refusals. */
const bookOptionOf: Readonly<Record<string, string>> = {
  exportAllocationId: '--export-allocation', importAllocationId: '--import-allocation', productId: '--product', units: '--units', deadline: '--deadline', reference: '--reference',
};

export async function bookCommand(client: ApiClient, options: BookOptions, output: Output, now: () => Date = () => new Date()): Promise<number> {
  const units = unitsOf('--units', options.units);
  const key = checkedKey(options);
  const deadline = parseDeadline(options.deadline, now());
  const request = {
    exportAllocationId: options.exportAllocation,
    importAllocationId: options.importAllocation,
    productId: options.product,
    units,
    deadline,
    ...(options.reference === undefined ? {} : { reference: options.reference }),
  };
  // Held to the API's schema before anything is sent (an id, a reference): a usage error, exit 2.
  checkBody(shipmentBook, { body: request, fromOptions: new Set(Object.keys(request)) }, bookOptionOf);
  const rerun = [
    'chipledger', 'shipments', 'book', '--export-allocation', options.exportAllocation, '--import-allocation', options.importAllocation,
    '--product', options.product, '--units', options.units, '--deadline', deadline, ...(options.reference === undefined ? [] : ['--reference', options.reference]),
  ];
  const body = await change(rerun, () => client.post<Row>('/v1/shipments', request, key));
  // A success without the booking's id (a server that is not chipledger's) is no booking to report.
  if (typeof body.shipmentId !== 'string' || !Number.isSafeInteger(body.units)) {
    throw new Failure('POST /v1/shipments answered with a success that is not a booking (no shipmentId and units): the outcome is unknown; is CHIPLEDGER_URL the chipledger API?');
  }
  output.out(`Booked shipment ${printable(body.shipmentId)}: ${(body.units as number).toLocaleString('en-US')} units reserved on both licences.`);
  return 0;
}

/** A shipment's steps the CLI takes; a return states its reason (schemas.ts shipmentReturn), the others may. */
export type ShipmentStepName = 'ship' | 'clear' | 'deliver' | 'cancel' | 'return';

export async function transitionCommand(client: ApiClient, step: ShipmentStepName, id: string, options: { reason?: string } & ChangeOptions, output: Output): Promise<number> {
  const route = `/v1/shipments${idSegment(id, shipmentIdExamples)}/${step}`;
  checkBody(step === 'return' ? shipmentReturn : shipmentTransition, { body: { shipmentId: id, ...(options.reason === undefined ? {} : { reason: options.reason }) }, fromOptions: new Set(['reason']) }, { shipmentId: 'the shipment id', reason: '--reason' });
  const key = checkedKey(options);
  const rerun = ['chipledger', 'shipments', step, id, ...(options.reason === undefined ? [] : ['--reason', options.reason])];
  const body = await change(rerun, () => client.post<Row>(route, options.reason === undefined ? {} : { reason: options.reason }, key));
  output.out(`Shipment ${printable(String(body.shipmentId ?? id))} is now ${printable(String(body.status ?? step))}.`);
  return 0;
}

/** What a command does with a serial file, for its messages: a manifest is imported; a deployment report sent. */
export type SerialFileUse = 'imported' | 'sent';

/** Reads and checks a serial CSV; on any bad line prints them all and fails, having sent nothing. */
export async function readSerialFile(file: string, rules: { serialsMax: number; acceptsGpuUuids: boolean; use: SerialFileUse }, output: Output): Promise<SerialEntry[]> {
  const bytes = await readBounded(file);
  const progress = createProgress('checking ', bytes.length, 'bytes', output.errStream);
  const checked = checkSerialCsv(bytes, { ...rules, onProgress: (done) => progress.update(done) });
  const count = checked.entries.length;
  progress.finish(checked.problemCount === 0 ? `${count.toLocaleString('en-US')} serial${count === 1 ? '' : 's'}, no problems` : '');
  if (checked.problemCount > 0) {
    const name = nameOfFile(file);
    output.err(formatCsvProblems(name, checked, rules.use));
    throw new Failure(`${name} was not ${rules.use}`);
  }
  return checked.entries;
}

/** The file name that means standard input (`cat f | chipledger deploy SITE-1 -`), as `api --body -` takes it. */
export const stdinFile = '-';

/** A file as messages name it: `-` is said as stdin, not as a file called "-". */
export function nameOfFile(file: string): string {
  return file === stdinFile ? 'stdin' : file;
}

/** Where `-` is read from; tests give a stream of their own. */
export type StdinInput = AsyncIterable<Uint8Array>;

/**
 * The bytes of a file, a pipe or a device (`cat f | chipledger deploy SITE-1 /dev/stdin`), or of
 * stdin for `-`, at most serialCsvBytesMax of them: a regular file says its size and a bigger
 * one is refused unread; a pipe or a device says 0, so its bytes are counted as they come and
 * reading stops one byte past the bound, whatever is still behind it. `what` names the kind of
 * file in the refusal (the api command reads request bodies under the same bound). A file that
 * cannot be read is named by its absolute path: under `npm run` a relative name is taken from the
 * repository's root, not from the folder the user is in, and the path shows where it was looked for.
 */
export async function readBounded(file: string, what = 'a serial file', bytesMax = serialCsvBytesMax, stdin: StdinInput = process.stdin): Promise<Buffer> {
  if (file === stdinFile) return readStdinBounded(stdin, what, bytesMax);
  const max = bytesMax.toLocaleString('en-US');
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw new Failure(`couldn't read ${resolve(file)}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  try {
    const info = await handle.stat();
    if (info.isFile() && info.size > bytesMax) throw new Failure(`${file} is ${info.size.toLocaleString('en-US')} bytes; ${what} may have at most ${max}`);
    // Not zeroed: only the bytes read are ever looked at.
    const buffer = Buffer.allocUnsafe(bytesMax + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) return buffer.subarray(0, length);
      length += bytesRead;
      if (length > bytesMax) throw new Failure(`${file} holds more than ${max} bytes (reading stopped there); ${what} may have at most ${max}`);
    }
  } catch (error) {
    if (error instanceof Failure) throw error;
    // A folder, a file we may not read: said in one line, like a missing file.
    throw new Failure(`couldn't read ${resolve(file)}: ${(error as Error).message}`);
  } finally {
    await handle.close();
  }
}

/**
 * stdin's bytes, counted as they come. Read as a stream, not by opening /dev/stdin, which
 * exists on Linux and macOS only, and fails there when stdin is a socket. Reading stops at the
 * chunk that passes the bound (a pipe gives at most 64 KiB at a time), whatever is still behind it.
 */
async function readStdinBounded(stdin: StdinInput, what: string, bytesMax: number): Promise<Buffer> {
  const max = bytesMax.toLocaleString('en-US');
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for await (const chunk of stdin) {
      length += chunk.byteLength;
      if (length > bytesMax) throw new Failure(`stdin holds more than ${max} bytes (reading stopped there); ${what} may have at most ${max}`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof Failure) throw error;
    // A closed or unreadable stdin (EBADF, EIO): said in one line, like a file that cannot be read.
    throw new Failure(`couldn't read stdin: ${(error as Error).message}`);
  }
  return Buffer.concat(chunks, length);
}

/** Posts a bulk body, with an upload bar and a note while the server checks and commits it. */
export async function upload(client: ApiClient, route: string, body: unknown, key: ChangeOptions, output: Output): Promise<Row> {
  let bar: ReturnType<typeof createProgress> | undefined;
  try {
    return await client.post<Row>(route, body, {
      ...key,
      onUpload: (sent, total) => {
        bar ??= createProgress('uploading', total, 'bytes', output.errStream);
        bar.update(sent);
        if (sent === total) bar.finish('waiting for the ledger to check and commit');
      },
    });
  } finally {
    // A failed upload ends the bar's line, so the error that follows starts on a line of its own.
    bar?.abandon();
  }
}

export async function manifestImportCommand(client: ApiClient, shipmentId: string, file: string, output: Output, options: ChangeOptions = {}): Promise<number> {
  const route = `/v1/shipments${idSegment(shipmentId, shipmentIdExamples)}/manifest`; // a bad id is said before the file is read
  const key = checkedKey(options);
  const entries = await readSerialFile(file, { serialsMax: limits.shipmentSerialsMax, acceptsGpuUuids: true, use: 'imported' }, output);
  const serials = entries.map((entry) => (entry.gpuUuid === undefined ? entry.serial : { serial: entry.serial, gpuUuid: entry.gpuUuid }));
  const body = await change(['chipledger', 'manifest', 'import', shipmentId, file], () => upload(client, route, { serials }, key, output), file);
  output.out(`Attached ${Number(body.added ?? entries.length).toLocaleString('en-US')} serials to shipment ${shipmentId}${body.serialCount === undefined ? '' : ` (${Number(body.serialCount).toLocaleString('en-US')} listed in all)`}.`);
  return 0;
}

export async function deployCommand(client: ApiClient, siteId: string, file: string, output: Output, options: ChangeOptions = {}): Promise<number> {
  // The site's id, held to the API's rule (a token's secret refused unquoted) before the file is read: it travels in the body.
  checkBody(unitsDeploy.pick({ siteId: true }), { body: { siteId }, fromOptions: new Set(['siteId']) }, { siteId: 'the site id' });
  const key = checkedKey(options);
  // The API's units.deploy takes serials alone: a gpu_uuid column is refused, not dropped unchecked.
  const entries = await readSerialFile(file, { serialsMax: limits.deploymentSerialsMax, acceptsGpuUuids: false, use: 'sent' }, output);
  const body = await change(['chipledger', 'deploy', siteId, file], () => upload(client, '/v1/units/deploy', { siteId, serials: entries.map((entry) => entry.serial) }, key, output), file);
  output.out(`Reported ${Number(body.deployed ?? entries.length).toLocaleString('en-US')} units at site ${siteId}${Number(body.moved) > 0 ? ` (${Number(body.moved).toLocaleString('en-US')} moved from other sites)` : ''}.`);
  return 0;
}

interface UtilisationLicence extends Row {
  licenceId: string;
  allocations?: Row[];
}

/** The items of every page of a list, up to limits.reportPagesMax pages (then `stopped` is called). */
async function allPages<T>(client: ApiClient, path: string, stopped: () => void): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  const followed = new Set<string>();
  for (let pages = 0; pages < limits.reportPagesMax; pages += 1) {
    const page = await getPage<T>(client, path, { limit: limits.pageSizeMax, cursor });
    // One at a time: a spread passes every item as an argument, and a page of millions of small items reaches the end of the stack.
    for (const item of page.items) items.push(item);
    if (page.nextCursor === null) return items;
    cursor = nextCursorOnce(followed, page.nextCursor, path, pages + 1);
  }
  stopped();
  return items;
}

/**
 * A page's nextCursor, if no earlier page of this walk gave it: a server that answers the same
 * cursor again, or one from before, would have the walk read the same pages up to its bound
 * and print them twice over as if they were the list.
 */
export function nextCursorOnce(followed: Set<string>, next: string, path: string, page: number): string {
  if (followed.has(next)) throw new Failure(`${path} answered page ${page} with a cursor it gave before (${printable(next)}), so its pages would go round for ever; is CHIPLEDGER_URL the chipledger API?`);
  followed.add(next);
  return next;
}

/** Every page of the utilisation report, as one table: a licence, then its allocations. */
export async function utilisationCommand(client: ApiClient, options: { json?: boolean }, output: Output): Promise<number> {
  // A report cut at the page bound is printed, and exits 1: a script that saves it must not take it for every licence.
  let exitCode = 0;
  const licences = await allPages<UtilisationLicence>(client, '/v1/reports/utilisation', () => {
    exitCode = 1;
    output.err(`chipledger: stopped after ${limits.reportPagesMax} pages, before the end of the report, so it is incomplete (exit 1); use the API for the rest`);
  });
  if (options.json) {
    output.out(printableJson(licences));
    return exitCode;
  }
  // Names make the table readable; without them (an old server, a refusal) ids will do.
  // Every page of them: a recipient past the first page would be shown by id alone.
  const names = await allPages<Row>(client, '/v1/organisations', () => {}).then(
    (organisations) => new Map(organisations.map((org) => [String(org.id), String(org.nameRomanised ?? org.name)])),
    () => new Map<string, string>(),
  );
  output.out(renderTable(utilisationRows(licences, names), ['licence', 'reference', 'status', 'units', 'allocated', 'reserved', 'shipped', 'available', 'used %']));
  return exitCode;
}

/** The used share shown for any use short of all of it, and for any use at all: one decimal's steps. */
const usedPercentBelowAll = 99.9;
const usedPercentAboveNone = 0.1;

export function utilisationRows(licences: readonly UtilisationLicence[], names: ReadonlyMap<string, string> = new Map()): Row[] {
  // To one decimal, but never 100 while a unit is left, nor 0 once one is used: 999,999 of
  // 1,000,000 units shown as 100 % used beside 1 available would say the licence is spent.
  const usedPercent = (row: Row, units: unknown): number | undefined => {
    const total = Number(units);
    if (!(total > 0)) return undefined;
    const used = Number(row.reservedUnits ?? 0) + Number(row.shippedUnits ?? 0);
    const rounded = Math.round((used / total) * 1000) / 10;
    return used > 0 && used < total ? Math.min(usedPercentBelowAll, Math.max(usedPercentAboveNone, rounded)) : rounded;
  };
  return licences.flatMap((licence) => {
    // A recipient's figures are sums over its own allocations (the API's totalsScope): its
    // use is a share of what it was allocated, not of the licence's units.
    const own = licence.totalsScope === ownAllocations;
    return [{
      licence: `${licence.licenceId} (${String(licence.direction ?? '')}${own ? '; own allocations' : ''})`,
      reference: licence.reference,
      status: licence.status,
      units: licence.units,
      allocated: licence.allocatedUnits,
      reserved: licence.reservedUnits,
      shipped: licence.shippedUnits,
      available: licence.availableUnits,
      'used %': usedPercent(licence, own ? licence.allocatedUnits : licence.units),
    },
    ...(licence.allocations ?? []).map((allocation) => ({
      licence: `  └ ${String(allocation.allocationId)}`,
      reference: `for ${String(allocation.recipientId)}${names.has(String(allocation.recipientId)) ? ` ${names.get(String(allocation.recipientId))}` : ''}`,
      status: undefined,
      units: allocation.units,
      allocated: undefined,
      reserved: allocation.reservedUnits,
      shipped: allocation.shippedUnits,
      available: allocation.availableUnits,
      'used %': usedPercent(allocation, allocation.units),
    })),
    // The report embeds a licence's first allocations only (the API says when there are more).
    ...(licence.allocationsTruncated === true
      ? [{ licence: '  └ …', reference: `more allocations than shown: chipledger allocations list --licence ${licence.licenceId}` }]
      : [])];
  });
}

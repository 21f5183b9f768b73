/**
 * Serial-number CSV files (manifests and deployment reports), checked whole before anything is
 * sent: a manifest is all or nothing, so a file with one bad line is reported in full (every
 * line checked, also past the serial limit; the first bad lines by number, the rest counted)
 * and nothing of it is imported.
 *
 * Format: a header `serial` or `serial,gpu_uuid` (the second only where the command sends GPU
 * UUIDs: a manifest, not a deployment report), then one unit per line. Lines end with LF or
 * CRLF; a UTF-8 byte order mark at the very start is skipped; blank lines are skipped; a field,
 * header names included, may be wrapped in double quotes (spreadsheets, R and Python's
 * QUOTE_ALL do that), but serials never contain commas or quotes.
 *
 * Files joined together (`cat a.csv b.csv`) are refused where the second one starts: a line that
 * repeats the header, or a byte order mark anywhere but at the start, is a bad line, never a unit
 * (a unit whose serial is SERIAL is listed "SERIAL", in quotes: isRepeatedHeader).
 *
 * A file that is not UTF-8 text with LF or CRLF line ends as a whole (UTF-16, as Excel's
 * "Unicode text" saves; NUL bytes; lines that end with CR alone, as old Mac editors save) is
 * one problem of the file, said as what it is, not a problem on every line.
 *
 * A serial is checked by the API schema's own rule, with its words (core/serial.ts): a
 * manifest's serials make units, so they are in capitals and `ab01` is refused, naming AB01 as
 * the spelling to send; a deployment report's name units already made, which an earlier
 * release may have made in lower case, so they are taken in either case.
 */
import { limits } from '../core/limits.ts';
import { problemOfNewSerial, problemOfSerial } from '../core/serial.ts';
import { gpuUuidPattern } from '../ledger/schemas.ts';
import { printableJson } from './output.ts';

export const serialCsvBytesMax = limits.serialCsvBytesMax;
/** Problems printed for one file; the rest are counted. */
export const problemsShownMax = 50;
/**
 * Characters of a file's own text (a header, a GPU UUID field) quoted in a message; the rest
 * is counted. A one-line file is a header of up to 16 MiB, which no terminal should receive.
 */
export const quotedCharactersMax = 80;

const headerNames = { 1: ['serial'], 2: ['serial', 'gpu_uuid'] } as const;
const byteOrderMark = '\uFEFF';

export interface SerialEntry {
  serial: string;
  gpuUuid?: string;
}

export interface CsvProblem {
  line: number;
  message: string;
}

export interface SerialCsv {
  entries: SerialEntry[];
  /** The first problemsShownMax problems: the serial limit first where the file passes it, then by line. */
  problems: CsvProblem[];
  /** Every problem found, shown or not. */
  problemCount: number;
}

export interface CheckOptions {
  /** Most serials the file may list (a manifest: 100,000). */
  serialsMax: number;
  /**
   * Whether lines may carry a GPU UUID (header `serial,gpu_uuid`). A manifest's may; a
   * deployment report's may not: the API's units.deploy takes serials alone, so a GPU UUID
   * column would be dropped unchecked while the user believes it was checked.
   */
  acceptsGpuUuids: boolean;
  /**
   * Whether the file's serials make units and manifest lines (a manifest: in capitals, as the
   * API's manifest entries) or name units already made (a deployment report, the units' ends:
   * in either case, as the API's units.* commands take them). Unsaid, it is acceptsGpuUuids:
   * a manifest's lines alone may carry GPU UUIDs.
   */
  makesUnits?: boolean;
  /** Called now and then with the bytes checked so far. */
  onProgress?: (bytesDone: number) => void;
}

// ignoreBOM keeps every U+FEFF in the text: the one at the start is skipped by linesOf, and any
// other (a second mark, or one at the start of a line decoded alone) is a bad line, not nothing.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Checks a whole file, every line of it, also past the serial limit; `entries` is only
 * meaningful when `problemCount` is 0, and holds at most serialsMax.
 */
export function checkSerialCsv(bytes: Uint8Array, options: CheckOptions): SerialCsv {
  const entries: SerialEntry[] = [];
  if (bytes.length > serialCsvBytesMax) {
    return { entries, problems: [{ line: 0, message: `the file is ${bytes.length.toLocaleString('en-US')} bytes; a serial file may have at most ${serialCsvBytesMax.toLocaleString('en-US')}` }], problemCount: 1 };
  }
  const encoding = problemOfEncoding(bytes);
  if (encoding !== undefined) return { entries, problems: [{ line: 0, message: encoding }], problemCount: 1 };
  const problems = new ProblemList();
  const problemOf = (options.makesUnits ?? options.acceptsGpuUuids) ? problemOfNewSerial : problemOfSerial;
  const seen = new FirstLines();
  let columns: 1 | 2 | undefined;
  /** Whether the header's names are in quotes: a data line spelt like it may then not be a serial (isRepeatedHeader). */
  let headerQuoted = false;
  let line = 0;
  let serialCount = 0;
  // Past the limit every line is still checked, so the whole file is reported at once; the
  // limit is one problem, and no more entries are kept.
  let firstLinePastLimit: number | undefined;
  for (const { text, end } of linesOf(bytes)) {
    line += 1;
    if (line % 4096 === 0) options.onProgress?.(end);
    if (text === undefined) {
      problems.add(line, 'is not valid UTF-8');
      continue;
    }
    if (text.includes(byteOrderMark)) {
      // Said as what it most likely is (files joined together), not as a bad character.
      problems.add(line, 'has a byte order mark (U+FEFF) that is not at the start of the file (were files joined together?); remove it');
      columns ??= checkHeader(text.replaceAll(byteOrderMark, ''), line, options, problems);
      continue;
    }
    // Blank lines are skipped everywhere, also before the header (a line an export tool or an
    // editor left at the top): the header is the first line with something on it.
    if (trimSpaces(text) === '') continue;
    if (columns === undefined) {
      columns = checkHeader(text, line, options, problems);
      headerQuoted = splitFields(text).some((field) => trimSpaces(field).startsWith('"'));
      continue;
    }
    if (isRepeatedHeader(text, columns, headerQuoted)) {
      // Said where the line could be meant as a unit's serial.
      const serialSpeltSo = columns === 1 && namesAsWritten(text)[0] === 'SERIAL' ? '; a unit whose serial is SERIAL is listed in quotes, "SERIAL", in a file whose header is not in quotes' : '';
      problems.add(line, `repeats the header ${quoted(headerNames[columns].join(','))} (were files joined together?); a file has one header, on its first line${serialSpeltSo}`);
      continue;
    }
    const entry = checkRow(text, columns, line, problemOf, problems);
    if (entry === undefined) continue;
    const repeated = seen.repeated(entry, line);
    if (repeated !== undefined) {
      problems.add(line, repeated);
      continue;
    }
    serialCount += 1;
    if (serialCount <= options.serialsMax) entries.push(entry);
    else firstLinePastLimit ??= line;
  }
  options.onProgress?.(bytes.length);
  if (firstLinePastLimit !== undefined) {
    const max = options.serialsMax.toLocaleString('en-US');
    problems.addFirst(0, `lists ${serialCount.toLocaleString('en-US')} serials; one upload holds at most ${max} (serial ${(options.serialsMax + 1).toLocaleString('en-US')} is on line ${firstLinePastLimit.toLocaleString('en-US')})`);
  }
  // Empty only when nothing on it was bad: lines that are not valid UTF-8 are not nothing.
  if (columns === undefined && problems.count === 0) problems.add(1, `the file is empty; expected the header ${expectedHeaders(options)}`);
  else if (entries.length === 0 && problems.count === 0) problems.add(1, 'the file lists no serials after its header');
  return { entries, problems: problems.shown, problemCount: problems.count };
}

/**
 * Why the file as a whole is not UTF-8 text with LF or CRLF line ends, or undefined. Checked
 * before the lines are split, since split lines of such a file would each be bad for a
 * reason that misleads (a UTF-16 header full of U+0000, one "header" that is the whole file).
 */
function problemOfEncoding(bytes: Uint8Array): string | undefined {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return 'the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8 (in Excel: "CSV UTF-8")';
  }
  // UTF-16 without a mark has a NUL beside every ASCII character; no text file has one at all.
  const nul = bytes.indexOf(0x00);
  if (nul !== -1) return `the file has NUL bytes (the first at byte ${(nul + 1).toLocaleString('en-US')}): it is UTF-16 or not text; save it as UTF-8 (in Excel: "CSV UTF-8")`;
  // A CR alone before the first LF (or in a file without one): the lines end with CR only.
  const firstLf = bytes.indexOf(0x0a);
  const beforeLf = firstLf === -1 ? bytes : bytes.subarray(0, firstLf);
  const cr = beforeLf.indexOf(0x0d);
  if (cr !== -1 && cr !== beforeLf.length - 1) return 'the lines end with CR only (as old Mac editors save); save the file with LF or CRLF line ends';
  return undefined;
}

/**
 * Problems as they are found: the first problemsShownMax kept, every one counted. A 16 MiB file
 * can have 8 million bad lines; their messages are not all held.
 */
class ProblemList {
  readonly shown: CsvProblem[] = [];
  count = 0;

  add(line: number, message: string): void {
    this.count += 1;
    if (this.shown.length < problemsShownMax) this.shown.push({ line, message });
  }

  /** A problem of the whole file, said before those of single lines. */
  addFirst(line: number, message: string): void {
    this.count += 1;
    this.shown.unshift({ line, message });
    if (this.shown.length > problemsShownMax) this.shown.pop();
  }
}

/** The line each serial and GPU UUID was first on, to report repeats. */
class FirstLines {
  private readonly serials = new Map<string, number>();
  // Keyed in lower case: GPU-ABCDEF12-… and GPU-abcdef12-… name the same GPU.
  private readonly gpuUuids = new Map<string, { line: number; gpuUuid: string }>();

  /** How the entry repeats an earlier line, or undefined (and then it is remembered). */
  repeated(entry: SerialEntry, line: number): string | undefined {
    const earlier = this.serials.get(entry.serial);
    if (earlier !== undefined) return `serial ${entry.serial} is listed twice (first on line ${earlier})`;
    this.serials.set(entry.serial, line);
    if (entry.gpuUuid === undefined) return undefined;
    const key = entry.gpuUuid.toLowerCase();
    const first = this.gpuUuids.get(key);
    if (first !== undefined) {
      const spelling = first.gpuUuid === entry.gpuUuid ? '' : `, as ${first.gpuUuid}`;
      return `GPU UUID ${entry.gpuUuid} is listed twice (first on line ${first.line}${spelling})`;
    }
    this.gpuUuids.set(key, { line, gpuUuid: entry.gpuUuid });
    return undefined;
  }
}

/**
 * The file's lines (LF or CRLF), each decoded, or undefined where a line is not valid UTF-8.
 * The whole file is decoded at once; only a file with a bad byte is decoded line by line, to
 * find which lines are bad.
 */
function* linesOf(bytes: Uint8Array): Generator<{ text: string | undefined; end: number }> {
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const whole = decode(bytes.subarray(start));
  if (whole === '') return;
  if (whole !== undefined) {
    let offset = start;
    for (const text of whole.split('\n')) {
      offset += text.length + 1; // progress in characters: close enough to bytes for a bar
      yield { text: text.endsWith('\r') ? text.slice(0, -1) : text, end: Math.min(offset, bytes.length) };
    }
    return;
  }
  for (let position = start; position <= bytes.length;) {
    let end = bytes.indexOf(0x0a, position);
    if (end === -1) end = bytes.length;
    yield { text: decode(bytes.subarray(position, end > position && bytes[end - 1] === 0x0d ? end - 1 : end)), end };
    position = end + 1;
  }
}

function decode(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * The header decides whether lines carry a GPU UUID; a bad header is reported, and lines are
 * still checked (as two fields where the header has two or more names, so a refused gpu_uuid
 * column is one problem, not one per line).
 */
function checkHeader(text: string, line: number, options: CheckOptions, problems: ProblemList): 1 | 2 {
  const names = namesOf(text);
  if (names.length === 1 && names[0] === 'serial') return 1;
  if (names.length === 2 && names[0] === 'serial' && names[1] === 'gpu_uuid') {
    if (!options.acceptsGpuUuids) {
      problems.add(line, 'has a gpu_uuid column, but this command sends serials alone, so the GPU UUIDs would not be checked; remove the column (the header must be "serial")');
    }
    return 2;
  }
  problems.add(line, `the header must be ${expectedHeaders(options)}; got ${quoted(text)}`);
  return names.length >= 2 ? 2 : 1;
}

function expectedHeaders(options: CheckOptions): string {
  return options.acceptsGpuUuids ? '"serial" or "serial,gpu_uuid"' : '"serial"';
}

/** Header names as written: trimmed, unquoted, in lower case. */
function namesOf(text: string): string[] {
  return namesAsWritten(text).map((name) => name.toLowerCase());
}

/** Header names trimmed and unquoted, in the case the file writes them. */
function namesAsWritten(text: string): string[] {
  return splitFields(text).map((name) => trimSpaces(unquote(trimSpaces(name))));
}

/**
 * The text without the ASCII spaces and tabs around it. Not String.prototype.trim, which also
 * drops U+00A0, U+3000, U+FEFF and the other Unicode spaces: `A1\u00a0` would pass as the
 * serial A1, while what was typed (or pasted) is another serial. (The CR of a CRLF line end is
 * gone already: linesOf drops it.) A loop, not a regular expression: /[ \t]+$/ backtracks in
 * quadratic time over a long run of spaces followed by something else.
 */
function trimSpaces(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text.charCodeAt(start))) start += 1;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end -= 1;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/**
 * Whether a data line is the header again (files joined together): the header's names in any
 * case, as the first line may write them. One way out, for a unit whose serial is SERIAL
 * (capitals are what a new serial is written in): every field in double quotes, in a file
 * whose header is not quoted. A bare SERIAL is the header: reading it as a serial imported the
 * second header of `cat a.csv b.csv` (b.csv's header in capitals) as a unit, and the ledger
 * never forgets a unit. In a file that quotes everything (QUOTE_ALL) quotes tell nothing, so
 * there the line is the header too.
 */
function isRepeatedHeader(text: string, columns: 1 | 2, headerQuoted: boolean): boolean {
  const written = namesAsWritten(text);
  if (written.length !== columns || !written.every((name, index) => name.toLowerCase() === headerNames[columns][index])) return false;
  const inCapitals = written.every((name) => name === name.toUpperCase());
  return !inCapitals || headerQuoted || !isEveryFieldQuoted(text);
}

function isEveryFieldQuoted(text: string): boolean {
  return splitFields(text).every((field) => {
    const trimmed = trimSpaces(field);
    return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"');
  });
}

function checkRow(text: string, columns: 1 | 2, line: number, problemOf: (serial: string) => string | undefined, problems: ProblemList): SerialEntry | undefined {
  const fields = splitFields(text).map((field) => unquote(trimSpaces(field)));
  if (fields.length !== columns) {
    problems.add(line, `has ${fields.length} field${fields.length === 1 ? '' : 's'}; the header has ${columns} (${columns === 1 ? 'serial' : 'serial,gpu_uuid'})`);
    return undefined;
  }
  const serial = fields[0]!;
  const serialProblem = problemOf(serial);
  if (serialProblem !== undefined) {
    problems.add(line, serialProblem);
    return undefined;
  }
  const gpuUuid = fields[1];
  if (gpuUuid === undefined || gpuUuid === '') return { serial };
  if (gpuUuid.length > limits.serialLengthMax || !gpuUuidPattern.test(gpuUuid)) {
    problems.add(line, `GPU UUID ${quoted(gpuUuid)} is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)`);
    return undefined;
  }
  return { serial, gpuUuid };
}

function splitFields(text: string): string[] {
  return text.split(',');
}

function unquote(field: string): string {
  return field.length >= 2 && field.startsWith('"') && field.endsWith('"') && !field.slice(1, -1).includes('"') ? field.slice(1, -1) : field;
}

/**
 * In double quotes, control and bidi characters escaped (printableJson), so a message never
 * moves the terminal's cursor nor shows the rest of its line reversed (a header or GPU UUID
 * field with U+202E in a supplier's file did); past quotedCharactersMax characters, cut there
 * and followed by the full length. A serial is quoted by core/serial.ts, in the API's words.
 */
function quoted(text: string): string {
  if (text.length <= quotedCharactersMax) return escapedJson(text);
  // Not between the two halves of a surrogate pair: the cut would show as an escaped half.
  const end = isHighSurrogate(text.charCodeAt(quotedCharactersMax - 1)) ? quotedCharactersMax - 1 : quotedCharactersMax;
  return `${escapedJson(text.slice(0, end))}… (${text.length.toLocaleString('en-US')} characters)`;
}

function escapedJson(text: string): string {
  return printableJson(text, 'one line');
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * The problems as lines for stderr: the first problemsShownMax, then a count of the rest.
 * `use` says what did not happen: a manifest's serials were not imported, a deployment
 * report was not sent.
 */
export function formatCsvProblems(file: string, checked: Pick<SerialCsv, 'problems' | 'problemCount'>, use: 'imported' | 'sent' = 'imported'): string {
  const shown = checked.problems.slice(0, problemsShownMax).map((problem) => `  ${problem.line > 0 ? `${file}:${problem.line}` : file}: ${problem.message}`);
  const rest = checked.problemCount - shown.length;
  // One problem of the whole file (its size, its encoding) is no bad line.
  const count = checked.problemCount === 1 ? (checked.problems[0]?.line === 0 ? '1 problem' : '1 bad line') : `${checked.problemCount.toLocaleString('en-US')} bad lines`;
  return [`${file}: ${count}; nothing was ${use}`, ...shown, ...(rest > 0 ? [`  … and ${rest.toLocaleString('en-US')} more`] : [])].join('\n');
}

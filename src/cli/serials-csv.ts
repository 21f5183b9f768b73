/**
 * Serial-number CSV files (manifests and deployment reports), checked whole before anything is
 * sent: a manifest is all or nothing, so a file with one bad line is reported in full (every bad
 * line, by line number) and nothing of it is imported.
 *
 * Format: a header `serial` or `serial,gpu_uuid`, then one unit per line. Lines end with LF or
 * CRLF; a UTF-8 byte order mark at the very start is skipped; blank lines are skipped; a field,
 * header names included, may be wrapped in double quotes (spreadsheets, R and Python's
 * QUOTE_ALL do that), but serials never contain commas or quotes.
 *
 * Files joined together (`cat a.csv b.csv`) are refused where the second one starts: a line that
 * repeats the header, or a byte order mark anywhere but at the start, is a bad line, never a unit.
 */
import { limits } from '../core/limits.ts';

export const serialCsvBytesMax = limits.serialCsvBytesMax;
/** Problems printed for one file; the rest are counted. */
export const problemsShownMax = 50;

/** The same rules as the API's schema (src/ledger/schemas.ts), so the server never disagrees. */
const serialPattern = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;
const gpuUuidPattern = /^GPU-[0-9a-fA-F-]{8,60}$/;
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
  problems: CsvProblem[];
}

export interface CheckOptions {
  /** Most serials the file may list (a manifest: 100,000). */
  serialsMax: number;
  /** Called now and then with the bytes checked so far. */
  onProgress?: (bytesDone: number) => void;
}

// ignoreBOM keeps every U+FEFF in the text: the one at the start is skipped by linesOf, and any
// other (a second mark, or one at the start of a line decoded alone) is a bad line, not nothing.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Checks a whole file; `entries` is only meaningful when `problems` is empty. */
export function checkSerialCsv(bytes: Uint8Array, options: CheckOptions): SerialCsv {
  const problems: CsvProblem[] = [];
  const entries: SerialEntry[] = [];
  if (bytes.length > serialCsvBytesMax) {
    return { entries, problems: [{ line: 0, message: `the file is ${bytes.length.toLocaleString('en-US')} bytes; at most ${serialCsvBytesMax.toLocaleString('en-US')} are read` }] };
  }
  const firstLineOfSerial = new Map<string, number>();
  const firstLineOfUuid = new Map<string, number>();
  let columns: 1 | 2 | undefined;
  let line = 0;
  for (const { text, end } of linesOf(bytes)) {
    line += 1;
    if (line % 4096 === 0) options.onProgress?.(end);
    if (text === undefined) {
      problems.push({ line, message: 'is not valid UTF-8' });
      continue;
    }
    if (text.includes(byteOrderMark)) {
      // JavaScript's trim() drops U+FEFF, so without this `\uFEFFserial` would pass as the unit "serial".
      problems.push({ line, message: 'has a byte order mark (U+FEFF) that is not at the start of the file (were files joined together?); remove it' });
      columns ??= checkHeader(text.replaceAll(byteOrderMark, ''), line, problems);
      continue;
    }
    // Blank lines are skipped everywhere, also before the header (a line an export tool or an
    // editor left at the top): the header is the first line with something on it.
    if (text.trim() === '') continue;
    if (columns === undefined) {
      columns = checkHeader(text, line, problems);
      continue;
    }
    if (isHeader(text, columns)) {
      problems.push({ line, message: `repeats the header ${quoted(headerNames[columns].join(','))} (were files joined together?); a file has one header, on its first line` });
      continue;
    }
    const entry = checkRow(text, columns, line, problems);
    if (entry === undefined) continue;
    const earlier = firstLineOfSerial.get(entry.serial);
    if (earlier !== undefined) {
      problems.push({ line, message: `serial ${entry.serial} is listed twice (first on line ${earlier})` });
      continue;
    }
    firstLineOfSerial.set(entry.serial, line);
    if (entry.gpuUuid !== undefined) {
      const uuidLine = firstLineOfUuid.get(entry.gpuUuid);
      if (uuidLine !== undefined) {
        problems.push({ line, message: `GPU UUID ${entry.gpuUuid} is listed twice (first on line ${uuidLine})` });
        continue;
      }
      firstLineOfUuid.set(entry.gpuUuid, line);
    }
    if (entries.length === options.serialsMax) {
      problems.push({ line, message: `more than ${options.serialsMax.toLocaleString('en-US')} serials; one upload holds at most that many` });
      break;
    }
    entries.push(entry);
  }
  options.onProgress?.(bytes.length);
  if (columns === undefined) problems.push({ line: 1, message: 'the file is empty; expected the header "serial" or "serial,gpu_uuid"' });
  else if (entries.length === 0 && problems.length === 0) problems.push({ line: 1, message: 'the file lists no serials after its header' });
  return { entries, problems };
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

/** The header decides whether lines carry a GPU UUID; a bad header is reported, and lines are still checked. */
function checkHeader(text: string, line: number, problems: CsvProblem[]): 1 | 2 {
  const names = namesOf(text);
  if (names.length === 1 && names[0] === 'serial') return 1;
  if (names.length === 2 && names[0] === 'serial' && names[1] === 'gpu_uuid') return 2;
  problems.push({ line, message: `the header must be "serial" or "serial,gpu_uuid"; got ${quoted(text)}` });
  return names.length >= 2 ? 2 : 1;
}

/** Header names as written: trimmed, unquoted, in lower case. */
function namesOf(text: string): string[] {
  return splitFields(text).map((name) => unquote(name.trim()).trim().toLowerCase());
}

function isHeader(text: string, columns: 1 | 2): boolean {
  const names = namesOf(text);
  return names.length === columns && names.every((name, index) => name === headerNames[columns][index]);
}

function checkRow(text: string, columns: 1 | 2, line: number, problems: CsvProblem[]): SerialEntry | undefined {
  const fields = splitFields(text).map((field) => unquote(field.trim()));
  if (fields.length !== columns) {
    problems.push({ line, message: `has ${fields.length} field${fields.length === 1 ? '' : 's'}; the header has ${columns} (${columns === 1 ? 'serial' : 'serial,gpu_uuid'})` });
    return undefined;
  }
  const serial = fields[0]!;
  const serialProblem = problemOfSerial(serial);
  if (serialProblem !== undefined) {
    problems.push({ line, message: serialProblem });
    return undefined;
  }
  const gpuUuid = fields[1];
  if (gpuUuid === undefined || gpuUuid === '') return { serial };
  if (gpuUuid.length > limits.serialLengthMax || !gpuUuidPattern.test(gpuUuid)) {
    problems.push({ line, message: `GPU UUID ${quoted(gpuUuid)} is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)` });
    return undefined;
  }
  return { serial, gpuUuid };
}

/** Why a serial is not acceptable, or undefined: the API's rules, said with the offending character. */
export function problemOfSerial(serial: string): string | undefined {
  if (serial === '') return 'the serial is empty';
  if (serial.length > limits.serialLengthMax) return `serial ${quoted(serial.slice(0, 20))}… is ${serial.length} characters long; at most ${limits.serialLengthMax}`;
  if (serialPattern.test(serial)) return undefined;
  const bad = [...serial].find((character) => !/[A-Za-z0-9._:/-]/.test(character));
  if (bad === undefined) return `serial ${quoted(serial)} must start with a letter or digit`;
  return `serial ${quoted(serial)} has the character ${describeCharacter(bad)}; only letters, digits and . _ : / - are allowed`;
}

function splitFields(text: string): string[] {
  return text.split(',');
}

function unquote(field: string): string {
  return field.length >= 2 && field.startsWith('"') && field.endsWith('"') && !field.slice(1, -1).includes('"') ? field.slice(1, -1) : field;
}

function describeCharacter(character: string): string {
  const code = `U+${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
  return /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(character) ? `${JSON.stringify(character)} (${code})` : code;
}

/** In double quotes, control characters escaped, so a message never moves the terminal's cursor. */
function quoted(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\u009f]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The problems as lines for stderr: the first problemsShownMax, then a count of the rest. */
export function formatCsvProblems(file: string, problems: readonly CsvProblem[]): string {
  const shown = problems.slice(0, problemsShownMax).map((problem) => `  ${problem.line > 0 ? `${file}:${problem.line}` : file}: ${problem.message}`);
  const rest = problems.length - shown.length;
  const count = problems.length === 1 ? '1 bad line' : `${problems.length.toLocaleString('en-US')} bad lines`;
  return [`${file}: ${count}; nothing was imported`, ...shown, ...(rest > 0 ? [`  … and ${rest.toLocaleString('en-US')} more`] : [])].join('\n');
}

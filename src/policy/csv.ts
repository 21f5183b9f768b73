/**
 * CSV (RFC 4180), as the accelerator catalogue is written: fields separated by commas, records
 * by CRLF or LF; a field in double quotes may hold commas, line breaks and doubled quotes ("").
 * A UTF-8 byte order mark is skipped. Errors name the line (and column) they were found at.
 */
import { DomainError } from '../core/errors.ts';

export interface CsvRecord {
  /** Line on which the record starts (1-based); a quoted line break makes records span lines. */
  line: number;
  fields: string[];
}

/**
 * Splits CSV text into records. Blank lines are skipped. Throws DomainError('invalid_input')
 * with the line number on an unterminated quote, text after a closing quote, or more than
 * `recordsMax` records.
 */
export function parseCsv(text: string, options: { recordsMax: number }): CsvRecord[] {
  const records: CsvRecord[] = [];
  let line = 1;
  let position = text.startsWith('\uFEFF') ? 1 : 0;
  while (position < text.length) {
    if (text[position] === '\n' || text.startsWith('\r\n', position)) {
      position += text[position] === '\n' ? 1 : 2;
      line++;
      continue;
    }
    if (records.length >= options.recordsMax) throw csvError(line, `more than ${options.recordsMax} records`);
    const record = readRecord(text, position, line);
    records.push({ line, fields: record.fields });
    position = record.end;
    line = record.nextLine;
  }
  return records;
}

/** Reads one record starting at `start`; `end` is just past its line break (or the text). */
function readRecord(text: string, start: number, startLine: number): { fields: string[]; end: number; nextLine: number } {
  const fields: string[] = [];
  let position = start;
  let line = startLine;
  for (;;) {
    const field = text[position] === '"' ? readQuotedField(text, position, line) : readPlainField(text, position, line);
    fields.push(field.value);
    position = field.end;
    line = field.line;
    if (text[position] === ',') {
      position++;
      continue;
    }
    if (position >= text.length) return { fields, end: position, nextLine: line };
    // Only a line break can follow a field here; readPlainField and readQuotedField ensure it.
    position += text[position] === '\n' ? 1 : 2;
    return { fields, end: position, nextLine: line + 1 };
  }
}

function readPlainField(text: string, start: number, line: number): { value: string; end: number; line: number } {
  let position = start;
  while (position < text.length && text[position] !== ',' && text[position] !== '\n' && !text.startsWith('\r\n', position)) {
    if (text[position] === '"') throw csvError(line, `a quote inside an unquoted field at column ${columnOf(text, position)}; quote the whole field and double the quote`);
    if (text[position] === '\r') throw csvError(line, `a carriage return not followed by a line feed at column ${columnOf(text, position)}`);
    position++;
  }
  return { value: text.slice(start, position), end: position, line };
}

function readQuotedField(text: string, start: number, startLine: number): { value: string; end: number; line: number } {
  let value = '';
  let position = start + 1;
  let line = startLine;
  for (;;) {
    const quote = text.indexOf('"', position);
    if (quote === -1) throw csvError(startLine, 'a quoted field is not closed before the end of the file');
    const chunk = text.slice(position, quote);
    value += chunk;
    line += countLineBreaks(chunk);
    if (text[quote + 1] === '"') {
      value += '"';
      position = quote + 2;
      continue;
    }
    const after = quote + 1;
    const next = text[after];
    if (after < text.length && next !== ',' && next !== '\n' && !text.startsWith('\r\n', after)) {
      throw csvError(line, `text after a closing quote at column ${columnOf(text, after)}`);
    }
    return { value, end: after, line };
  }
}

function countLineBreaks(chunk: string): number {
  let count = 0;
  for (const character of chunk) if (character === '\n') count++;
  return count;
}

/** 1-based column of a position within its line, for messages. */
function columnOf(text: string, position: number): number {
  return position - text.lastIndexOf('\n', position - 1);
}

function csvError(line: number, message: string): DomainError {
  return new DomainError('invalid_input', `couldn't parse CSV: line ${line}: ${message}`, { rule: 'csv', details: { line, reason: message } });
}

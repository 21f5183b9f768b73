/** The catalogue's CSV reader (RFC 4180): errors by line and column, empty fields, bounds, and a round trip. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCsv } from './csv.ts';

describe('parseCsv', () => {
  const parse = (text: string) => parseCsv(text, { recordsMax: 100 });

  it('reports unterminated quotes, stray quotes and text after a closing quote with their lines', () => {
    expect(() => parse('a,b\nc,"d\ne')).toThrow('line 2: a quoted field is not closed before the end of the file');
    expect(() => parse('a,b\nc,d"e')).toThrow('line 2: a quote inside an unquoted field at column 4');
    expect(() => parse('a\n"x\ny"z,w')).toThrow('line 3: text after a closing quote at column 3');
    expect(() => parse('a\rb')).toThrow('line 1: a carriage return not followed by a line feed');
  });

  it('keeps empty fields, including a trailing one', () => {
    expect(parse('a,,\n,"",b').map((record) => record.fields)).toEqual([
      ['a', '', ''],
      ['', '', 'b'],
    ]);
  });

  it('stops at the record limit', () => {
    expect(() => parseCsv('a\nb\nc\n', { recordsMax: 2 })).toThrow('line 3: more than 2 records');
  });

  it('reads back what a writer that quotes every field wrote (property)', () => {
    const field = fc.string({ unit: fc.constantFrom('a', 'Z', '中', ',', '"', '\n', '\r\n', ' ', '1'), maxLength: 8 });
    const table = fc.array(fc.array(field, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(table, fc.constantFrom('\n', '\r\n'), (rows, lineEnd) => {
        const text = rows.map((fields) => fields.map((value) => `"${value.replaceAll('"', '""')}"`).join(',')).join(lineEnd);
        expect(parse(text).map((record) => record.fields)).toEqual(rows);
      }),
      { seed: 4180, numRuns: 1_000 },
    );
  });
});

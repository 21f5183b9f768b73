/**
 * Tables line up on a terminal whatever script a name is in: widths are counted per
 * character as the user sees it, not per code unit or code point.
 */
import { describe, expect, it } from 'vitest';
import { printable, printableJson } from './output.ts';
import { displayWidth, renderRecord, renderTable } from './table.ts';

describe('displayWidth', () => {
  it('counts East Asian characters and emoji two columns, combining marks and zero-width characters none', () => {
    expect(displayWidth('Yunchuan')).toBe(8);
    expect(displayWidth('北京字节跳动')).toBe(12);
    expect(displayWidth('北京字节跳动🚀')).toBe(14);
    expect(displayWidth('a\u200bb\u0301c')).toBe(3); // a zero-width space, b with a combining acute
    expect(displayWidth('❤️')).toBe(2); // heart with the emoji selector
    expect(displayWidth('❤')).toBe(1); // without it, a text symbol
    expect(displayWidth('👩‍💻')).toBe(2); // one grapheme joined from two emoji
    expect(displayWidth('☕⌚⚡')).toBe(6); // emoji by default below U+1F000, no selector needed
    expect(displayWidth('🇨🇳')).toBe(2); // a flag: two regional indicators, one grapheme
  });

  it('lines a table up by those widths', () => {
    const table = renderTable([{ name: '北京字节跳动🚀', units: 5 }, { name: 'a\u200bb\u0301c', units: 10 }], ['name', 'units']);
    const lines = table.split('\n');
    // 14 columns of name, two of gap, five of units: every line as wide as the header.
    expect(lines.map((line) => displayWidth(line))).toEqual([21, 21, 21, 21]);
  });
});

describe('renderRecord and headers', () => {
  it('let no control character of a key reach the terminal, and align keys by their width', () => {
    const shown = renderRecord({ 'status\u001b[2J': 'issued', 名称: 'x', id: 'L-1' });
    expect(shown).not.toContain('\u001b');
    // Written as an escape, not a space the key does not hold.
    expect(shown.split('\n')).toEqual(['status\\u001b[2J  issued', `名称${' '.repeat(13)}x`, `id${' '.repeat(15)}L-1`]);
    expect(renderTable([{ 'a\u0007': 1 }], ['a\u0007'])).not.toContain('\u0007');
  });

  it('let no C1 control or escape sequence of a nested value reach the terminal, as a record or as a cell', () => {
    const hostile = 'x\u001b[31my\u009b31mz\u007f';
    const record = renderRecord({ id: 'L-1', conditions: { note: hostile, [hostile]: [hostile] } });
    expect(record).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(record).toContain('"note": "x\\u001b[31my\\u009b31mz\\u007f"');
    expect(record).toContain('"x\\u001b[31my\\u009b31mz\\u007f": [');
    const table = renderTable([{ id: 'L-1', conditions: { note: hostile } }], ['id', 'conditions']);
    expect(table).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(table.split('\n')[2]).toBe('L-1  {"note":"x\\u001b[31my\\u009b31mz\\u007f"}');
  });
});

describe('a cell of free text', () => {
  // A booking's reference, an address or a reason is kept as sent, line breaks, tabs and
  // direction marks included: a cell shows them as escapes, on one line (the output review).
  it('shows line breaks, tabs and marks as escapes, and every other character as it is', () => {
    const reference = 'PO-1\nPO-2\tفاتورة\u200f 7';
    // (The table's own left-to-right mark ends a cell of right-to-left text.)
    expect(renderTable([{ reference }], ['reference']).split('\n')[2]).toBe('PO-1\\nPO-2\\tفاتورة\\u200f 7\u200e');
    expect(renderRecord({ reason: 'a\r\nb' })).toBe('reason  a\\r\\nb');
  });

  it('keeps every digit of a fraction, and writes a number that names a thing as the CLI takes it back', () => {
    expect(renderRecord({ latitude: 41.0347, longitude: -113.1332, seq: 12345, createdSeq: 1234567, leafIndex: 100000, version: 1000, units: 12345 }).split('\n'))
      .toEqual(['latitude    41.0347', 'longitude   -113.1332', 'seq         12345', 'createdSeq  1234567', 'leafIndex   100000', 'version     1000', 'units       12,345']);
    expect(renderTable([{ seq: 12345, units: 2500.5 }], ['seq', 'units']).split('\n')[2]).toBe('12345  2,500.5');
  });
});

describe('bidi controls', () => {
  // Every bidi control a terminal may act on: embeddings, overrides, isolates and the marks.
  const bidi = ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c'];
  const bidiPattern = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

  it('reach no table cell, header or record: a hostile name cannot reorder its row, and shows what it holds', () => {
    // Shown raw, U+202E would print this row's units before the name, reversed; shown as a
    // space, the cell would hide a character the record holds.
    const name = 'Example Ltd \u202e0001 stinu';
    const table = renderTable([{ name, units: 5 }, { name: 'Yunchuan', units: 10 }], ['name', 'units']);
    expect(table).not.toMatch(bidiPattern);
    expect(table.split('\n')[2]).toBe('Example Ltd \\u202e0001 stinu      5');
    for (const control of bidi) {
      const shown = [renderTable([{ [`k${control}`]: `a${control}b` }], [`k${control}`]), renderRecord({ [`k${control}`]: `a${control}b`, nested: { [control]: control } })].join('\n');
      expect(shown, `U+${control.charCodeAt(0).toString(16)}`).not.toMatch(bidiPattern);
    }
  });

  it('are escaped in JSON, which stays the same JSON', () => {
    const value = { name: bidi.join('') };
    const record = renderRecord({ id: 'ORG-1', value });
    expect(record).not.toMatch(bidiPattern);
    expect(record).toContain('"name": "\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c"');
    expect(JSON.parse(printableJson(value))).toEqual(value);
    expect(printable(`a${bidi.join('')}b`)).toBe(`a${' '.repeat(bidi.length)}b`);
  });
});

describe('right-to-left names', () => {
  // On a terminal that lays out bidirectional text (VTE, Konsole, mlterm), numbers after Arabic
  // or Hebrew letters join their right-to-left run, and a row's figures are drawn reversed
  // under the wrong headers unless the name's cell ends that run itself.
  it('end their cell with a left-to-right mark, so the figures after them stay in their columns', () => {
    for (const name of ['شركة الخليج للحوسبة', 'חברת מחשוב']) {
      const table = renderTable([{ reference: `for ORG-4 ${name}`, units: 160_000, reserved: 500 }, { reference: 'for ORG-5 Yunchuan', units: 10, reserved: 0 }], ['reference', 'units', 'reserved']);
      const [header, , rtl, ltr] = table.split('\n');
      expect(rtl).toContain(`${name}\u200e `);
      expect(ltr).not.toContain('\u200e');
      // The mark takes no column: every line is as wide as the header.
      expect(displayWidth(rtl!)).toBe(displayWidth(header!));
      expect(displayWidth(ltr!)).toBe(displayWidth(header!));
    }
  });

  it('are padded to their column when narrower than it, as any cell is', () => {
    const [header, , rtl, ltr] = renderTable([{ reference: 'חברת', units: 1 }, { reference: 'for ORG-5 Yunchuan', units: 10 }], ['reference', 'units']).split('\n');
    // 14 spaces fill the name to its column's 18, then the 2 between columns, then "1" right-aligned under "units".
    expect(rtl).toBe(`חברת\u200e${' '.repeat(14)}  ${'1'.padStart('units'.length)}`);
    expect(displayWidth(rtl!)).toBe(displayWidth(header!));
    expect(displayWidth(ltr!)).toBe(displayWidth(header!));
  });

  it('include Syriac, Thaana and NKo, and a right-to-left header over figures', () => {
    for (const name of ['ܫܠܡܐ', 'ދިވެހި', 'ߒߞߏ']) {
      expect(renderTable([{ name, units: 1 }], ['name', 'units']).split('\n')[2], name).toContain(`${name}\u200e`);
    }
    // A numeric column's name is the only right-to-left text it can hold (a key of the server's JSON).
    expect(renderTable([{ 'عدد': 5 }], ['عدد']).split('\n')[0]).toBe('عدد\u200e');
  });
});

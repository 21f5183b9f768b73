/**
 * Plain-text tables for client commands. Numbers are right-aligned, counts with thousands
 * separators (not a number that names something, such as a seq: formatCell);
 * Chinese characters count two columns wide, so names in either script line up.
 */
import { escapedForTerminal, printableJson } from './output.ts';

export type Row = Record<string, unknown>;

/** The preferred columns that some row has; every scalar column of the first row when none does. */
export function pickColumns(rows: readonly Row[], preferred: readonly string[]): string[] {
  const present = preferred.filter((column) => rows.some((row) => row[column] !== undefined && row[column] !== null));
  if (present.length > 0) return present;
  const first = rows[0] ?? {};
  return Object.keys(first).filter((key) => isScalar(first[key]));
}

/** Letters and digits of the right-to-left scripts (bidi classes R and AL, and Arabic digits). */
const rightToLeft = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\u{10800}-\u{10fff}\u{1e800}-\u{1efff}]/u;

export function renderTable(rows: readonly Row[], columns: readonly string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((row) => columns.map((column) => formatCell(row[column], column)));
  const numeric = columns.map((column) => rows.every((row) => row[column] === undefined || row[column] === null || typeof row[column] === 'number'));
  const widths = columns.map((column, index) => Math.max(displayWidth(formatCell(column)), ...cells.map((line) => displayWidth(line[index]!))));
  const pad = (text: string, index: number): string => {
    const fill = ' '.repeat(widths[index]! - displayWidth(text));
    // A right-to-left cell (Arabic, Hebrew) ends with a left-to-right mark, so that on a terminal
    // that lays out bidirectional text it reorders itself only, not the cells after it.
    const ended = rightToLeft.test(text) ? `${text}\u200e` : text;
    return numeric[index] ? fill + ended : ended + fill;
  };
  const header = columns.map((column, index) => pad(formatCell(column), index)).join('  ');
  const rule = widths.map((width) => '─'.repeat(width)).join('  ');
  return [header, rule, ...cells.map((line) => line.map(pad).join('  '))].map((line) => line.trimEnd()).join('\n');
}

/** One object as `key: value` lines; nested values as indented JSON. */
export function renderRecord(record: Row): string {
  // Keys come from the server as values do: control characters in them must not reach the
  // terminal either, and a wide character in one must not shift the values.
  const names = Object.keys(record);
  const keys = names.map((key) => formatCell(key));
  const width = Math.max(0, ...keys.map((key) => displayWidth(key)));
  return Object.values(record)
    .map((value, index) => {
      const text = isScalar(value) ? formatCell(value, names[index]) : printableJson(value).replace(/\n/g, `\n${' '.repeat(width + 2)}`);
      return `${keys[index]!}${' '.repeat(width - displayWidth(keys[index]!))}  ${text}`;
    })
    .join('\n');
}

function isScalar(value: unknown): boolean {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

/** Digits toLocaleString may show after the point: enough for every double's shortest form. */
const fractionDigitsMax = 20;

/**
 * Columns that hold a number naming a thing (an event's seq, a leaf index, a version), shown
 * as the CLI takes it back: `events show 12345`, not 12,345, which it refuses.
 */
const namingNumberColumn = /(?:^seq|Seq|^leafIndex|^version)$/;

/**
 * A value as a cell shows it: the stored value, not a rounded one. Counts get thousands
 * separators; a fraction keeps every digit the server sent (a site's latitude 41.0347 is not
 * 41.03, half a kilometre away); text shows the characters a terminal would act on as
 * escapes (a line break as \n, a direction mark as \u200f), not as spaces that are not stored.
 */
function formatCell(value: unknown, column?: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return column !== undefined && namingNumberColumn.test(column) ? String(value) : value.toLocaleString('en-US');
    return value.toLocaleString('en-US', { maximumFractionDigits: fractionDigitsMax });
  }
  if (typeof value === 'string') return escapedForTerminal(value);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return printableJson(value, 'one line');
}

/**
 * Columns a string takes on a terminal, counted per grapheme (what the user sees as one
 * character): combining marks, variation selectors and joiners add nothing to the one they
 * belong to; a grapheme of format characters alone (a zero-width space) takes none; an emoji
 * and an East Asian wide or full-width character take two.
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of graphemes.segment(text)) width += graphemeWidth(segment);
  return width;
}

const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });
const zeroWidth = /^[\p{Cf}\p{Mn}\p{Me}]+$/u;
const pictographic = /\p{Extended_Pictographic}/u;
/** Shown as emoji by default (☕, ⌚, ⚡): terminals give them two columns without any selector. */
const emojiByDefault = /^\p{Emoji_Presentation}/u;
/** A flag is a pair of regional indicators, two columns; neither is Extended_Pictographic. */
const regionalIndicator = /^\p{Regional_Indicator}/u;

function graphemeWidth(grapheme: string): number {
  if (zeroWidth.test(grapheme)) return 0;
  const code = grapheme.codePointAt(0) ?? 0;
  // Emoji shown as emoji: the pictographs from U+1F000 on, or any with the emoji selector U+FE0F.
  if (pictographic.test(grapheme) && (code >= 0x1f000 || grapheme.includes('\ufe0f'))) return 2;
  if (emojiByDefault.test(grapheme) || regionalIndicator.test(grapheme)) return 2;
  const wide = (code >= 0x1100 && code <= 0x115f) || (code >= 0x2e80 && code <= 0xa4cf) || (code >= 0xac00 && code <= 0xd7a3)
    || (code >= 0xf900 && code <= 0xfaff) || (code >= 0xfe30 && code <= 0xfe4f) || (code >= 0xff00 && code <= 0xff60) || (code >= 0xffe0 && code <= 0xffe6)
    || (code >= 0x20000 && code <= 0x3fffd);
  return wide ? 2 : 1;
}

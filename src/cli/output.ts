/**
 * Where commands write: results to stdout, progress and errors to stderr. Commands take an
 * Output instead of touching process.stdout, so tests can read what they say.
 */
export interface Output {
  out(line: string): void;
  err(line: string): void;
  /** stderr, for progress bars. */
  errStream: { isTTY?: boolean; write(text: string): boolean };
}

export const processOutput: Output = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  errStream: process.stderr,
};

/** An operating failure with a message for people: printed without a stack, exits non-zero. */
export class Failure extends Error {
  constructor(message: string, readonly exitCode: number = 1) {
    super(message);
    this.name = 'Failure';
  }
}

/**
 * Bidirectional-text controls: the embeddings, overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069) and the marks (U+200E, U+200F, U+061C). Invisible, they make a terminal
 * reorder what follows them, so a hostile name could show a row, or a line, other than it is
 * (the "Trojan Source" trick). What printable() replaces: C0, DEL, C1 and those.
 */
const unprintable = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** One character of those, for a caller that escapes each one itself (commandLine). */
const unprintableCharacter = new RegExp(`^${unprintable.source}$`);
/** What printableJson() escapes on top of JSON.stringify (which escapes C0 only): the rest of the above. */
const unprintableInJson = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from a server, made safe for a terminal: control characters (escape sequences that
 * could move the cursor, recolour or retitle the terminal, or hide what came before) and
 * bidi controls (which reorder what follows) become spaces. Everything a server sends that
 * reaches the user goes through this, also from a hostile server or a proxy's error page.
 */
export function printable(text: string): string {
  return text.replace(unprintable, ' ');
}

/** A character (one UTF-16 unit: every one these escape is in the BMP) as JSON writes it escaped, \uXXXX. */
const unicodeEscape = (character: string): string => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** The escapes a cell writes for the common ones; any other is written \uXXXX. */
const namedEscapes: Readonly<Record<string, string>> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };

/**
 * Text from a server for one cell of a table or a record: what printable() would blank out is
 * written as a visible escape instead (a line break as \n, a tab as \t, a direction mark as
 * \u200f, as printableJson writes them), so the cell moves no cursor, reorders nothing and
 * stays on its line, and still shows every character the record holds. A backslash stays
 * itself: the escapes are a reading aid, not a syntax to decode.
 */
export function escapedForTerminal(text: string): string {
  return text.replace(unprintable, (character) => namedEscapes[character] ?? unicodeEscape(character));
}

/** Whether one character (a code point) is one printable() replaces: a control or bidi character. */
export function isUnprintable(character: string): boolean {
  return unprintableCharacter.test(character);
}

/**
 * A server's value as JSON for a terminal, indented or on one line. JSON.stringify escapes the
 * C0 controls but writes DEL, the C1 controls and the bidi controls raw, and U+009B alone is a
 * CSI that terminals act on; here those are escaped too, so the text is still the same JSON,
 * and moves no cursor and reorders nothing.
 */
export function printableJson(value: unknown, layout: 'indented' | 'one line' = 'indented'): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value, null, layout === 'indented' ? 2 : undefined);
  } catch (error) {
    // JSON.stringify recurses, and JSON.parse does not: an answer nested millions deep, which a
    // broken or hostile server may send within the byte bound, reaches the end of the stack only
    // here; and a string has a most length (about 512 MiB). Said in one line, not a stack trace.
    if (!(error instanceof RangeError)) throw error;
    throw new Failure(`the answer is too large or nests too deep to print (${error.message}); no answer of the chipledger API is either: is CHIPLEDGER_URL the chipledger API?`);
  }
  // undefined, a function or a symbol (never in parsed JSON) has no JSON: said as text.
  if (json === undefined) return printable(String(value));
  return json.replace(unprintableInJson, unicodeEscape);
}

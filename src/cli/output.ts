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
 * Text from a server, made safe for a terminal: control characters (escape sequences that
 * could move the cursor, recolour or retitle the terminal, or hide what came before) become
 * spaces. Everything a server sends that reaches the user goes through this, also from a
 * hostile server or a proxy's error page.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

/**
 * A server's value as JSON for a terminal, indented or on one line. JSON.stringify escapes the
 * C0 controls but writes DEL and the C1 controls raw, and U+009B alone is a CSI that terminals
 * act on; here those are escaped too, so the text is still the same JSON, and moves no cursor.
 */
export function printableJson(value: unknown, layout: 'indented' | 'one line' = 'indented'): string {
  const json = JSON.stringify(value, null, layout === 'indented' ? 2 : undefined);
  // undefined, a function or a symbol (never in parsed JSON) has no JSON: said as text.
  if (json === undefined) return printable(String(value));
  return json.replace(/[\u007f-\u009f]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

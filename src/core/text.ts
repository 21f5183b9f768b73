/**
 * Input hygiene for every free-text field (names, addresses, conditions, CSV cells).
 *
 * Text that reaches the ledger is hashed into the transparency log (RFC 8785 canonical JSON),
 * compared by the screening matcher and shown to people. So it must be (1) well-formed UTF-16:
 * a lone surrogate has no UTF-8 encoding, and canonicalisation or a database write would fail or
 * silently substitute U+FFFD; (2) free of control characters, which hide text from reviewers and
 * break line-based exports; (3) in one Unicode normal form, so "é" typed two ways is one name.
 */

/**
 * Control characters (Unicode category Cc: C0, DEL, C1) other than tab (U+0009) and line feed
 * (U+000A), the two that text legitimately contains. CR is normalised away (normaliseLineEndings).
 */
const disallowedControlPattern = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

/** A high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const loneSurrogatePattern = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

type IsWellFormed = (this: string) => boolean;

/** ES2024's String.prototype.isWellFormed (Node 20+); our lib target is ES2023, so look it up. */
const nativeIsWellFormed: IsWellFormed | undefined = (String.prototype as { isWellFormed?: IsWellFormed }).isWellFormed;

/** True when the string has no lone surrogates, i.e. it can be encoded as UTF-8 exactly. */
export function hasNoLoneSurrogates(value: string): boolean {
  if (nativeIsWellFormed !== undefined) return nativeIsWellFormed.call(value);
  return hasNoLoneSurrogatesByPattern(value);
}

/** The fallback for runtimes without isWellFormed; exported so tests can hold it to the native one. */
export function hasNoLoneSurrogatesByPattern(value: string): boolean {
  return !loneSurrogatePattern.test(value);
}

/**
 * Why a string is not acceptable text, or undefined when it is. The reason names the first
 * offending position (0-based, in UTF-16 code units) and the code point, so an importer can
 * point at the cell.
 */
export function textProblem(value: string): string | undefined {
  if (!hasNoLoneSurrogates(value)) {
    const match = loneSurrogatePattern.exec(value);
    const index = match?.index ?? 0;
    return `lone surrogate ${codePointLabel(value.charCodeAt(index))} at position ${index}`;
  }
  const control = disallowedControlPattern.exec(value);
  if (control !== null) {
    return `control character ${codePointLabel(value.charCodeAt(control.index))} at position ${control.index}`;
  }
  return undefined;
}

/**
 * Unicode Normalization Form C. Chinese names, pinyin with tone marks ("Mǎ") and
 * Latin names with accents compare equal however they were typed.
 */
export function toNfc(value: string): string {
  return value.normalize('NFC');
}

/** CRLF and lone CR become LF: browsers submit textareas with CRLF, files come from Windows. */
export function normaliseLineEndings(value: string): string {
  return value.replace(/\r\n?/g, '\n');
}

/**
 * The form in which text is stored: NFC, LF line endings, no surrounding white space.
 * Well-formedness is checked separately (textProblem) so the caller can say what was wrong.
 */
export function normaliseText(value: string): string {
  return toNfc(normaliseLineEndings(value)).trim();
}

function codePointLabel(codeUnit: number): string {
  return `U+${codeUnit.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** `text` cut to `lengthMax` code points, marked with "…" when cut; reads no further than that. */
export function cut(text: string, lengthMax: number): string {
  let kept = '';
  let count = 0;
  for (const character of text) {
    if (count === lengthMax) return `${kept}…`;
    kept += character;
    count += 1;
  }
  return kept;
}

/**
 * A field's path in a request body as a refusal quotes it: its steps joined with dots
 * ("parties.1.organisationId"), "(body)" for the body itself, cut to `lengthMax` code points.
 * Joined only as far as that: a path may be thousands of steps deep (the depth is the
 * client's choice), and past twice the bound in UTF-16 code units it is past it in code points.
 */
export function quotedFieldPath(steps: readonly string[], lengthMax: number): string {
  if (steps.length === 0) return '(body)';
  let joined = '';
  for (const [depth, step] of steps.entries()) {
    joined += `${depth === 0 ? '' : '.'}${cut(step, lengthMax)}`;
    if (joined.length > 2 * lengthMax) break;
  }
  return cut(joined, lengthMax);
}

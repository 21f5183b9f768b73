/**
 * Input hygiene for every free-text field (names, addresses, conditions, CSV cells), and the
 * folds by which identity fields (a product's model, a licence's reference, an organisation's
 * identifiers) are compared.
 *
 * Text that reaches the ledger is hashed into the transparency log (RFC 8785 canonical JSON),
 * compared with what is already stored (a model with the accelerator catalogue and the
 * products registered, a reference with its authority's, an identifier with every
 * organisation's) and shown to people. So it must be (1) well-formed UTF-16: a lone surrogate
 * has no UTF-8 encoding, and canonicalisation or a database write would fail or silently
 * substitute U+FFFD; (2) free of control characters and bidi controls, which hide or reorder
 * text for reviewers and break line-based exports; (3) in one Unicode normal form, so "é"
 * typed two ways is one name. A field that names a thing (identityProblem) must also be one
 * line, without invisible characters: "H200\u200b SXM" looks like H200 SXM to everyone.
 */

/**
 * Control characters (Unicode category Cc: C0, DEL, C1) other than tab (U+0009) and line feed
 * (U+000A), the two that text legitimately contains. CR is normalised away (normaliseLineEndings).
 */
const disallowedControlPattern = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

/**
 * Bidirectional-text controls that reorder what follows them: the embeddings, overrides and
 * isolates (U+202A–U+202E, U+2066–U+2069). An override makes "0417-H200" display as another
 * reference than it is. The marks (LRM U+200E, RLM U+200F, ALM U+061C) are not refused in free
 * text: each is an invisible letter of one direction, which moves no character past another on
 * its own, and Arabic and Hebrew typed on phones and Windows carry them ("شركة الرقائق\u200f
 * ABC"). A field that names a thing refuses them all the same, as invisible characters
 * (identityProblem). cli/output.ts still replaces them in what it prints to a terminal.
 */
const bidiControlPattern = /[\u202A-\u202E\u2066-\u2069]/;

/** Line breaks that are not controls (LF, and U+2028, U+2029), refused where a field is one line. */
const lineBreakPattern = /[\n\u2028\u2029]/;

/**
 * Invisible characters: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt,
 * 15.1), listed rather than written \p{Default_Ignorable_Code_Point} so that migration 050's
 * folds in SQL hold the same characters as this code, one for one (text.test.ts holds the list
 * to the running Node's property). Zero-width spaces and joiners, the soft hyphen, word joiner,
 * BOM, variation selectors, tags, the Hangul fillers.
 */
export const invisibleCharacters = '\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}';
/** White space as JavaScript's \s and String.prototype.trim take it, listed for the same reason. */
export const whiteSpaceCharacters = '\t\n\u000B\f\r \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF';
/** Dashes: Unicode's Dash_Punctuation (\p{Pd}, 16.0: U+10D6E is Garay's), listed, and the minus sign U+2212, which reads as one. */
export const dashCharacters = '\\-\u058A\u05BE\u1400\u1806\u2010-\u2015\u2212\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u2E5D\u301C\u3030\u30A0\uFE31\uFE32\uFE58\uFE63\uFF0D\u{10D6E}\u{10EAD}';

const invisiblePattern = new RegExp(`[${invisibleCharacters}]`, 'u');

/**
 * The Unicode whose NFKC the database is taken to have: PostgreSQL 13's normalize() tables, the
 * oldest server migration 050 runs on (PostgreSQL 15 has 14.0, 17 has 15.1; this Node, newer).
 */
export const databaseUnicodeVersion = '13.0';
/**
 * Characters of the BMP that Unicode assigned after 13.0 and that NFKC does something with:
 * those with a decomposition (U+A7F1–U+A7F4, modifier capitals that read as S, C, F and Q) and
 * the combining marks, which NFKC orders by their class and may compose. A database whose
 * tables predate them leaves them as they are, so its fold and this code's differ. Listed from
 * @unicode/unicode-13.0.0's Unassigned against Node 20's ICU (Unicode 17.0), so that the rule
 * does not move with the running Node; store/identities-050.test.ts folds every code point in
 * the database and in this code, and finds any character a newer Unicode adds.
 */
export const newerNormalisingCharacters = '\u0897-\u089F\u08CA-\u08D2\u0C3C\u0CF3\u0ECE\u1715\u180F\u1AC1-\u1ADD\u1AE0-\u1AEB\u1DFA\uA7F1-\uA7F4';
/**
 * What an identity field may not hold because two Unicode versions fold it apart: the BMP's
 * newer normalising characters above, and every code point past the BMP but the CJK
 * ideographs of planes 2 and 3 (Extensions B to J, and the compatibility ideographs of 3.1).
 * Unicode assigns most new characters past the BMP (U+1CCD6–U+1CCF9, outlined letters of 16.0
 * that NFKC reads as A–Z and 0–9, are refused so), and listing each version's would tie the
 * rule to one Node; an ideograph has no decomposition and no combining class, so any Unicode
 * folds it alike. Refused rather than folded in code, as the ledger and the database compare
 * such fields by the database's fold (migration 050) and the ledger's, and a reference that one
 * reads as BIS-D-2026-0001 and the other not would be two licences to the database but one to
 * the ledger, or the reverse (s21 ledger review, finding 4).
 */
const newerUnicodePattern = new RegExp(`[${newerNormalisingCharacters}\u{10000}-\u{1FFFF}\u{40000}-\u{10FFFF}]`, 'u');

/**
 * Why a field that names a thing holds a character the database may fold otherwise than this
 * code (newerUnicodePattern), naming it and its position; undefined when it holds none.
 */
export function newerUnicodeProblem(value: string): string | undefined {
  const found = newerUnicodePattern.exec(value);
  if (found === null) return undefined;
  const codePoint = value.codePointAt(found.index)!;
  const why = codePoint > 0xffff ? 'past U+FFFF only CJK ideographs are taken' : `one added since Unicode ${databaseUnicodeVersion} that normalisation changes`;
  return `the character ${codePointLabel(codePoint)} at position ${found.index}, which an older database (Unicode ${databaseUnicodeVersion}: PostgreSQL 13) may fold otherwise than the ledger; ${why}`;
}

/** ASCII letters A to Z in lower case, and no other: the database's lower() under the "C" collation (migrations 043, 050). */
export function asciiLowerCase(value: string): string {
  return value.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/** ASCII letters a to z in capitals, and no other: the database's upper() under the "C" collation (migration 050). */
export function asciiUpperCase(value: string): string {
  return value.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}

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
  const bidi = bidiControlPattern.exec(value);
  if (bidi !== null) return `bidi control ${codePointLabel(value.charCodeAt(bidi.index))} at position ${bidi.index}`;
  return undefined;
}

/**
 * Why a field that names a thing (a model, a reference) is not acceptable, beyond
 * textProblem: it is one line, and has no invisible character. Such a field is compared with
 * what is stored, and read by people who cannot see U+200B: "H200\u200b SXM" passed the
 * catalogue's check as a model of its own (s21 identity review, finding 1). The schema also
 * refuses in it what the database's Unicode may fold otherwise (newerUnicodeProblem).
 */
export function identityProblem(value: string): string | undefined {
  const problem = textProblem(value);
  if (problem !== undefined) return problem;
  const lineBreak = lineBreakPattern.exec(value);
  if (lineBreak !== null) return `line break ${codePointLabel(value.charCodeAt(lineBreak.index))} at position ${lineBreak.index}`;
  const invisible = invisiblePattern.exec(value);
  if (invisible !== null) return `invisible character ${codePointLabel(value.codePointAt(invisible.index)!)} at position ${invisible.index}`;
  return undefined;
}

const latinLetter = /\p{Script=Latin}/u;
const lookAlikeLetters = [
  { script: 'Cyrillic', pattern: /\p{Script=Cyrillic}/u },
  { script: 'Greek', pattern: /\p{Script=Greek}/u },
] as const;

/** The script of a Cyrillic or Greek letter, which may look like a Latin one; undefined for any other character. */
export function lookAlikeScript(character: string): 'Cyrillic' | 'Greek' | undefined {
  return lookAlikeLetters.find(({ pattern }) => pattern.test(character))?.script;
}

/**
 * A text that mixes Latin letters with Cyrillic or Greek ones, naming the first of the
 * latter, or undefined. Cyrillic Н, А, В, Е, К, М, О, Р, С, Т, Х and Greek Α, Β, Ε, Η, Κ, Μ,
 * Ο, Ρ, Τ, Χ look like Latin letters, so "Н200 SXM" reads as H200 SXM and compares as another
 * model. Over the whole text, not word by word: in "Н200 SXM" the Cyrillic word has no Latin
 * letter. As UTS #39's "moderately restrictive" level, which allows Latin with any script but
 * these two (Latin with Han, as in 昇腾 Ascend 910B, is fine).
 */
export function mixedScriptProblem(value: string): string | undefined {
  if (!latinLetter.test(value)) return undefined;
  for (const { script, pattern } of lookAlikeLetters) {
    const found = pattern.exec(value);
    if (found === null) continue;
    const letter = String.fromCodePoint(value.codePointAt(found.index)!);
    return `mixes Latin letters with ${script} ones: ${JSON.stringify(letter)} (${codePointLabel(letter.codePointAt(0)!)}) at position ${found.index} looks like a Latin letter but is not one`;
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

/** U+XXXX for a code point (or a lone surrogate's code unit), as the refusals name it. */
export function codePointLabel(codePoint: number): string {
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
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

/**
 * Request bodies: strict UTF-8, then JSON (I-JSON: no member name twice in one object; no
 * number that JSON.parse rounds to a whole one), then well-formed Unicode. Each failure is a
 * 400 problem saying what was wrong, never a 500 and never text silently repaired (a
 * replacement character in a company name is a changed record).
 */
import { DomainError } from '../core/errors.ts';
import { numberTokenEnd, roundedNumberWords, roundedToWholeAt, startsNumber } from '../core/json-numbers.ts';
import { limits } from '../core/limits.ts';
import { cut, quotedFieldPath } from '../core/text.ts';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
/** A \uD800-\uDFFF escape: the only way JSON text can carry a lone surrogate. */
const surrogateEscape = /\\u[dD][89a-fA-F]/;
/** Text that may hold a key named __proto__, spelled out or with escapes. */
const mayNameProto = /__proto__|\\u/;

/** An empty body is no body; anything else must be JSON. */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  let text: string;
  try {
    text = strictUtf8.decode(body);
  } catch {
    throw new DomainError('invalid_input', "couldn't read the request body: it is not valid UTF-8", { rule: 'utf-8' });
  }
  refuseManyValues(text);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DomainError('invalid_input', `couldn't read the request body: it is not valid JSON (${(error as Error).message})`, { rule: 'json' });
  }
  refuseWhatParseChanged(text);
  if (surrogateEscape.test(text) || mayNameProto.test(text)) assertCleanValue(value);
  return value;
}

/**
 * Objects and arrays one JSON body may open. A manifest gives each of its serials as an object
 * (with its GPU UUID), so twice the most serials a body carries leaves room for any real
 * request. Below limits.jsonBodyValuesMax, which counts them too, because nesting costs
 * JSON.parse more than any other value: 24 MiB of `[{},{},…]` is 8 million objects, about 7 s
 * on this project's machine, and 600,000 arrays nested in each other took 0.8 s, 200,000 0.2 s.
 */
export const jsonStructuresMax = 2 * limits.shipmentSerialsMax;

/**
 * Refuses, before JSON.parse, a body that opens more than jsonStructuresMax objects and
 * arrays or holds more than limits.jsonBodyValuesMax values and member names: past them,
 * JSON.parse and the scans after it hold the event loop for seconds within the body bound.
 * Each value but the first follows a `[`, `:` or `,`, and each name a `{` or `,`, so those
 * four outside strings count both (and an empty object or array once). One pass over the
 * decoded text: a string's contents are skipped as refuseWhatParseChanged skips them, so the
 * colons of a serial and the commas of a company's name count nothing. Linear, and it stops
 * at the first bound: 13 ms on the largest manifest, under 100 ms on 24 MiB of indentation.
 */
function refuseManyValues(text: string): void {
  let structures = 0;
  let values = 0;
  for (let at = 0; at < text.length; at += 1) {
    const char = text.charCodeAt(at);
    if (char === quote) {
      at = stringEnd(text, at);
      // A string never closed: nothing after it is counted, and JSON.parse refuses it.
      if (at === -1) return;
    } else if (char === colon || char === comma || char === openBrace || char === openBracket) {
      values += 1;
      if (values > limits.jsonBodyValuesMax) throw manyValues();
      if (char === openBrace || char === openBracket) {
        structures += 1;
        if (structures > jsonStructuresMax) throw manyStructures();
      }
    }
  }
}

function manyStructures(): DomainError {
  return new DomainError('invalid_input', `couldn't read the request body: it opens more than ${jsonStructuresMax.toLocaleString('en-US')} JSON objects and arrays (jsonStructuresMax); a manifest of the most serials opens about half as many`, {
    rule: 'json-structures', details: { structuresMax: jsonStructuresMax },
  });
}

/** What one manifest entry `{"serial":…,"gpuUuid":…},` counts among the values and names. */
const manifestEntryValues = 5;

function manyValues(): DomainError {
  const valuesMax = limits.jsonBodyValuesMax;
  return new DomainError('invalid_input', `couldn't read the request body: it holds more than ${valuesMax.toLocaleString('en-US')} JSON values and member names (jsonBodyValuesMax); a manifest of the most serials holds about ${(manifestEntryValues * limits.shipmentSerialsMax).toLocaleString('en-US')}`, {
    rule: 'json-values', details: { valuesMax },
  });
}

/** Characters of a repeated name that a refusal quotes, cut by code point. */
export const quotedNameLengthMax = 100;
/** Characters of the place of that name's object (its path, as a field's) that a refusal quotes. */
export const quotedPlaceLengthMax = 200;

const quote = 0x22;
const backslash = 0x5c;
const comma = 0x2c;
const colon = 0x3a;
const openBrace = 0x7b;
const closeBrace = 0x7d;
const openBracket = 0x5b;
const closeBracket = 0x5d;

/**
 * Member names an object keeps in a list, looked through one by one, before it keeps them in
 * a set: most objects have a few names, and a set for each of a manifest's 100,000 entries
 * would cost more than the rest of the scan.
 */
const listedNamesMax = 16;

/**
 * An object or array still open while the text is scanned. `names`: an object's member
 * names so far (null before the first); `name`: its member being read; `index`: an array's
 * element being read; `nameNext`: the next string in the object is a name, not a value.
 */
interface OpenValue {
  object: boolean;
  names: string[] | Set<string> | null;
  name: string;
  index: number;
  nameNext: boolean;
}

/**
 * Refuses what JSON.parse changed without a word, the first in the text:
 * - a member name given twice in one object (RFC 7493 §2.3, I-JSON, which the RFC 8785
 *   canonical bytes of an event assume). JSON.parse keeps the last value, so
 *   {"authorisedUnits":10,"authorisedUnits":1000000} would commit a million units that a
 *   reviewer of the first line never saw;
 * - a number that is not whole but that JSON.parse rounded to a whole double
 *   (core/json-numbers.ts): `"units":1e-400` would resize an allocation to 0 units, and
 *   `"denseTops":199.999999999999999` would land exactly on a threshold at 200.
 * One pass over text that JSON.parse has already read (so it is well-formed, and a '-' or a
 * digit outside a string starts a number): a string's contents are skipped with indexOf,
 * names are compared as JSON reads them ("a" and "\u0061" are one name), and a stack, not
 * recursion, follows the nesting, whose depth is the client's choice. On the largest manifest
 * (100,000 serials with GPU UUIDs, 15.5 MB) it takes tens of milliseconds, a quarter to a half
 * of JSON.parse's; a number of digits alone costs a look at each of them.
 */
function refuseWhatParseChanged(text: string): void {
  const open: OpenValue[] = [];
  for (let at = 0; at < text.length; at += 1) {
    const char = text.charCodeAt(at);
    if (char === quote) {
      const end = stringEnd(text, at);
      const inner = open[open.length - 1];
      if (inner !== undefined && inner.nameNext) addName(inner, nameBetween(text, at, end), open);
      at = end;
    } else if (char === openBrace || char === openBracket) {
      const object = char === openBrace;
      open.push({ object, names: null, name: '', index: 0, nameNext: object });
    } else if (char === closeBrace || char === closeBracket) {
      open.pop();
    } else if (char === comma) {
      const inner = open[open.length - 1]!;
      if (inner.object) inner.nameNext = true;
      else inner.index += 1;
    } else if (startsNumber(char)) {
      const end = numberTokenEnd(text, at);
      if (roundedToWholeAt(text, at, end)) throw roundedNumber(text.slice(at, end), open);
      at = end - 1;
    }
  }
}

/** Adds a member name to its object, refusing one it already has. */
function addName(inner: OpenValue, name: string, open: readonly OpenValue[]): void {
  const names = inner.names;
  if (names === null) {
    inner.names = [name];
  } else if (Array.isArray(names)) {
    if (names.includes(name)) throw repeatedName(name, open);
    names.push(name);
    if (names.length > listedNamesMax) inner.names = new Set(names);
  } else {
    if (names.has(name)) throw repeatedName(name, open);
    names.add(name);
  }
  inner.name = name;
  inner.nameNext = false;
}

/** The index of the quote that ends the string opening at `start`: the first not escaped by an odd run of backslashes; -1 if none does. */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  for (;;) {
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === backslash) backslashes += 1;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}

/** The name a JSON string spells, escapes undone: only a name with a backslash needs JSON.parse. */
function nameBetween(text: string, start: number, end: number): string {
  const raw = text.slice(start + 1, end);
  return raw.includes('\\') ? (JSON.parse(text.slice(start, end + 1)) as string) : raw;
}

/** The place of the value being read, as a field's path ("serials.3.units"), or "(body)". */
function valuePlace(open: readonly OpenValue[]): string {
  return quotedFieldPath(open.map((outer) => (outer.object ? outer.name : String(outer.index))), quotedPlaceLengthMax);
}

function roundedNumber(token: string, open: readonly OpenValue[]): DomainError {
  const { number, readAs } = roundedNumberWords(token);
  const at = valuePlace(open);
  return new DomainError('invalid_input', `couldn't read the request body: the number ${number} at ${at} is not a whole number, but JSON reads it as ${readAs}; it is refused rather than changed`, {
    rule: 'json-number', details: { number, readAs, at },
  });
}

function repeatedName(name: string, open: readonly OpenValue[]): DomainError {
  const key = cut(name, quotedNameLengthMax);
  // The innermost open object's path, as a field's ("parties.1"), or "(body)".
  const at = valuePlace(open.slice(0, -1));
  return new DomainError('invalid_input', `couldn't read the request body: the name ${JSON.stringify(key)} appears twice in the object at ${at}; JSON with a repeated name (RFC 7493 §2.3) is read differently by different readers, so it is refused`, {
    rule: 'json', details: { key, at },
  });
}


/**
 * Walks the value without recursion (depth is the client's choice) and refuses lone
 * surrogates and keys named __proto__: zod drops such a key from a record without a word,
 * so the command stored would differ from the one sent.
 */
function assertCleanValue(root: unknown): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (!value.isWellFormed()) throw loneSurrogate();
    } else if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (!key.isWellFormed()) throw loneSurrogate();
        if (key === '__proto__') throw new DomainError('invalid_input', "couldn't read the request body: it has a key named __proto__, which no field of this API takes", { rule: 'json' });
        stack.push(item);
      }
    }
  }
}

function loneSurrogate(): DomainError {
  return new DomainError('invalid_input', "couldn't read the request body: it contains a lone UTF-16 surrogate (such as \\ud800), which is not Unicode text", { rule: 'unicode' });
}

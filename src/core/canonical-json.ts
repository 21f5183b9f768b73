/**
 * RFC 8785 (JSON Canonicalization Scheme) text of a JSON value: object members sorted by
 * their names' UTF-16 code units, no white space, strings and numbers as ECMAScript's
 * JSON.stringify writes them (which is what RFC 8785 section 3.2.2 specifies).
 *
 * Why not the `canonicalize` package, which the ledger used until session 22: a keyed command
 * is canonicalised twice (its request hash, idempotency.ts, and its event), and the package was
 * the largest single item of the booking path's JavaScript. Per value it tests for NaN twice,
 * walks every string in JavaScript for lone surrogates, keeps a Set of the objects it is in
 * for cycles, and builds an array and a join for every object and array. Here a string of
 * printable ASCII (ids, times, codes) is checked by one loop, any other by the engine's own
 * String.prototype.isWellFormed, a cycle is caught by a depth bound, and the text is
 * concatenated directly: 2.3-2.6× faster on a booking's event body, and over HTTP the server
 * spent 15% less CPU a booking (docs/BENCHMARKS.md, session 22). It gives the same bytes for
 * every JSON value (canonical-json.test.ts holds it to the package with fast-check). It throws
 * where the package wrote garbage (a function, a toJSON that gives undefined: `{"a":undefined}`)
 * and on a symbol (which the package left out, or wrote as null in an array); a hole in a
 * sparse array is null here, where the package wrote nothing. No command's input or event
 * holds any of them: bodies are parsed JSON, and events are built from what the schemas took.
 */

/**
 * Nesting deeper than this is refused: a cycle would otherwise recurse without end. Event
 * bodies nest a few levels (a licence's conditions, an input's members). A request body may
 * nest deeper (the server bounds its JSON structures, not their depth), but every command's
 * schema is a strict object of a few levels, so such a body is refused before it is hashed or
 * recorded, and hashOfRefused (ledger/idempotency.ts) takes this refusal as "no hash".
 */
export const canonicalJsonDepthMax = 512;

/**
 * The RFC 8785 text of `value`. Throws on what has no JSON text: NaN or an infinity, a
 * string or member name with a lone surrogate, a bigint, function or symbol where a value
 * goes, `undefined` at the top, or nesting past canonicalJsonDepthMax (a cycle). Members whose
 * value is undefined are left out and undefined in an array is null, as JSON.stringify does.
 * An object with toJSON (a Date) is written as what toJSON returns.
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined) throw new TypeError('canonical JSON: undefined has no JSON text');
  return write(value, 0);
}

function write(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return stringText(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${value} has no JSON text`);
      // ECMAScript's Number::toString, as RFC 8785 section 3.2.2.3 specifies (-0 is "0").
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (depth >= canonicalJsonDepthMax) throw new RangeError(`canonical JSON: nested deeper than ${canonicalJsonDepthMax} levels (a cycle?)`);
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return write((value as { toJSON(): unknown }).toJSON(), depth + 1);
      return Array.isArray(value) ? arrayText(value, depth + 1) : objectText(value as Record<string, unknown>, depth + 1);
    case 'undefined':
      // Only from toJSON: undefined members and array items are handled where they are met.
      throw new TypeError('canonical JSON: a toJSON gave undefined, which has no JSON text');
    default:
      throw new TypeError(`canonical JSON: a ${typeof value} has no JSON text`);
  }
}

function stringText(value: string): string {
  // Most strings of an event (ids, times, codes) are printable ASCII without a quote or a
  // backslash, written as they are: a loop here costs less than a call into JSON.stringify.
  for (let index = 0; index < value.length; index += 1) {
    const code = value.charCodeAt(index);
    if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return escapedText(value);
  }
  return `"${value}"`;
}

function escapedText(value: string): string {
  if (!value.isWellFormed()) throw new TypeError('canonical JSON: a string with a lone surrogate has no canonical text');
  return JSON.stringify(value);
}

function arrayText(values: readonly unknown[], depth: number): string {
  let text = '[';
  for (let index = 0; index < values.length; index += 1) {
    if (index > 0) text += ',';
    const item = values[index];
    text += item === undefined ? 'null' : write(item, depth);
  }
  return `${text}]`;
}

function objectText(value: Record<string, unknown>, depth: number): string {
  const names = sortedNames(Object.keys(value));
  let text = '{';
  let first = true;
  for (const name of names) {
    const member = value[name];
    if (member === undefined) continue;
    text += `${first ? '' : ','}${stringText(name)}:${write(member, depth)}`;
    first = false;
  }
  return `${text}}`;
}

/** Member names up to this many are sorted in place here; more by Array.prototype.sort. */
const insertionSortNamesMax = 16;

/**
 * Names in RFC 8785's order: by UTF-16 code units, which is how JavaScript's < compares
 * strings and how Array.prototype.sort orders them without a comparator. An event's objects
 * have a handful of members, and the builtin sort copies its array first: sorted here in
 * place, a booking's canonical text allocated about a tenth less (session 22).
 */
function sortedNames(names: string[]): string[] {
  if (names.length > insertionSortNamesMax) return names.sort();
  for (let index = 1; index < names.length; index += 1) {
    const name = names[index]!;
    let at = index - 1;
    while (at >= 0 && names[at]! > name) {
      names[at + 1] = names[at]!;
      at -= 1;
    }
    names[at + 1] = name;
  }
  return names;
}

/**
 * A JSON request body from a file or stdin (`--body FILE`, or `-`), read and checked before
 * anything is sent: UTF-8, at most serialCsvBytesMax bytes, and JSON as the server reads it,
 * with the first problem said by line and column.
 */
import { quotedNumberLengthMax, roundedNumberWords, roundedToWhole } from '../core/json-numbers.ts';
import { limits } from '../core/limits.ts';
import { cut } from '../core/text.ts';
import { nameOfFile, readBounded, type StdinInput } from './client-commands.ts';
import { Failure, printableJson } from './output.ts';
import { serialCsvBytesMax } from './serials-csv.ts';

/** The body of a POST: a file's or stdin's bytes, at most serialCsvBytesMax, as checked JSON. */
export async function readBody(file: string, stdin: StdinInput): Promise<unknown> {
  const name = nameOfFile(file);
  const bytes = await readBounded(file, 'a request body', serialCsvBytesMax, stdin);
  let text: string;
  try {
    // Bytes that are not UTF-8 are refused, not replaced by U+FFFD and sent changed. A byte
    // order mark an editor wrote is dropped (RFC 8259 §8.1 lets a reader ignore it).
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Failure(`${name} is not UTF-8 text, as a JSON body must be; nothing was sent`, 2);
  }
  const problem = jsonProblem(text);
  if (problem !== undefined) {
    const { line, column } = lineAndColumn(text, problem.offset);
    throw new Failure(`${name}:${line}:${column}: ${problem.reason}; nothing was sent`, 2);
  }
  return JSON.parse(text) as unknown;
}

/**
 * The JSON object of `--body FILE` (or `-`, stdin): a body as readBody reads one, that is an
 * object, the request's fields.
 */
export async function readBodyObject(file: string, stdin: StdinInput): Promise<Record<string, unknown>> {
  const body = await readBody(file, stdin);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Failure(`${nameOfFile(file)} must hold a JSON object, the request's fields; nothing was sent`, 2);
  return body as Record<string, unknown>;
}

export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let at = text.indexOf('\n'); at !== -1 && at < offset; at = text.indexOf('\n', at + 1)) {
    line += 1;
    lineStart = at + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

interface JsonProblem { offset: number; reason: string }
/** An open object or array; an object's names so far, to refuse one given twice. */
interface OpenValue { names: Set<string> | undefined }

const whitespace = /[ \t\n\r]*/y;
const numberToken = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const literalToken = /true|false|null/y;

function match(pattern: RegExp, text: string, at: number): string | undefined {
  pattern.lastIndex = at;
  return pattern.exec(text)?.[0];
}

function skipSpace(text: string, at: number): number {
  return at + match(whitespace, text, at)!.length;
}

/**
 * Where, and why, `text` is not JSON the server takes as the user wrote it, or undefined when
 * it is: the first syntax error (JSON.parse of Node 20 does not always say where), a number
 * JSON.parse would change (numberProblem), a name given twice in one object (JSON.parse keeps
 * the last without a word, and the server refuses it: src/server/body.ts), or nesting past
 * limits.bodyNestingDepthMax. Iterative, so any depth is only counted.
 */
export function jsonProblem(text: string): JsonProblem | undefined {
  const open: OpenValue[] = [];
  let at = skipSpace(text, 0);
  for (;;) {
    // A value starts here.
    const char = text[at];
    if (char === '{' || char === '[') {
      if (open.length === limits.bodyNestingDepthMax) return { offset: at, reason: `the body nests deeper than ${limits.bodyNestingDepthMax} levels` };
      open.push({ names: char === '{' ? new Set() : undefined });
      at = skipSpace(text, at + 1);
      if (text[at] === (char === '{' ? '}' : ']')) {
        open.pop();
        at += 1;
      } else {
        if (char === '{') {
          const named = readName(text, at, open[open.length - 1]!);
          if (typeof named !== 'number') return named;
          at = named;
        }
        continue;
      }
    } else if (char === '"') {
      const end = stringEnd(text, at);
      if (end === undefined) return { offset: at, reason: 'a string is not closed, or holds a control character or a bad escape' };
      at = end;
    } else if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) {
      const token = match(numberToken, text, at);
      if (token === undefined) return { offset: at, reason: 'expected a number' };
      const problem = numberProblem(token);
      if (problem !== undefined) return { offset: at, reason: problem };
      at += token.length;
    } else {
      const token = match(literalToken, text, at);
      if (token === undefined) return { offset: at, reason: at >= text.length ? 'the JSON ends where a value was expected' : 'expected a value (an object, array, string, number, true, false or null)' };
      at += token.length;
    }
    // After a value: the next member, the end of its object or array, or the end of the text.
    const after = afterValue(text, at, open);
    if (typeof after !== 'number') return after === 'done' ? undefined : after;
    at = after;
  }
}

/**
 * Why a number token cannot be sent as written, or undefined when it can: one too large for a
 * double (JSON.parse reads it as Infinity, and it would be sent as null), or one that is not
 * whole but that JSON.parse rounds to a whole double (`1e-400` to 0, `4.9999999999999999` to 5),
 * which the server refuses (core/json-numbers.ts).
 */
function numberProblem(token: string): string | undefined {
  if (!Number.isFinite(Number(token))) return `the number ${cut(token, quotedNumberLengthMax)} is too large to send`;
  if (!roundedToWhole(token)) return undefined;
  const { number, readAs } = roundedNumberWords(token);
  return `the number ${number} is not a whole number, but JSON reads it as ${readAs}; the server refuses it rather than round it`;
}

/**
 * Past the ends of the objects and arrays a value closes, to where the next value starts;
 * 'done' at the end of the text.
 */
function afterValue(text: string, start: number, open: OpenValue[]): number | 'done' | JsonProblem {
  let at = skipSpace(text, start);
  for (;;) {
    const inner = open[open.length - 1];
    if (inner === undefined) return at === text.length ? 'done' : { offset: at, reason: 'there is more after the JSON value' };
    const object = inner.names !== undefined;
    const char = text[at];
    if (char === ',') {
      at = skipSpace(text, at + 1);
      return object ? readName(text, at, inner) : at;
    }
    if (char !== (object ? '}' : ']')) {
      const expected = object ? "',' or '}'" : "',' or ']'";
      return { offset: at, reason: at >= text.length ? `the JSON ends where ${expected} was expected` : `expected ${expected}` };
    }
    open.pop();
    at = skipSpace(text, at + 1);
  }
}

/** A member's name and its ':', refusing a name the object has; where its value starts. */
function readName(text: string, at: number, inner: OpenValue): number | JsonProblem {
  const end = text[at] === '"' ? stringEnd(text, at) : undefined;
  const token = end === undefined ? undefined : text.slice(at, end);
  if (token === undefined) return { offset: at, reason: at >= text.length ? 'the JSON ends where a name was expected' : 'expected a name in double quotes' };
  // As JSON reads it: "a" and "\u0061" are one name.
  const name = token.includes('\\') ? (JSON.parse(token) as string) : token.slice(1, -1);
  if (inner.names!.has(name)) return { offset: at, reason: `the name ${printableJson(name, 'one line')} appears twice in one object; the server refuses that, as readers differ on which value counts` };
  inner.names!.add(name);
  const colon = skipSpace(text, at + token.length);
  if (text[colon] !== ':') return { offset: colon, reason: "expected ':' after the name" };
  return skipSpace(text, colon + 1);
}

/**
 * Past the string that starts at `at` (a '"'), or undefined where it is not a JSON string (a
 * control character, a bad escape, no end). One pass: a regular expression with a repeat in a
 * repeat took time doubling with each character before a mistake (a tab 40 characters into a
 * string: hours), and overflowed V8's stack on a long run of escapes.
 */
function stringEnd(text: string, at: number): number | undefined {
  for (let i = at + 1; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return undefined;
    if (code === 0x5c) {
      const next = text[i + 1];
      if (next !== undefined && '"\\/bfnrt'.includes(next)) i += 1;
      else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 5;
      else return undefined;
    }
  }
  return undefined;
}

/**
 * Request bodies: strict UTF-8, then JSON, then well-formed Unicode. Each failure is a
 * 400 problem saying what was wrong, never a 500 and never text silently repaired
 * (a replacement character in a company name is a changed record).
 */
import { DomainError } from '../core/errors.ts';

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
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DomainError('invalid_input', `couldn't read the request body: it is not valid JSON (${(error as Error).message})`, { rule: 'json' });
  }
  if (surrogateEscape.test(text) || mayNameProto.test(text)) assertCleanValue(value);
  return value;
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

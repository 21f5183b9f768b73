/**
 * C2SP signed notes: a text ending in a newline, a blank line, then one signature line per key,
 * `— <name> base64(key id || signature)`. Opening a note verifies every signature by a known key
 * and refuses the note if any of them fails; signatures by unknown keys are reported, not
 * trusted. The split is at the last blank line, so the text itself may contain blank lines.
 */
import { decodeBase64Padded, encodeBase64 } from './base64.ts';
import { tlogError } from './errors.ts';
import { tlogLimits } from './limits.ts';
import { isValidKeyName, type NoteSigner, type NoteVerifier } from './note-key.ts';

export * from './note-key.ts';

const signaturePrefix = '\u2014 '; // em dash, space
const keyIdSize = 4;

/** One signature line of a note. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The signature bytes after the key id. */
  readonly signature: Buffer;
  /** The line as written, without the newline. */
  readonly line: string;
}

export interface ParsedNote {
  /** The signed text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export interface OpenedNote {
  readonly text: string;
  /** Signatures by known keys, each verified; at least one. */
  readonly verified: readonly NoteSignature[];
  /** Signatures by keys the caller did not list (ignored, identical lines once). */
  readonly unknown: readonly NoteSignature[];
}

function malformed(message: string): Error {
  return tlogError('c2sp-signed-note', 'malformed_note', `couldn't read signed note: ${message}`);
}

/**
 * Text that can be signed: ends in a newline, no control characters but newline, and no lone
 * UTF-16 surrogates (they would become U+FFFD when encoded, so the signed bytes would differ).
 */
function checkText(text: string, what: string): void {
  if (!text.endsWith('\n')) throw malformed(`${what} must end in a newline`);
  if (/[\x00-\x09\x0b-\x1f]/.test(text)) throw malformed(`${what} contains a control character`);
  if (/\p{Cs}/u.test(text)) throw malformed(`${what} is not valid Unicode`);
}

function decodeNote(note: string | Uint8Array): string {
  // The bound is on bytes: a string's length counts UTF-16 units, up to three times fewer.
  const bytes = typeof note === 'string' ? Buffer.byteLength(note, 'utf8') : note.length;
  if (bytes > tlogLimits.noteBytesMax) throw malformed(`longer than ${tlogLimits.noteBytesMax} bytes`);
  if (typeof note === 'string') return note;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(note);
  } catch {
    throw malformed('not valid UTF-8');
  }
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(signaturePrefix)) throw malformed('a signature line must start with "— "');
  const rest = line.slice(signaturePrefix.length);
  const space = rest.indexOf(' ');
  if (space < 0) throw malformed('a signature line must be "— name signature"');
  const name = rest.slice(0, space);
  const bytes = decodeBase64Padded(rest.slice(space + 1));
  if (!isValidKeyName(name)) throw malformed('invalid key name in a signature line');
  if (bytes === undefined || bytes.length <= keyIdSize) throw malformed(`signature by "${name}" is not base64 of a key id and a signature`);
  return { name, keyId: bytes.readUInt32BE(0), signature: bytes.subarray(keyIdSize), line };
}

/** Splits a note into text and signature lines, checking the format only (no signature is verified). */
export function parseNote(note: string | Uint8Array): ParsedNote {
  const decoded = decodeNote(note);
  checkText(decoded, 'a note');
  const split = decoded.lastIndexOf('\n\n');
  if (split < 0) throw malformed('no blank line before the signatures');
  const text = decoded.slice(0, split + 1);
  const lines = decoded.slice(split + 2, -1);
  if (lines.length === 0) throw malformed('no signatures');
  const signatureLines = lines.split('\n');
  if (signatureLines.length > tlogLimits.noteSignaturesMax) throw malformed(`more than ${tlogLimits.noteSignaturesMax} signatures`);
  return { text, signatures: signatureLines.map(parseSignatureLine) };
}

function verifierKey(name: string, keyId: number): string {
  return `${name} ${keyId}`; // names contain no spaces, so this key is unambiguous
}

function indexVerifiers(verifiers: readonly NoteVerifier[]): Map<string, NoteVerifier> {
  const byKey = new Map<string, NoteVerifier>();
  for (const verifier of verifiers) {
    const key = verifierKey(verifier.name, verifier.keyId);
    // Two verifiers for one name and key id is a configuration bug: which one would decide?
    if (byKey.has(key)) throw new Error(`assertion failed: two verifiers for ${verifier.name}`);
    byKey.set(key, verifier);
  }
  return byKey;
}

/**
 * Verifies a signed note against the known keys. Throws when the note is malformed, when any
 * signature by a known key fails (a forged or corrupted line taints the whole note), or when
 * no known key signed it. Every line of a known key is verified, as C2SP signed-note says
 * ("if the key name and ID match a known key, verifiers MUST verify the signature"): Go's
 * note.Open skips a known key's later lines unverified, so a forged line could ride along
 * after a good one. A witness that cosigns again by appending a line still passes, its new
 * line being good too; a known key's first good line is the one listed.
 */
export function openNote(note: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const parsed = parseNote(note);
  const byKey = indexVerifiers(verifiers);
  const textBytes = Buffer.from(parsed.text, 'utf8');
  const verified: NoteSignature[] = [];
  const unknown: NoteSignature[] = [];
  const seenKnown = new Set<string>();
  const seenUnknownLines = new Set<string>();
  for (const signature of parsed.signatures) {
    const key = verifierKey(signature.name, signature.keyId);
    const verifier = byKey.get(key);
    if (verifier === undefined) {
      if (!seenUnknownLines.has(signature.line)) unknown.push(signature);
      seenUnknownLines.add(signature.line);
      continue;
    }
    if (!verifier.verify(textBytes, signature.signature)) {
      throw tlogError('c2sp-signed-note', 'invalid_signature', `couldn't open signed note: the signature by "${signature.name}" does not verify`);
    }
    if (seenKnown.has(key)) continue;
    seenKnown.add(key);
    verified.push(signature);
  }
  if (verified.length === 0) throw tlogError('c2sp-signed-note', 'unverified_note', "couldn't open signed note: no signature by a known key");
  return { text: parsed.text, verified, unknown };
}

/**
 * A signature line in its one canonical spelling, without the newline. Reading is lenient
 * (padding bits ignored, as Go's note.Open does), so a line as received may be spelt another
 * way; what a log stores and serves is this one, which every strict decoder reads.
 */
export function canonicalSignatureLine(signature: Pick<NoteSignature, 'name' | 'keyId' | 'signature'>): string {
  if (!isValidKeyName(signature.name)) throw new Error(`assertion failed: invalid signer name "${signature.name}"`);
  const keyId = Buffer.alloc(keyIdSize);
  keyId.writeUInt32BE(signature.keyId);
  return `${signaturePrefix}${signature.name} ${encodeBase64(Buffer.concat([keyId, signature.signature]))}`;
}

function signatureLine(signer: NoteSigner, textBytes: Buffer): string {
  return `${canonicalSignatureLine({ name: signer.name, keyId: signer.keyId, signature: signer.sign(textBytes) })}\n`;
}

function checkSigners(signers: readonly NoteSigner[], existing: readonly NoteSignature[]): void {
  const keys = new Set(existing.map((signature) => verifierKey(signature.name, signature.keyId)));
  for (const signer of signers) {
    const key = verifierKey(signer.name, signer.keyId);
    if (keys.has(key)) throw tlogError('c2sp-signed-note', 'duplicate_signature', `couldn't sign note: "${signer.name}" would sign it twice`);
    keys.add(key);
  }
}

/** Signs a text (which must end in a newline) with one or more keys: text, blank line, signature lines. */
export function signNote(text: string, signers: NoteSigner | readonly NoteSigner[]): string {
  const list = Array.isArray(signers) ? (signers as readonly NoteSigner[]) : [signers as NoteSigner];
  if (list.length === 0) throw new Error('assertion failed: signNote needs at least one signer');
  checkText(text, 'the text');
  checkSigners(list, []);
  const textBytes = Buffer.from(text, 'utf8');
  return `${text}\n${list.map((signer) => signatureLine(signer, textBytes)).join('')}`;
}

/**
 * Adds signatures to an already signed note (a witness cosigning a checkpoint), keeping the
 * existing lines as they are. The caller must have opened the note first: this only appends.
 */
export function addSignatures(note: string, signers: NoteSigner | readonly NoteSigner[]): string {
  const list = Array.isArray(signers) ? (signers as readonly NoteSigner[]) : [signers as NoteSigner];
  const parsed = parseNote(note);
  checkSigners(list, parsed.signatures);
  if (parsed.signatures.length + list.length > tlogLimits.noteSignaturesMax) throw malformed(`more than ${tlogLimits.noteSignaturesMax} signatures`);
  const textBytes = Buffer.from(parsed.text, 'utf8');
  return `${note}${list.map((signer) => signatureLine(signer, textBytes)).join('')}`;
}

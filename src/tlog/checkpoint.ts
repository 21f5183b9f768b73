/**
 * C2SP tlog-checkpoint: the note text a log signs for each tree head, `origin\nsize\nbase64
 * root\n` plus optional extension lines. Parsing is strict (one spelling per checkpoint) so
 * that two different texts never claim the same tree head.
 */
import { decodeBase64Strict, encodeBase64 } from './base64.ts';
import { tlogError } from './errors.ts';
import { hashSize } from './hash.ts';
import { tlogLimits } from './limits.ts';
import { openNote, signNote, type NoteSigner, type NoteVerifier, type OpenedNote } from './note.ts';

/**
 * The extension line by which a log announces a new signing key: `<this> <verifier key>`,
 * the only extension of a checkpoint signed by the old key and the new one. A verifier that
 * trusts the old key follows it to the new one.
 */
export const keyRotationExtension = 'chipledger.dev/key-rotation';

export interface Checkpoint {
  /** The log's identity, e.g. "chipledger.example/log"; the log's key name equals it. */
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  /** Opaque extension lines, each non-empty, without newlines. */
  readonly extensions: readonly string[];
}

function malformed(message: string): Error {
  return tlogError('c2sp-tlog-checkpoint', 'malformed_checkpoint', `couldn't read checkpoint: ${message}`);
}

/** Whether a line can appear in a checkpoint: non-empty, no newline or other control character. */
function isLine(line: string): boolean {
  return line.length > 0 && !/[\x00-\x1f]/.test(line) && !/\p{Cs}/u.test(line);
}

export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions } = checkpoint;
  // These are our own values: a bad one is a bug in the caller, not input to report.
  if (!isLine(origin)) throw new Error('assertion failed: checkpoint origin must be one non-empty line');
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`assertion failed: checkpoint size must be a tree size, got ${size}`);
  if (rootHash.length !== hashSize) throw new Error(`assertion failed: checkpoint root must be ${hashSize} bytes`);
  if (!extensions.every(isLine) || extensions.length > tlogLimits.checkpointExtensionLinesMax) throw new Error('assertion failed: bad checkpoint extension lines');
  return [origin, String(size), encodeBase64(rootHash), ...extensions].map((line) => `${line}\n`).join('');
}

/** Reads a checkpoint body (the note text, not the signed note). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw malformed('must end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw malformed('needs origin, size and root hash lines');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (!isLine(origin)) throw malformed('the origin must be a non-empty line');
  if (!/^(?:0|[1-9][0-9]*)$/.test(sizeText)) throw malformed('the tree size must be a decimal without leading zeros');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size) || size > tlogLimits.treeSizeMax) throw malformed(`the tree size is above ${tlogLimits.treeSizeMax}`);
  const rootHash = decodeBase64Strict(rootText);
  if (rootHash === undefined || rootHash.length !== hashSize) throw malformed(`the root hash must be base64 of ${hashSize} bytes`);
  if (extensions.length > tlogLimits.checkpointExtensionLinesMax) throw malformed(`more than ${tlogLimits.checkpointExtensionLinesMax} extension lines`);
  if (!extensions.every(isLine)) throw malformed('extension lines must be non-empty');
  return { origin, size, rootHash, extensions };
}

/** Formats and signs a checkpoint: the log's signer first, then any cosigners. */
export function signCheckpoint(checkpoint: Checkpoint, signers: NoteSigner | readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(checkpoint), signers);
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: OpenedNote;
}

/**
 * Opens a signed checkpoint: the log's own key must have signed it and its name must be the
 * origin (so a note from another log is refused); witnesses' signatures, if they are listed,
 * are verified too and returned in note.verified for the caller's quorum policy.
 */
export function openCheckpoint(note: string | Uint8Array, logVerifier: NoteVerifier, witnessVerifiers: readonly NoteVerifier[] = []): OpenedCheckpoint {
  const opened = openNote(note, [logVerifier, ...witnessVerifiers]);
  const byLog = opened.verified.some((signature) => signature.name === logVerifier.name && signature.keyId === logVerifier.keyId);
  if (!byLog) throw tlogError('c2sp-tlog-checkpoint', 'unverified_checkpoint', `couldn't open checkpoint: not signed by the log key "${logVerifier.name}"`);
  const checkpoint = parseCheckpoint(opened.text);
  if (checkpoint.origin !== logVerifier.name) {
    throw tlogError('c2sp-tlog-checkpoint', 'wrong_origin', `couldn't open checkpoint: origin "${checkpoint.origin}" is not the log "${logVerifier.name}"`);
  }
  return { checkpoint, note: opened };
}

/**
 * `chipledger log prove`: an event's C2SP tlog-proof, fetched and verified offline against
 * the event's bytes (from a file, the event API or its entry bundle), following any key the
 * log announced since the key given.
 */
import { resolve } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { isDomainError } from '../../core/errors.ts';
import { limits } from '../../core/limits.ts';
import { hashSize, leafHash, parseNote, parseTlogProof, tileWidth, verifyTlogProof, type Ed25519NoteVerifier } from '../../tlog/index.ts';
import { readBounded } from '../client-commands.ts';
import { Failure, printable } from '../output.ts';
import { LogFetchError, type LogClient } from './client.ts';
import { clientOf, defaultDeps, guard, keysFollowed, usage, verifierOf, wholeNumber, type KeyOptions, type LogCommandDeps, type ServerOptions } from './command-kit.ts';
import { openFollowingRotation } from './key-chain.ts';

/** What --event-file may hold, said wherever a file is not what the command needs. */
export const eventFileFormats = 'the event as GET /v1/events/SEQ serves it (JSON), or its canonical bytes (the log leaf: that JSON\'s canonical field, base64-decoded)';

/** The event's bytes, and the file they came from: a file is the caller's word, an answer the log's. */
interface EventToProve {
  bytes: Buffer;
  file: string | undefined;
}

/** The event's bytes: from a file, from GET /v1/events/:seq, or from its entry bundle. */
async function eventBytes(client: LogClient, seq: number, proofText: string, eventFile: string | undefined): Promise<EventToProve> {
  if (eventFile !== undefined) {
    // Bounded: an event is at most limits.eventBytesMax, and a file name such as /dev/zero
    // read whole ate the host's memory.
    const bytes = await readBounded(eventFile, 'an event file', limits.eventFileBytesMax);
    return { bytes: canonicalOfEventFile(bytes, eventFile, seq), file: eventFile };
  }
  if (!client.hasToken) throw usage('give --token (to fetch the event) or --event-file FILE (the event as GET /v1/events/SEQ serves it, or its canonical bytes) to check the proof against the event');
  const listed = await client.event(seq);
  if (listed) return { bytes: listed, file: undefined };
  // The proof's checkpoint is verified later (the event's bytes come first); here its size
  // only picks the bundle, and a size that does not cover the event is the log's answer gone wrong.
  const size = parseNoteSize(checkpointNoteOf(seq, proofText));
  if (!Number.isSafeInteger(size) || seq >= size) throw new Failure(`the proof for event ${seq} does not verify: its checkpoint, of size ${Number.isSafeInteger(size) ? size : 'unreadable'}, does not cover event ${seq}`);
  const tileIndex = Math.floor(seq / tileWidth);
  try {
    const entries = await client.entries(tileIndex, Math.min(tileWidth, size - tileIndex * tileWidth));
    return { bytes: entries[seq - tileIndex * tileWidth]!, file: undefined };
  } catch (error) {
    if (error instanceof LogFetchError && (error.status === 401 || error.status === 403)) {
      throw new Failure(`event ${seq} is not visible to this token (not among its events, and it may not read entry bundles)`);
    }
    throw error;
  }
}

/**
 * The canonical bytes an event file holds. People save the event as the API serves it
 * (`curl …/v1/events/SEQ > event.json`), whose `canonical` field holds the leaf bytes in
 * base64; the leaf is those bytes, not the JSON around them. The canonical bytes are JSON
 * too, but an event body has no top-level `canonical`, so the two are never confused: any
 * other file is taken as the canonical bytes themselves. A served event of another number is
 * the command's mistake (exit 2), said before anything is checked.
 */
function canonicalOfEventFile(bytes: Buffer, file: string, seq: number): Buffer {
  const served = servedEvent(bytes);
  if (served === undefined) return bytes;
  if (served.seq !== seq) throw usage(`the event file ${file} holds event ${JSON.stringify(served.seq)} as GET /v1/events/:seq serves it, not event ${seq}; give event ${seq}`);
  const canonical = base64Strict(served.canonical);
  if (canonical === undefined) throw usage(`the event file ${file} is an event as GET /v1/events/${seq} serves it, but its canonical field is not base64; give ${eventFileFormats}`);
  return canonical;
}

function servedEvent(bytes: Buffer): { seq: unknown; canonical: string } | undefined {
  let parsed: unknown;
  try {
    // A byte order mark, as some editors save, would make the JSON unreadable.
    parsed = JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, ''));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !('seq' in parsed)) return undefined;
  const { seq, canonical } = parsed as { seq: unknown; canonical?: unknown };
  return typeof canonical === 'string' ? { seq, canonical } : undefined;
}

/** Standard padded base64, one spelling per value (Buffer.from skips what it cannot read). */
function base64Strict(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

function parseNoteSize(note: string): number {
  const lines = parseNote(note).text.split('\n');
  return Number(lines[1]);
}

/** The checkpoint a proof bundle carries; a bundle that does not parse is the log's answer gone wrong. */
function checkpointNoteOf(seq: number, text: string): string {
  try {
    return parseTlogProof(text).checkpointNote;
  } catch (error) {
    throw new Failure(`the proof for event ${seq} does not verify: ${(error as Error).message}`);
  }
}

/** Which check of a tlog format refused (tlog/errors.ts), or undefined for any other error. */
function reasonOf(error: unknown): unknown {
  return isDomainError(error) ? error.details?.reason : undefined;
}

/**
 * Why the proof does not verify. When the key opened the checkpoint but the event's leaf is
 * not in it, and the event came from a file, the file is the caller's and the proof the log's:
 * the leaf the log holds at SEQ (in its public level-0 hash tile) says which is wrong. When the
 * proof includes that leaf, the signed checkpoint commits to it and the file is not event SEQ's
 * canonical bytes; when it does not, the proof itself fails against the checkpoint.
 */
async function proofFailure(client: LogClient, seq: number, text: string, verifier: Ed25519NoteVerifier, event: EventToProve, error: Error): Promise<Failure> {
  const proofFails = new Failure(`the proof for event ${seq} does not verify: ${error.message}`);
  if (event.file === undefined || reasonOf(error) !== 'inclusion_failed') return proofFails;
  const proof = parseTlogProof(text);
  const size = parseNoteSize(proof.checkpointNote);
  // A proof for another entry, or past its checkpoint, is the log's answer gone wrong: there is no leaf to compare.
  if (proof.index !== seq || seq >= size) return proofFails;
  const tileIndex = Math.floor(seq / tileWidth);
  const offset = (seq - tileIndex * tileWidth) * hashSize;
  let logLeaf: Buffer;
  try {
    logLeaf = (await client.tile(0, tileIndex, Math.min(tileWidth, size - tileIndex * tileWidth))).subarray(offset, offset + hashSize);
  } catch (fetchError) {
    if (!(fetchError instanceof LogFetchError)) throw fetchError;
    return new Failure(`the proof for event ${seq} does not include the bytes of ${event.file}: either the file is not event ${seq}'s canonical bytes or the proof is wrong, and the log's leaf hash that would tell which could not be fetched (${fetchError.message})`);
  }
  try {
    verifyTlogProof(text, logLeaf, verifier);
  } catch {
    return proofFails;
  }
  const fileLeaf = Buffer.from(leafHash(event.bytes)).toString('hex');
  return new Failure(`the event file ${event.file} is not event ${seq}'s canonical bytes: their leaf hash is ${fileLeaf}, but entry ${seq} of the checkpoint of size ${size} is ${logLeaf.toString('hex')}, and the log's proof of that entry verifies; give ${eventFileFormats}`);
}

export async function proveCommand(seqText: string, options: KeyOptions & ServerOptions & { out?: string; eventFile?: string }, deps: LogCommandDeps = defaultDeps): Promise<number> {
  return guard(async () => {
    const seq = wholeNumber(seqText, 'EVENT_SEQ', undefined)!;
    const verifier = await verifierOf(options);
    const client = clientOf(options, deps);
    const text = await client.eventProof(seq);
    const event = await eventBytes(client, seq, text, options.eventFile);
    // The checkpoint is opened as verify, monitor and witness open theirs: the key list is
    // read even when the key given signs it, for a key the log retired (perhaps because it
    // leaked) speaks for nothing past its successor's announcement, and a proof is evidence.
    const opened = await openFollowingRotation(client, checkpointNoteOf(seq, text), verifier);
    if ('failure' in opened) {
      const unsettled = opened.failure.kind === 'fetch';
      throw new Failure(`the proof for event ${seq} ${unsettled ? 'could not be checked' : 'does not verify'}: [${opened.failure.kind}] ${opened.failure.message}`);
    }
    let verified;
    try {
      verified = verifyTlogProof(text, leafHash(event.bytes), opened.verifier);
    } catch (error) {
      throw await proofFailure(client, seq, text, opened.verifier, event, error as Error);
    }
    if (verified.index !== seq) throw new Failure(`the server answered a proof for entry ${verified.index}, not event ${seq}`);
    const summary = `ok: event ${seq} is entry ${seq} of ${verified.checkpoint.origin} at size ${verified.checkpoint.size} (root ${verified.checkpoint.rootHash.toString('hex')}); the proof verifies offline with the log key${keysFollowed(opened.rotations)}`;
    if (options.out) {
      try {
        await writeFile(options.out, text);
      } catch (error) {
        throw new Failure(`couldn't save the proof to ${resolve(options.out)}: ${(error as Error).message}`);
      }
      deps.output.out(`${summary}; saved to ${options.out}`);
    } else {
      // Lines of the note that no key given here verifies (another key's signature) are the server's
      // to write: printed raw, a control or bidi character in one would reach the terminal. They
      // are not made printable either: stdout is saved as the proof, and changed bytes would break it.
      if (text.split('\n').some((line) => printable(line) !== line)) throw new Failure(`the proof for event ${seq} verifies, but holds characters a terminal would act on (in a signature line by a key not given here); save it with --out FILE instead of printing it`);
      deps.output.out(text.trimEnd());
      deps.output.err(summary);
    }
    return 0;
  });
}

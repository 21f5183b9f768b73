/**
 * The published-checkpoint file itself (the guard's rules: published-checkpoint.ts): its name
 * and bound, reading it at start, replacing it, and believing a checkpoint note (the file's, or
 * a checkpoint row another process wrote) only once it verifies with a key of this log. Every
 * refusal here names the file and how to go on deliberately (howToGoOn).
 */
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { limits } from '../core/limits.ts';
import { decodeVerifierKey, isValidKeyName, openCheckpoint, parseCheckpoint, parseNote, parseSignerKey, parseVerifierKey, type Ed25519NoteVerifier } from '../tlog/index.ts';
import { Failure, printable } from './output.ts';
import { replaceFile } from './replace-file.ts';

export const publishedCheckpointFileName = 'published-checkpoint';

/** How the file is replaced with a note: replaceFile; a test's may fail as a full disk would. */
export type NoteWriter = (file: string, note: string) => Promise<void>;

export const replaceNote: NoteWriter = (file, note) => replaceFile(file, note, { mode: 0o644, folderSync: 'required' });

/** A checkpoint as recorded: the signed note and what it signs. */
export interface Published {
  size: number;
  root: Buffer;
  note: string;
}

/** How to go on deliberately, said by every refusal. */
export function howToGoOn(file: string): string {
  return `if you mean to serve this database anyway (monitors and witnesses of the log will see it go back or fork), move ${file} away (keep it: it records what was published) and start again`;
}

/**
 * A failed write's error, said without the paths Node quotes in it: the temporary file's name
 * is random at each write (replace-file.ts), and with it every failure of an outage would be a
 * reason of its own, said each time. The file is named by the message around it.
 */
export function fileErrorReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/ '[^']*'( -> '[^']*')?/g, '');
}

/**
 * A checkpoint row another process wrote, believed only when its note verifies with a key of
 * this log and says the size and root of its row: a row a database user wrote by hand is never
 * recorded (the file would then refuse the database's real log at the next start).
 */
export function openSeen(row: { size: number; root: Buffer; signed_note: string }, verifierKeys: readonly string[]): Published {
  const keys = [...new Set(verifierKeys)];
  const opened = openByAnyKey(row.signed_note, keys);
  if (typeof opened !== 'string' && opened.size === row.size && opened.root.equals(row.root)) return opened;
  throw new Error(`the database's newest checkpoint, of size ${row.size}, is not a checkpoint of that size signed by a key of this log (${keys.join(', ')}): it was written or changed by hand, so it is not recorded; run chipledger check`);
}

/**
 * The file's text, or undefined when there is none; anything else that stops reading it is a
 * refusal. Opened non-blocking: a FIFO put in its place would otherwise hang the start (it is
 * then refused as not a file).
 */
export async function readPublishedFile(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Failure(`couldn't read ${file}, the newest checkpoint this server published: ${(error as Error).message}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Failure(`${file}, where this server records the newest checkpoint it published, is not a file; ${howToGoOn(file)}`);
    if (stat.size > limits.publishedCheckpointBytesMax) throw new Failure(`${file} is longer than ${limits.publishedCheckpointBytesMax} bytes, so it is not the checkpoint this server recorded; ${howToGoOn(file)}`);
    return await readFile(handle, 'utf8');
  } finally {
    await handle.close();
  }
}

/** Longest origin compared with the database's: a key name, as every log origin here is, is far shorter. */
const originLengthMax = 255;

/**
 * Refuses a recorded checkpoint of another log than the database's: a data dir of another
 * deployment (the demo's, left as the default while following the production steps), or a
 * database of another one. Its sizes say nothing about this database, so it is said as what
 * it is, not as a database that went back. Compared before any signature is checked: the
 * other log's checkpoint is signed by a key this server does not hold, and a note changed by
 * hand to name another origin is refused either way. `logKey`: the database's newest log key
 * (a verifier key), or, on a database that records none yet, the caller's first key (a signer
 * key: serve's, which will sign it); its name is the log's origin. A note that does not parse
 * is openPublished's to refuse.
 */
export function refuseAnotherLog(file: string, note: string, logKey: string | undefined): void {
  let origin: string;
  let logOrigin: string;
  try {
    origin = parseCheckpoint(parseNote(note).text).origin;
    if (logKey === undefined) return;
    logOrigin = logKey.startsWith('PRIVATE+KEY+') ? parseSignerKey(logKey).name : decodeVerifierKey(logKey).name;
  } catch {
    // A malformed key recorded in the database is the ledger's start-up check's to name.
    return;
  }
  if (origin === logOrigin || origin.length > originLengthMax || !isValidKeyName(origin)) return;
  throw new Failure(`${file} holds a checkpoint of another log (origin ${printable(origin)}; this database's log is ${logOrigin}): the data dir is another deployment's (the demo's, say), or the database is; set CHIPLEDGER_DATA_DIR to the folder of this database's own server, or, ${howToGoOn(file)}`);
}

/** The recorded note, opened with the first of `verifierKeys` that signed it; a refusal when none did. */
export function openPublished(file: string, note: string, verifierKeys: readonly string[]): Published {
  const keys = [...new Set(verifierKeys)];
  const opened = openByAnyKey(note, keys);
  if (typeof opened !== 'string') return opened;
  throw new Failure(`${file} should hold the newest checkpoint this server published, but it is not a checkpoint signed by a key of this log (${keys.join(', ')}): ${opened}; it was changed, or comes from another log, so the database cannot be checked against it; put back the file this server wrote, or, ${howToGoOn(file)}`);
}

/**
 * `note` opened as a checkpoint with the first of `keys` that signed it, or why none did (the
 * first key's reason: the server's own, when it has one). A malformed key recorded in the
 * database is skipped: the ledger's start-up check names it.
 */
function openByAnyKey(note: string, keys: readonly string[]): Published | string {
  let why = 'no log key is known';
  for (const key of keys) {
    let verifier: Ed25519NoteVerifier;
    try {
      verifier = parseVerifierKey(key);
    } catch {
      continue;
    }
    try {
      const { checkpoint } = openCheckpoint(note, verifier);
      return { size: checkpoint.size, root: checkpoint.rootHash, note };
    } catch (error) {
      if (key === keys[0]) why = (error as Error).message;
    }
  }
  return why;
}

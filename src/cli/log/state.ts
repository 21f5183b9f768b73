/**
 * The checkpoint a verifier, monitor or witness saw last, kept in a small JSON file between
 * runs: the next run must find the log consistent with it. Written to a temporary file,
 * flushed to disk, and renamed (the folder flushed too), so a crash mid-write leaves the old
 * state, never half of a new one, and a state a witness saved before it cosigned is still
 * there after a power loss.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatVerifierKey, openCheckpoint, parseVerifierKey, type Checkpoint, type Ed25519NoteVerifier, type NoteVerifier } from '../../tlog/index.ts';
import { Failure } from '../output.ts';

/** A checkpoint as remembered: the tree head and the signed note it came in. */
export interface SavedCheckpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  /** The signed note as served; evidence if the log later contradicts it. */
  readonly note: string;
  /**
   * The log key that signed it (name+hexid+base64). The next run starts from this key, never
   * from an earlier one: once a rotation was followed, the retired key is not believed
   * again. Absent in state files of earlier versions.
   */
  readonly verifierKey?: string;
}

interface StateFile {
  version: 1;
  origin: string;
  size: number;
  rootHash: string;
  checkpoint: string;
  verifierKey?: string;
  savedAt: string;
}

/** Largest state file read: one checkpoint note with cosignatures. */
const stateBytesMax = 1024 * 1024;

/** A verifier key as text (name+hexid+base64), as state files record it. */
export function verifierKeyText(key: Ed25519NoteVerifier): string {
  return formatVerifierKey(key.name, key.publicKey);
}

export function savedFrom(checkpoint: Checkpoint, note: string, signedBy?: Ed25519NoteVerifier): SavedCheckpoint {
  return { origin: checkpoint.origin, size: checkpoint.size, rootHash: checkpoint.rootHash, note, ...(signedBy ? { verifierKey: verifierKeyText(signedBy) } : {}) };
}

/** The key the state records as the saved checkpoint's signer; undefined when it records none (or one that does not parse). */
export function recordedKey(saved: SavedCheckpoint | undefined): Ed25519NoteVerifier | undefined {
  if (saved?.verifierKey === undefined) return undefined;
  try {
    return parseVerifierKey(saved.verifierKey);
  } catch {
    return undefined;
  }
}

/** The saved checkpoint, or undefined when the file does not exist yet (first run). */
export async function readState(path: string): Promise<SavedCheckpoint | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Failure(`couldn't read the state file ${path}: ${(error as Error).message}`);
  }
  if (text.length > stateBytesMax) throw new Failure(`the state file ${path} is larger than ${stateBytesMax} bytes; it is not one of ours`);
  let parsed: Partial<StateFile>;
  try {
    parsed = JSON.parse(text) as Partial<StateFile>;
  } catch (error) {
    throw new Failure(`the state file ${path} is not JSON: ${(error as Error).message}`);
  }
  const rootHash = typeof parsed.rootHash === 'string' ? Buffer.from(parsed.rootHash, 'base64') : Buffer.alloc(0);
  const valid = parsed.version === 1 && typeof parsed.origin === 'string' && Number.isSafeInteger(parsed.size) && (parsed.size ?? -1) >= 0
    && rootHash.length === 32 && typeof parsed.checkpoint === 'string' && (parsed.verifierKey === undefined || typeof parsed.verifierKey === 'string');
  if (!valid) throw new Failure(`the state file ${path} is not a saved checkpoint (version 1 with origin, size, rootHash, checkpoint)`);
  return { origin: parsed.origin!, size: parsed.size!, rootHash, note: parsed.checkpoint!, ...(parsed.verifierKey === undefined ? {} : { verifierKey: parsed.verifierKey }) };
}

export async function writeState(path: string, saved: SavedCheckpoint, now: Date = new Date()): Promise<void> {
  const file: StateFile = {
    version: 1,
    origin: saved.origin,
    size: saved.size,
    rootHash: saved.rootHash.toString('base64'),
    checkpoint: saved.note,
    ...(saved.verifierKey === undefined ? {} : { verifierKey: saved.verifierKey }),
    savedAt: now.toISOString(),
  };
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    // Crash here: the temporary file may be partial; the state file is untouched.
    const handle = await open(temporary, 'w', 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`);
      // Without this, a rename can reach the disk before the data does: a power loss would
      // leave an empty state file, and a witness would forget what it already cosigned.
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await syncFolder(dirname(path));
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    // An operating error (a missing folder, no permission, a full disk): said, not a stack.
    throw new Failure(`couldn't save the checkpoint to the state file ${path}: ${(error as Error).message}`);
  }
}

/** Makes a rename in `folder` durable; where a folder cannot be opened for that (Windows), the rename stands as is. */
async function syncFolder(folder: string): Promise<void> {
  let handle;
  try {
    handle = await open(folder, 'r');
  } catch {
    return;
  }
  try {
    await handle.sync().catch(() => {});
  } finally {
    await handle.close();
  }
}

/** Refuses a state file saved for another log: comparing its sizes and roots with this log's would raise false alarms. */
export function assertStateOfLog(path: string, saved: SavedCheckpoint | undefined, origin: string): void {
  if (saved === undefined || saved.origin === origin) return;
  throw new Failure(
    `the state file ${path} holds a checkpoint of the log ${JSON.stringify(saved.origin)}, not of ${JSON.stringify(origin)} (the log of the verifier key given); `
    + 'give this log its own state file (a new path starts afresh)',
    2,
  );
}

/**
 * Whether the saved note is a checkpoint of this size and root signed by the log key: then
 * a contradiction with it is proof against the log, not only against our file.
 */
export function savedNoteIsSigned(saved: SavedCheckpoint, verifier: NoteVerifier): boolean {
  try {
    const { checkpoint } = openCheckpoint(saved.note, verifier);
    return checkpoint.size === saved.size && checkpoint.rootHash.equals(saved.rootHash);
  } catch {
    return false;
  }
}

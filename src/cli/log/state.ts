/**
 * The checkpoint a verifier, monitor or witness saw last, kept in a small JSON file between
 * runs: the next run must find the log consistent with it. Written to a temporary file,
 * flushed to disk, and renamed (the folder flushed too), so a crash mid-write leaves the old
 * state, never half of a new one, and a state a witness saved before it cosigned is still
 * there after a power loss.
 *
 * The file keeps its mode (a new one gets stateFileModeNew), and a state path that is a
 * symbolic link is written through to the file it links to: a deployment that links the
 * state onto a persistent volume, or a cron job that reads the link's target, must see each
 * new checkpoint there, not find the link replaced by a file beside it.
 *
 * Whoever can write the state chooses the checkpoint the next run holds the log to (for a
 * witness, one before a fork it would then cosign), and the run writes where the path leads.
 * So a state file that another account owns or that its group or others can write, or the
 * folder of a new one that is so, is refused (exit 2), as key files are; and the file a run
 * writes is fixed when it starts: a link swapped in for it during a long `log monitor` run is
 * refused at the next save, not written through to whatever it points at.
 */
import type { Stats } from 'node:fs';
import { access, constants, lstat, open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { formatVerifierKey, openCheckpoint, parseVerifierKey, type Checkpoint, type Ed25519NoteVerifier, type NoteVerifier } from '../../tlog/index.ts';
import { Failure } from '../output.ts';
import { replaceFile } from '../replace-file.ts';

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

/**
 * A signed head a monitor read but could not settle (the log withheld the proof that it
 * extends the others): kept between runs, so that a bounded run (cron) holds the next runs
 * to it as one long run holds its later rounds.
 */
export interface PendingHead {
  readonly size: number;
  readonly rootHash: Buffer;
  /** The signed note as served: the evidence, should it prove a fork. */
  readonly note: string;
}

/** What a monitor's rounds left open: the rounds unsettled since its state last moved, and the heads no proof has tied in yet. */
export interface UnsettledRounds {
  readonly rounds: number;
  readonly heads: readonly PendingHead[];
}

/** A monitor's state: the log's origin, its last consistent checkpoint (none before the first), and what is still open. */
export interface MonitorState {
  readonly origin: string;
  readonly saved: SavedCheckpoint | undefined;
  readonly unsettled: UnsettledRounds;
}

export const nothingUnsettled: UnsettledRounds = { rounds: 0, heads: [] };

/**
 * Version 1: the checkpoint alone, as every release has written it. Version 2 adds what a
 * monitor left open (`unsettled`), and may then hold no checkpoint yet (a first run whose
 * proofs were withheld). Version 2 is written only when something is open, so an earlier
 * release still reads every other state file, and refuses one that holds heads it would drop.
 */
interface StateFile {
  version: 1 | 2;
  origin: string;
  size?: number;
  rootHash?: string;
  checkpoint?: string;
  verifierKey?: string;
  unsettled?: { rounds: number; heads: Array<{ size: number; rootHash: string; checkpoint: string }> };
  savedAt: string;
}

/** Largest state file read: a checkpoint note and a monitor's few pending ones, with cosignatures. */
const stateBytesMax = 1024 * 1024;
/**
 * The mode of a new state file: its owner's only. A checkpoint is no secret, but whoever can
 * write the file can make the next run check the log against another checkpoint; as the key
 * files, it is the owner's. An existing file keeps its own mode.
 */
export const stateFileModeNew = 0o600;

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
  return (await readMonitorState(path))?.saved;
}

/** The saved checkpoint and what a monitor left open; undefined when the file does not exist yet (first run). */
export async function readMonitorState(path: string): Promise<MonitorState | undefined> {
  const text = await readStateText(path);
  if (text === undefined) return undefined;
  if (text.length > stateBytesMax) throw new Failure(`the state file ${path} is larger than ${stateBytesMax} bytes; it is not one of ours`);
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch (error) {
    throw new Failure(`the state file ${path} is not JSON: ${(error as Error).message}`);
  }
  // null, a number, a string or a list parse as JSON too, and hold no fields to read.
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Failure(`the state file ${path} is not a saved checkpoint (it holds ${json === null ? 'null' : Array.isArray(json) ? 'a list' : `a ${typeof json}`}, not an object with version 1, origin, size, rootHash, checkpoint)`);
  }
  const state = stateOfFile(json as Partial<StateFile>);
  if (state === undefined) throw new Failure(`the state file ${path} is not a saved checkpoint (version 1 with origin, size, rootHash, checkpoint, or version 2 with those or a monitor's unsettled heads)`);
  return state;
}

/**
 * The state file's text, undefined when there is none; read through one descriptor, so that
 * the owner and mode checked are the file read. Non-blocking: a FIFO named by mistake must
 * not hang the run.
 */
async function readStateText(path: string): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Failure(`couldn't read the state file ${resolve(path)}: ${(error as Error).message}`);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Failure(`couldn't read the state file ${resolve(path)}: it is not a regular file`);
    refuseOpenStateFile(resolve(path), info);
    if (info.size > stateBytesMax) throw new Failure(`the state file ${path} is larger than ${stateBytesMax} bytes; it is not one of ours`);
    return await handle.readFile('utf8');
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure(`couldn't read the state file ${resolve(path)}: ${(error as Error).message}`);
  } finally {
    await handle.close();
  }
}

/** The account a state must belong to; undefined where there are no uids (Windows), where nothing is checked. */
function ownUid(): number | undefined {
  return process.getuid?.();
}

/**
 * Refuses (exit 2) a state file that another account owns or that its group or others can
 * write: any of them could choose the checkpoint the log is held to. Said as readKeyFileChecked
 * says it of a key, with the command that mends it.
 */
function refuseOpenStateFile(file: string, info: Stats): void {
  const uid = ownUid();
  if (uid === undefined) return;
  if (info.uid !== uid) {
    throw new Failure(`the state file ${file} belongs to another account (uid ${info.uid}; this one is uid ${uid}), which could choose the checkpoint the log is held to; check what it holds, then run chown ${uid} ${file}`, 2);
  }
  if ((info.mode & 0o022) !== 0) {
    throw new Failure(`the state file ${file} can be written by its group or others (mode ${(info.mode & 0o777).toString(8)}), who could choose the checkpoint the log is held to; check what it holds, then run chmod go-w ${file}`, 2);
  }
}

/** Refuses (exit 2) the folder of a new state file when another account owns it or its group or others can write it: a link or a state of theirs could be put in the file's place. */
function refuseOpenStateFolder(folder: string, file: string, info: Stats): void {
  const uid = ownUid();
  if (uid === undefined) return;
  if (info.uid !== uid) {
    throw new Failure(`the folder ${folder} of the new state file ${file} belongs to another account (uid ${info.uid}; this one is uid ${uid}), which could put a link or a state of its own there; give --state a path in a folder of this account's`, 2);
  }
  if ((info.mode & 0o022) !== 0) {
    throw new Failure(`the folder ${folder} of the new state file ${file} can be written by its group or others (mode ${(info.mode & 0o7777).toString(8)}), who could put a link or a state of their own there; give --state a path in a folder only this account can write`, 2);
  }
}

/** A signed head as a state file records it (size, base64 root, note), or undefined when it is not one. */
function headOfFile(head: Partial<{ size: unknown; rootHash: unknown; checkpoint: unknown }>): PendingHead | undefined {
  const rootHash = typeof head.rootHash === 'string' ? Buffer.from(head.rootHash, 'base64') : Buffer.alloc(0);
  const size = head.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || rootHash.length !== 32 || typeof head.checkpoint !== 'string') return undefined;
  return { size, rootHash, note: head.checkpoint };
}

function stateOfFile(file: Partial<StateFile>): MonitorState | undefined {
  if ((file.version !== 1 && file.version !== 2) || typeof file.origin !== 'string') return undefined;
  if (file.verifierKey !== undefined && typeof file.verifierKey !== 'string') return undefined;
  // Version 2 may hold no checkpoint yet: then none of its fields.
  const noCheckpoint = file.version === 2 && file.size === undefined && file.rootHash === undefined && file.checkpoint === undefined && file.verifierKey === undefined;
  const head = noCheckpoint ? undefined : headOfFile(file);
  if (!noCheckpoint && head === undefined) return undefined;
  const saved = head === undefined ? undefined : { origin: file.origin, size: head.size, rootHash: head.rootHash, note: head.note, ...(file.verifierKey === undefined ? {} : { verifierKey: file.verifierKey }) };
  if (file.version === 1) return file.unsettled === undefined ? { origin: file.origin, saved, unsettled: nothingUnsettled } : undefined;
  const open = file.unsettled as Partial<{ rounds: unknown; heads: unknown }> | undefined;
  if (typeof open !== 'object' || open === null || !Number.isSafeInteger(open.rounds) || (open.rounds as number) < 0 || !Array.isArray(open.heads)) return undefined;
  const heads = (open.heads as unknown[]).map((held) => (typeof held === 'object' && held !== null ? headOfFile(held) : undefined));
  if (heads.some((held) => held === undefined)) return undefined;
  return { origin: file.origin, saved, unsettled: { rounds: open.rounds as number, heads: heads as PendingHead[] } };
}

/**
 * A verifier's or witness's save. What a monitor left open in the same file is kept: its
 * withheld heads are the evidence of a fork, and the next monitor run is held to them
 * (README: moving on does not make a fork forgotten, whichever command moves on).
 */
export async function writeState(path: string, saved: SavedCheckpoint, now: Date = new Date()): Promise<void> {
  const before = await readMonitorState(path).catch(() => undefined);
  const unsettled = before !== undefined && before.origin === saved.origin ? before.unsettled : nothingUnsettled;
  await writeMonitorState(path, { origin: saved.origin, saved, unsettled }, now);
}

/** A monitor's state: the checkpoint, and what its rounds left open (as version 2, only when something is). */
export async function writeMonitorState(path: string, state: MonitorState, now: Date = new Date()): Promise<void> {
  const { origin, saved, unsettled } = state;
  const open = unsettled.rounds > 0 || unsettled.heads.length > 0;
  if (saved === undefined && !open) throw new Error('assertion failed: a state file holds a checkpoint, or what a monitor left open');
  if (saved !== undefined && saved.origin !== origin) throw new Error('assertion failed: a state file is of one log');
  const file: StateFile = {
    version: open || saved === undefined ? 2 : 1,
    origin,
    ...(saved === undefined ? {} : { size: saved.size, rootHash: saved.rootHash.toString('base64'), checkpoint: saved.note }),
    ...(saved?.verifierKey === undefined ? {} : { verifierKey: saved.verifierKey }),
    ...(open ? { unsettled: { rounds: unsettled.rounds, heads: unsettled.heads.map((head) => ({ size: head.size, rootHash: head.rootHash.toString('base64'), checkpoint: head.note })) } } : {}),
    savedAt: now.toISOString(),
  };
  let target: StateTarget;
  let keeps: { mode: number; gid?: number };
  try {
    target = pinned.get(resolve(path)) ?? (await pinTarget(path));
    keeps = await assertSameTarget(path, target);
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure(`couldn't save the checkpoint to the state file ${resolve(path)}: ${(error as Error).message}`);
  }
  let written: FileIdentity | undefined;
  try {
    await replaceFile(target.path, `${JSON.stringify(file, null, 2)}\n`, {
      mode: keeps.mode,
      folderSync: 'where-possible',
      prepare: async (handle) => {
        // open's mode is narrowed by the umask; the file's own mode is kept as it was.
        await handle.chmod(keeps.mode);
        // The new file stands in for the old one: it keeps its group too (a folder's setgid
        // group, shared with the accounts that read the state). Where we may not, the save
        // fails and the old state stays.
        const uid = ownUid();
        if (uid !== undefined && keeps.gid !== undefined && keeps.gid !== process.getgid?.()) await handle.chown(uid, keeps.gid);
        written = identityOf(await handle.stat());
      },
    });
    target.identity = written;
  } catch (error) {
    // Renamed into place before the failure (its folder's fsync failed): the file there is ours.
    const there = await lstat(target.path).catch(() => undefined);
    if (there !== undefined && written !== undefined && sameFile(identityOf(there), written)) target.identity = written;
    // An operating error (a missing folder, no permission, a full disk): said, not a stack.
    throw new Failure(`couldn't save the checkpoint to the state file ${resolve(path)}: ${(error as Error).message}`);
  }
}

/** A file as the file system knows it, whatever its name. */
interface FileIdentity {
  dev: number;
  ino: number;
}

function identityOf(info: Stats): FileIdentity {
  return { dev: info.dev, ino: info.ino };
}

function sameFile(one: FileIdentity, other: FileIdentity): boolean {
  return one.dev === other.dev && one.ino === other.ino;
}

/** Where a run's state is written: the file itself (a link's target). */
interface StateTarget {
  /** Its real path: every link on the way resolved, once. */
  path: string;
  /**
   * The file there: the one found when the run started, then the one each save renamed into
   * place. None while there is no file.
   */
  identity: FileIdentity | undefined;
}

/**
 * The file each state path leads to, fixed at the run's start (assertStateWritable) or at its
 * first save, by the path as given (resolved against the working folder). A save writes only
 * there, and only while the path still leads to that file.
 */
const pinned = new Map<string, StateTarget>();

async function pinTarget(path: string): Promise<StateTarget> {
  const target = await stateTarget(path);
  pinned.set(resolve(path), target);
  return target;
}

/** Where `path` leads now: the real path of the file, and the file there (never a link); a new file's real folder and name, and no file. */
async function locate(path: string): Promise<{ path: string; file: Stats | undefined }> {
  try {
    const target = await realpath(path);
    return { path: target, file: await lstat(target) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const link = await lstat(path).catch(() => undefined);
  if (link?.isSymbolicLink()) throw new Error(`it is a symbolic link to ${resolve(dirname(path), await readlink(path))}, which does not exist; create that file's folder and give --state the file itself, or remove the link`);
  const folder = dirname(path);
  const realFolder = await realpath(folder).catch((cause: NodeJS.ErrnoException) => {
    throw new Error(cause.code === 'ENOENT' ? `its folder ${folder} does not exist` : cause.message);
  });
  return { path: join(realFolder, basename(path)), file: undefined };
}

/**
 * The file a save replaces: the path itself, or the file a symbolic link at it points to
 * (through any chain of links), with its mode; a new file's folder must exist. A link to
 * nowhere is refused rather than replaced: it says where the state should be, and a file
 * put in its place would be a state nobody reads. A file, or a new file's folder, open to
 * other accounts is refused (exit 2).
 */
async function stateTarget(path: string): Promise<StateTarget> {
  const found = await locate(path);
  const folder = dirname(found.path);
  if (found.file === undefined) {
    // A new file: its folder must be one we may write in, and no other account.
    const info = await stat(folder);
    if (!info.isDirectory()) throw new Error(`${dirname(path)} is not a folder`);
    refuseOpenStateFolder(folder, resolve(path), info);
    await access(folder, constants.W_OK).catch(() => {
      throw new Error(`its folder ${dirname(path)} is not writable`);
    });
    return { path: found.path, identity: undefined };
  }
  if (!found.file.isFile()) throw new Error(`${found.path === resolve(path) ? 'it' : found.path} is not a regular file`);
  refuseOpenStateFile(found.path, found.file);
  await access(folder, constants.W_OK).catch(() => {
    throw new Error(`its folder ${folder} is not writable (the file is replaced by a new one written beside it)`);
  });
  return { path: found.path, identity: identityOf(found.file) };
}

/**
 * Refuses a save once the path leads elsewhere than when the run started (a link swapped in
 * for the file, or for a folder on the way), or the file there is another than the one the
 * run found or last wrote. A file removed meanwhile is written afresh: a rename puts a new
 * one there and writes into no one's file. The mode and group the new file keeps: the file's
 * as it is now (its owner may have changed them since the start).
 */
async function assertSameTarget(path: string, target: StateTarget): Promise<{ mode: number; gid?: number }> {
  const now = await locate(path);
  const fix = `nothing was saved; see who else can write ${dirname(target.path)}, and run again`;
  if (now.path !== target.path) throw new Error(`it now leads to ${now.path}, not to ${target.path} as when this run started (replaced during the run); ${fix}`);
  if (now.file === undefined) return { mode: stateFileModeNew };
  if (target.identity === undefined || !sameFile(identityOf(now.file), target.identity)) {
    throw new Error(`${target.path} is not the file this run ${target.identity === undefined ? 'found absent' : 'read and last wrote'}: another was put there during the run; ${fix}`);
  }
  refuseOpenStateFile(target.path, now.file);
  return { mode: now.file.mode & 0o777, gid: now.file.gid };
}

/**
 * Checks, before a run spends its time on the log, that its state can be saved at `path`
 * (a missing folder, a link to nowhere, a folder we may not write in, a file or folder open to
 * other accounts), and fixes the file its saves replace: a verification of a big log takes
 * hours, and its result must not be lost at the end, nor written elsewhere.
 */
export async function assertStateWritable(path: string): Promise<void> {
  try {
    await pinTarget(path);
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure(`couldn't save a checkpoint to the state file ${resolve(path)}: ${(error as Error).message}; nothing was checked`);
  }
}

/** Refuses a state file saved for another log: comparing its sizes and roots with this log's would raise false alarms. */
export function assertStateOfLog(path: string, saved: Pick<SavedCheckpoint, 'origin'> | undefined, origin: string): void {
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

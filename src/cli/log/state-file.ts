/**
 * Where a verifier's, monitor's or witness's state file is written, and who may write it
 * (what it holds is state.ts). Whoever can write the state chooses the checkpoint the next
 * run holds the log to (for a witness, one before a fork it would then cosign), and the run
 * writes where the path leads. So:
 *
 * - A run's file is fixed when it starts: a link swapped in for it during a long
 *   `log monitor` run is refused at the next save, not written through to whatever it
 *   points at.
 * - A state file that another account owns or that its group or others can write, or the
 *   folder of a new one that is so, is refused (exit 2), as key files are.
 * - It is written atomically: to a temporary file, flushed to disk, and renamed (the folder
 *   flushed too), so a crash mid-write leaves the old state, never half of a new one, and a
 *   state a witness saved before it cosigned is still there after a power loss.
 *
 * The file keeps its mode (a new one gets stateFileModeNew), and a state path that is a
 * symbolic link is written through to the file it links to: a deployment that links the
 * state onto a persistent volume, or a cron job that reads the link's target, must see each
 * new checkpoint there, not find the link replaced by a file beside it.
 */
import type { Stats } from 'node:fs';
import { access, constants, lstat, open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { limits } from '../../core/limits.ts';
import { Failure } from '../output.ts';
import { replaceFile } from '../replace-file.ts';
import { othersAccess, ownUid } from '../file-access.ts';

/**
 * The mode of a new state file: its owner's only. A checkpoint is no secret, but whoever can
 * write the file can make the next run check the log against another checkpoint; as the key
 * files, it is the owner's. An existing file keeps its own mode.
 */
export const stateFileModeNew = 0o600;

/**
 * The state file's text, undefined when there is none; read through one descriptor, so that
 * the owner and mode checked are the file read. Non-blocking: a FIFO named by mistake must
 * not hang the run.
 */
export async function readStateText(path: string): Promise<string | undefined> {
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
    if (info.size > limits.stateBytesMax) throw new Failure(`the state file ${path} is larger than ${limits.stateBytesMax} bytes; it is not one of ours`);
    return await handle.readFile('utf8');
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure(`couldn't read the state file ${resolve(path)}: ${(error as Error).message}`);
  } finally {
    await handle.close();
  }
}

/**
 * Refuses (exit 2) a state file that another account owns or that its group or others can
 * write: any of them could choose the checkpoint the log is held to. Said as readKeyFileChecked
 * says it of a key, with the command that mends it.
 */
function refuseOpenStateFile(file: string, info: Stats): void {
  const others = othersAccess(info);
  if (others === undefined) return;
  if (others.foreign) {
    throw new Failure(`the state file ${file} belongs to another account (uid ${info.uid}; this one is uid ${others.ownUid}), which could choose the checkpoint the log is held to; check what it holds, then run chown ${others.ownUid} ${file}`, 2);
  }
  if (others.writable) {
    throw new Failure(`the state file ${file} can be written by its group or others (mode ${(info.mode & 0o777).toString(8)}), who could choose the checkpoint the log is held to; check what it holds, then run chmod go-w ${file}`, 2);
  }
}

/** Refuses (exit 2) the folder of a new state file when another account owns it or its group or others can write it: a link or a state of theirs could be put in the file's place. */
function refuseOpenStateFolder(folder: string, file: string, info: Stats): void {
  const others = othersAccess(info);
  if (others === undefined) return;
  if (others.foreign) {
    throw new Failure(`the folder ${folder} of the new state file ${file} belongs to another account (uid ${info.uid}; this one is uid ${others.ownUid}), which could put a link or a state of its own there; give --state a path in a folder of this account's`, 2);
  }
  if (others.writable) {
    throw new Failure(`the folder ${folder} of the new state file ${file} can be written by its group or others (mode ${(info.mode & 0o7777).toString(8)}), who could put a link or a state of their own there; give --state a path in a folder only this account can write`, 2);
  }
}

/** Replaces the state file at `path` with `text`, only while the path leads to the file this run fixed (assertSameTarget). */
export async function writeStateText(path: string, text: string): Promise<void> {
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
    await replaceFile(target.path, text, {
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

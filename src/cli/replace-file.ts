/**
 * A file replaced whole and durably, for the files the CLI keeps between runs (a verifier's
 * state, a server's published checkpoint): written under a temporary name of this process,
 * fsynced, renamed over the old one, then its folder fsynced. A crash at any step leaves the
 * old file or the new one, never a part; without the fsync before the rename, a power loss
 * could leave an empty file where the old one stood.
 *
 * The temporary file is made new (O_EXCL) under a name no one can guess: whoever may write
 * the folder could otherwise put a link there under the name first, and the file it points
 * to (any file the running account may write, /etc/passwd for root) would be truncated,
 * rewritten and renamed into place as the link.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { removeStaleTemporaries } from './stale-temporaries.ts';

export interface ReplaceOptions {
  /** The new file's mode (open's is narrowed by the umask: prepare may set it whole). */
  mode: number;
  /** Run on the new file before its contents are written (its mode or owner kept as the old one's). */
  prepare?: (handle: FileHandle) => Promise<void>;
  /**
   * 'required': a folder that cannot be fsynced fails the write (the rename may not be on
   * disk). 'where-possible': where the system cannot open or fsync a folder at all (Windows,
   * some file systems: cannotSyncFolder) the rename is left as it is; a disk that fails the
   * fsync (EIO) fails the write all the same.
   */
  folderSync: 'required' | 'where-possible';
}

/** Random bytes in a temporary file's name: 2^48 names, not to be guessed or met by chance. */
const temporarySuffixBytes = 6;

/** Replaces `path` with `text` (the rules above); on a failure the temporary file is removed and the old file stands. */
export async function replaceFile(path: string, text: string, options: ReplaceOptions): Promise<void> {
  // Of this write alone: two writers of one file must not write into each other's, and a name
  // planted in advance is refused by 'wx' (it is never followed, nor removed: it is not ours).
  removeStaleTemporaries(dirname(path), basename(path));
  const temporary = `${path}.${process.pid}.${randomBytes(temporarySuffixBytes).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', options.mode);
  try {
    try {
      await options.prepare?.(handle);
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    // Crash here: the new file is on disk beside the old one, which still stands.
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    throw error;
  }
  await syncFolder(dirname(path), options.folderSync);
}

/**
 * Codes by which a system says it cannot fsync a folder at all, rather than that this fsync
 * failed: opening one (Windows refuses, EISDIR or EPERM; a folder the account may write but
 * not read, EACCES), or fsyncing one (file systems and shares without it: EINVAL, ENOTSUP,
 * EOPNOTSUPP, EBADF; Windows, EPERM). Any other, EIO above all, means the disk may have lost
 * what was just named, and is not to be passed over.
 */
const folderSyncUnsupportedCodes = {
  open: new Set(['EISDIR', 'EPERM', 'EACCES']),
  fsync: new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EBADF', 'EPERM']),
} as const;

/** Whether `error`, from opening a folder or fsyncing it, says the system cannot fsync a folder here (the codes above). */
export function cannotSyncFolder(step: keyof typeof folderSyncUnsupportedCodes, error: unknown): boolean {
  return folderSyncUnsupportedCodes[step].has((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}

/** Makes a rename in `folder` durable. */
async function syncFolder(folder: string, mode: ReplaceOptions['folderSync']): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(folder, 'r');
  } catch (error) {
    if (mode === 'required' || !cannotSyncFolder('open', error)) throw error;
    return;
  }
  try {
    await handle.sync();
  } catch (error) {
    if (mode === 'required' || !cannotSyncFolder('fsync', error)) throw error;
  } finally {
    await handle.close();
  }
}

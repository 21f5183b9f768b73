/**
 * Where the transparency log's signing key comes from. It is never made silently: a
 * production server needs CHIPLEDGER_LOG_KEY_FILE (made by `chipledger log keygen`) or
 * CHIPLEDGER_LOG_SIGNER_KEY; only --demo keeps a demo key of its own, and says so.
 *
 * serve reads and checks these settings first (readLogKeys), before it touches the port, the
 * data folder or PostgreSQL: a missing key, or a key file that is absent, unreadable, readable
 * by others or not a key, is a configuration problem (exit 2), listed with the others found.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, fchmodSync, fstatSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { limits } from '../core/limits.ts';
import { generateSignerKey, parseSignerKey } from '../tlog/index.ts';
import type { Config } from './config.ts';
import { makeFolders, writingInDataDir } from './data-dir.ts';
import { Failure, type Output } from './output.ts';
import { cannotSyncFolder } from './replace-file.ts';
import { removeStaleTemporaries } from './stale-temporaries.ts';

/** The demo log's origin (and key name). */
export const demoLogOrigin = 'demo.chipledger.local/log';

/** The keys serve signs with, read and checked before anything is started or created. */
export interface LogKeys {
  /** 'demo': serve --demo uses the key it keeps in the data folder, made the first time (demoSignerKey). */
  signer: { kind: 'configured'; signerKey: string } | { kind: 'demo' };
  previousSignerKey: string | undefined;
}

export type LogKeysResult = { ok: true; keys: LogKeys } | { ok: false; problems: string[] };

/** serve's log key settings, read and checked; every problem is listed, each naming its setting. Nothing is created. */
export function readLogKeys(config: Config, demo: boolean): LogKeysResult {
  const problems: string[] = [];
  const fromFile = (variable: string, file: string): string | undefined => {
    const read = readKeyFileChecked(file);
    if (read.ok) return read.signerKey;
    problems.push(`${variable}: ${read.problem}`);
    return undefined;
  };
  let signer: LogKeys['signer'] | undefined;
  if (config.log.signerKey !== undefined) {
    signer = { kind: 'configured', signerKey: config.log.signerKey };
  } else if (config.log.keyFile !== undefined) {
    const signerKey = fromFile('CHIPLEDGER_LOG_KEY_FILE', config.log.keyFile);
    if (signerKey !== undefined) signer = { kind: 'configured', signerKey };
  } else if (demo) {
    signer = { kind: 'demo' };
  } else {
    problems.push('no transparency-log signing key: set CHIPLEDGER_LOG_KEY_FILE (make one with `chipledger log keygen --origin YOUR.ORIGIN/log --out FILE`) or CHIPLEDGER_LOG_SIGNER_KEY');
  }
  const previousSignerKey = config.log.previousKeyFile === undefined ? undefined : fromFile('CHIPLEDGER_LOG_PREVIOUS_KEY_FILE', config.log.previousKeyFile);
  if (problems.length > 0 || signer === undefined) return { ok: false, problems };
  return { ok: true, keys: { signer, previousSignerKey } };
}

/** The demo's key in the data folder, made (and said so) the first time. */
/** The demo's log signing key, in the data dir (serve --demo makes it). */
export const demoKeyFileName = 'demo-log-signer.key';

export function demoSignerKey(config: Config, output: Output): string {
  const file = join(config.dataDir, demoKeyFileName);
  if (!existsSync(file)) {
    const key = generateSignerKey(demoLogOrigin);
    const made = writingInDataDir(config.dataDir, () => {
      makeFolders(config.dataDir);
      try {
        createKeyFile(file, key.signerKey);
        return true;
      } catch (error) {
        // Another start on this data dir made it first (the lock is taken only later): its key is the one.
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw error;
      }
    });
    if (made) output.err(`chipledger: made a DEMO log signing key in ${file} (verifier key ${key.verifierKey}); a real deployment sets CHIPLEDGER_LOG_KEY_FILE`);
  }
  return readKeyFile(file);
}

/** Reads a signer key file, refusing one that others can read. */
export function readKeyFile(file: string): string {
  const read = readKeyFileChecked(file);
  if (!read.ok) throw new Failure(read.problem);
  return read.signerKey;
}

/** What a key file holds, for readKeyFileChecked: what its problems call it, and how its text is checked. */
export interface KeyFileKind {
  /** The key as a problem names it: "the log signing key". */
  readonly what: string;
  /** What the file must hold: "a C2SP Ed25519 signer key". */
  readonly holds: string;
  /** Throws, saying why, when the text is not such a key. */
  check(text: string): void;
}

/** serve's log signing keys (CHIPLEDGER_LOG_KEY_FILE, CHIPLEDGER_LOG_PREVIOUS_KEY_FILE). */
export const logSigningKeyFile: KeyFileKind = { what: 'the log signing key', holds: 'a C2SP Ed25519 signer key', check: (text) => void parseSignerKey(text) };

/**
 * A signer key file's key, or what is wrong with it: absent or unreadable, not a file, readable
 * (or writable) by group or others, too long, or not a key of its kind. Checked through one
 * descriptor, so the mode checked is the file read.
 */
export function readKeyFileChecked(file: string, kind: KeyFileKind = logSigningKeyFile): { ok: true; signerKey: string } | { ok: false; problem: string } {
  let fd: number;
  try {
    // Non-blocking: opening a FIFO named by mistake must not hang serve's start.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return { ok: false, problem: `couldn't read ${kind.what} ${resolve(file)}: ${(error as Error).message}` };
  }
  let text: string;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { ok: false, problem: `${kind.what} ${file} is not a file` };
    if ((stat.mode & 0o077) !== 0) return { ok: false, problem: `${kind.what} ${resolve(file)} is open to its group or others (mode ${(stat.mode & 0o777).toString(8)}); run chmod 600 ${resolve(file)}` };
    if (stat.size > limits.keyFileBytesMax) return { ok: false, problem: `${kind.what} ${file} is longer than ${limits.keyFileBytesMax} bytes: it is not ${kind.holds}` };
    text = readFileSync(fd, 'utf8').trim();
  } catch (error) {
    return { ok: false, problem: `couldn't read ${kind.what} ${resolve(file)}: ${(error as Error).message}` };
  } finally {
    closeSync(fd);
  }
  try {
    kind.check(text);
  } catch (error) {
    return { ok: false, problem: `${file} does not hold ${kind.holds}: ${(error as Error).message}` };
  }
  return { ok: true, signerKey: text };
}

/** Hard links refused by the file system (FAT, some network shares): the key is then written in place. */
const noHardLinkCodes = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Writes a new key file, mode 0600, whole or not at all, and never over an existing file. The
 * key is written and fsynced under a temporary name beside it, then linked to its name: link()
 * fails if the name exists, so the refusal to overwrite holds even against another writer
 * between a look and the write (a rename would replace it). Written in place, a crash (or a
 * full disk) after the file was made and before its text was on disk left an empty key file,
 * which the next keygen then refused to replace.
 * Crash notes: before the link, the name is free and at most a temporary file (mode 0600) is
 * left beside it, named after the key's; after it, the key is whole under its name, and on disk
 * once the folder is fsynced, before keygen returns (and prints the verifier key): without it,
 * a power loss could leave the name free while the verifier key was already handed out (where
 * the system cannot fsync a folder, Windows, the key is written all the same).
 */
export function writeKeyFile(file: string, signerKey: string): void {
  try {
    createKeyFile(file, signerKey);
  } catch (error) {
    // Named by its absolute path: under `npm run` a relative --out is taken from the repository's root.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new Failure(`${resolve(file)} exists; refusing to overwrite a key (move it away first)`);
    if (error instanceof FolderNotSynced) {
      // The key is whole under its name, but may not stay so: no one is to trust it yet.
      throw new Failure(`wrote the key file ${resolve(file)}, but ${error.message}, so the file may be gone after a power loss; its verifier key is not given out: move the file away and make a new key once the disk is sound`);
    }
    throw new Failure(`couldn't write the key file ${resolve(file)}: ${(error as Error).message}`);
  }
}

/** writeKeyFile's work, its errors as the file system gave them (EEXIST: the name is taken). */
function createKeyFile(file: string, signerKey: string): void {
  removeStaleTemporaries(dirname(file), `.${basename(file)}`);
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeSynced(temporary, `${signerKey}\n`);
    try {
      linkSync(temporary, file);
    } catch (error) {
      if (!noHardLinkCodes.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
      // In place: a crash before its fsync can leave it empty or partial, which no link avoids here.
      writeSynced(file, `${signerKey}\n`);
    }
  } finally {
    rmSync(temporary, { force: true });
  }
  // After the temporary file's removal, so that it is not found again after a power loss either.
  try {
    syncFolder(dirname(file));
  } catch (error) {
    throw new FolderNotSynced(dirname(file), error);
  }
}

/** The key file is linked (or written) whole under its name, but its folder's fsync failed: the name may not be on disk. */
class FolderNotSynced extends Error {
  constructor(folder: string, cause: unknown) {
    super(`couldn't fsync its folder ${resolve(folder)} (${(cause as Error).message})`, { cause });
    this.name = 'FolderNotSynced';
  }
}

/**
 * A new file with `text`, mode 0600 whatever the umask, fsynced; never over an existing one
 * ('wx'). One that fails after it was made is removed: no key file is left empty or partial.
 */
function writeSynced(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeFileSync(fd, text);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw error;
  }
  closeSync(fd);
}

/**
 * Makes a new name in `folder` (a link, a file made) durable where the system can: where it
 * cannot open or fsync a folder at all (Windows refuses to open one: cannotSyncFolder), the
 * name is left as it is, as replaceFile's 'where-possible' does. Any other failure (EIO: the
 * disk gave out) is thrown: the key's name may be lost while its verifier key is handed out.
 */
function syncFolder(folder: string): void {
  let fd: number;
  try {
    fd = openSync(folder, 'r');
  } catch (error) {
    if (cannotSyncFolder('open', error)) return;
    throw error;
  }
  try {
    fsyncSync(fd);
  } catch (error) {
    if (!cannotSyncFolder('fsync', error)) throw error;
  } finally {
    closeSync(fd);
  }
}

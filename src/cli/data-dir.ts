/**
 * The data dir (CHIPLEDGER_DATA_DIR): whether it can be a folder, whether this user should trust
 * it, making it, and writing in it. Its rules:
 * - It is made when first needed, as mkdir -p, with mode 0700 (dataDirMode): only its user may
 *   list it or change what is kept there. As root, the embedded PostgreSQL's start then adds the
 *   others' x bit to it (0701), which its postgres user needs to reach pg/ inside
 *   (store/embedded-postgres-user.ts): passing through, not listing or writing.
 * - A folder there already is refused when another user owns it or its group or others may
 *   write it (dataDirAccessProblem): whoever may write it steers what chipledger does there.
 * - Every problem with it (a file in its place, a folder this user cannot write, one it should
 *   not trust) is said as one configuration problem in one line, exit 2, never an error with a
 *   stack from deep inside.
 */
import { existsSync, mkdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { othersAccess } from './file-access.ts';
import { Failure } from './output.ts';

/**
 * The data dir is made when first needed (mkdir -p): the path or a folder above it that is a
 * file (or anything but a folder) makes that fail. The commands that open it say so as one
 * configuration problem (exit 2) instead of an EEXIST or ENOTDIR from deep inside; client
 * commands never open it, so a file of that name in their folder is none of their business.
 * What cannot be looked at (no permission) is left to the command that makes the folder. A
 * folder there already that this user should not trust is refused too (dataDirAccessProblem).
 */
export function dataDirProblem(dataDir: string): string | undefined {
  const blocked = notAFolderOnTheWay(dataDir);
  if (blocked === undefined) return dataDirAccessProblem(dataDir);
  return `CHIPLEDGER_DATA_DIR: ${dataDir} cannot be a folder: ${blocked === dataDir ? 'it is' : `${blocked}, on its path, is`} a file, not a folder; choose another folder, or move the file`;
}

/**
 * The mode chipledger makes the data dir with (and any folder above it that is missing): only
 * its user may list it or change what is kept there.
 */
export const dataDirMode = 0o700;

/**
 * A data dir this user should not trust, as one configuration problem: one that another user
 * owns, or that its group or others may write. Whoever may write it steers what chipledger does
 * there: pg.password replaced by a link had the start's chmod follow it (as root, onto any
 * file), the lock holds the database's URL with its password, and published-checkpoint removed
 * switches the rollback guard off for the next start. PostgreSQL refuses its own folder so;
 * this is the folder above it. Only the data dir itself is looked at: run as root, `pg/` inside
 * it belongs to `postgres`, as it must. Undefined for a folder not there (yet), and where files
 * have no owner ids (Windows). A folder another user owns is refused with the advice to run as
 * that user (sudo -u), not to take it: it is most often a service's, met by an admin command run
 * with sudo, and a chown to root would shut the service out. One its group may write as well (a
 * StateDirectoryMode=0770) is to be closed by its owner (chmod 700 as that user) first.
 */
export function dataDirAccessProblem(dataDir: string): string | undefined {
  let stat: Stats;
  try {
    stat = statSync(dataDir);
  } catch {
    return undefined;
  }
  const access = othersAccess(stat);
  if (access === undefined || !stat.isDirectory() || (!access.foreign && !access.writable)) return undefined;
  const { foreign, writable, ownUid: userId } = access;
  const what: string[] = [];
  if (foreign) what.push(`belongs to another user (uid ${stat.uid}; chipledger runs as uid ${userId})`);
  if (writable) what.push(`may be written by its group or others (mode ${(stat.mode & 0o7777).toString(8)})`);
  const why = `CHIPLEDGER_DATA_DIR: ${dataDir} ${what.join(' and ')}; whoever may write it can replace what chipledger keeps there (the database's password, its lock, published-checkpoint)`;
  if (!foreign) return `${why}; run chmod 700 ${dataDir}, or choose a folder of this user's that only it may write`;
  // Another user's: most often a service's data dir, and an admin command run with sudo. Taking
  // it (chown) would shut the service out of its own folder at its next start, group-writable
  // or not; closing it to its group is for its owner to do, the service's next start included.
  const me = userName(userId);
  const owner = sudoUser(stat.uid);
  const closeFirst = writable ? `have its owner close it to others (sudo -u ${owner} chmod 700 ${dataDir}), then ` : '';
  const take = writable ? `chown ${me} ${dataDir} && chmod 700 ${dataDir}` : `chown ${me} ${dataDir}`;
  return `${why}; ${closeFirst}run this command as its owner, as the server that uses it runs (sudo -u ${owner} …), or, if every chipledger that uses it runs as ${me}, run ${take}`;
}

/** This user's name for chown, or its id where it has none (a container's user without a passwd entry). */
function userName(userId: number): string {
  try {
    return userInfo().username;
  } catch {
    return String(userId);
  }
}

/**
 * Another user, as sudo -u takes it: its name in /etc/passwd, or '#uid' (quoted: a shell word
 * that starts with # is a comment) for a user that has none there (systemd's DynamicUser, a
 * directory service), which sudo takes as well.
 */
function sudoUser(userId: number): string {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return `'#${userId}'`;
  }
  const entry = passwd.split('\n').map((line) => line.split(':')).find((fields) => fields.length >= 3 && fields[2] === String(userId));
  const name = entry?.[0];
  // A name that is not a plain word is not put in a command line to be copied into a shell.
  return name !== undefined && /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(name) ? name : `'#${userId}'`;
}

/**
 * Makes the data dir when it is missing (dataDirMode, as mkdir -p), then refuses one this user
 * should not trust (dataDirAccessProblem), exit 2. Looked at after the mkdir, which takes a
 * folder that is there as it is: one another user made since the start's look is refused too.
 */
export function makeDataDir(dataDir: string): void {
  writingInDataDir(dataDir, () => makeFolders(dataDir));
  const untrusted = dataDirAccessProblem(dataDir);
  if (untrusted !== undefined) throw new Failure(untrusted, 2);
}

/**
 * mkdir -p with dataDirMode. Node's recursive mkdir says ENOENT, not EROFS or EACCES, when the
 * first folder it must make is on a read-only file system (a container run read-only with the
 * default ./.chipledger): then that folder is made on its own, whose mkdir says the real code.
 */
export function makeFolders(folder: string): void {
  try {
    mkdirSync(folder, { recursive: true, mode: dataDirMode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    let missing = resolve(folder);
    while (!existsSync(dirname(missing)) && dirname(missing) !== missing) missing = dirname(missing);
    mkdirSync(missing, { mode: dataDirMode }); // throws the code that tells why
    mkdirSync(folder, { recursive: true, mode: dataDirMode });
  }
}

/** What to do about a folder this user may not write. */
const letItWrite = 'choose a folder this user can write, or let it write this one';
/** What to do about a path no folder can have. */
const chooseAnother = 'choose another folder';

/**
 * Why writing in the data dir failed, by the code of the mkdir, open or write that failed, and
 * what to do: this user may not write there, the file system is read-only, a file stands where
 * a folder should be (made since dataDirProblem looked), the path or a name on it is longer
 * than the file system takes, or its symbolic links go round (dataDirProblem's look at the path
 * gets the same codes and leaves them to the mkdir, which said them as an "unexpected error"
 * with a stack).
 */
const unwritableDataDirReasons: Readonly<Record<string, { reason: string; remedy: string }>> = {
  EACCES: { reason: 'this user may not write there', remedy: letItWrite },
  EPERM: { reason: 'this user may not write there', remedy: letItWrite },
  EROFS: { reason: 'it is on a read-only file system', remedy: letItWrite },
  ENOTDIR: { reason: 'a file on its path is not a folder', remedy: letItWrite },
  ENAMETOOLONG: { reason: 'its path, or a name on it, is longer than the file system takes', remedy: chooseAnother },
  ELOOP: { reason: 'the symbolic links on its path go round in a loop (or are too many)', remedy: chooseAnother },
};

/**
 * A failed write in the data dir (making it, its lock, the demo log key) as one configuration
 * problem for people, like dataDirProblem's, instead of an error with a stack; undefined for an
 * error that says nothing about the folder (a bug, a full disk), which is left as it is.
 */
export function dataDirWriteProblem(dataDir: string, error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !Object.hasOwn(unwritableDataDirReasons, code)) return undefined;
  const { reason, remedy } = unwritableDataDirReasons[code]!;
  return `CHIPLEDGER_DATA_DIR: cannot write ${dataDir}: ${reason} (${code}); ${remedy}`;
}

/** Runs a write in the data dir; a folder this user cannot write is a Failure in one line, exit 2 (dataDirWriteProblem). */
export function writingInDataDir<T>(dataDir: string, write: () => T): T {
  try {
    return write();
  } catch (error) {
    const unwritable = dataDirWriteProblem(dataDir, error);
    if (unwritable !== undefined) throw new Failure(unwritable, 2);
    throw error;
  }
}

function notAFolderOnTheWay(path: string): string | undefined {
  for (let current = path; ; current = dirname(current)) {
    try {
      return statSync(current).isDirectory() ? undefined : current;
    } catch (error) {
      // ENOTDIR: a file above it, which the next turn names.
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(current) === current) return undefined;
    }
  }
}

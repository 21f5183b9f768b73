/**
 * The published-checkpoint guard's start check (the guard's rules: published-checkpoint.ts):
 * before the ledger opens, so before anything is migrated, signed or served, the database's log
 * must extend the checkpoint the file records: at least its size, and at its size the same root.
 * Reads only, in one snapshot.
 */
import { join } from 'node:path';
import { limits } from '../core/limits.ts';
import { TileReader } from '../ledger/log/tile-reader.ts';
import { inTransaction, type Pool, type PoolClient } from '../store/pool.ts';
import { listLogKeys, logTablesPresent, readHead } from '../store/tlog-tables.ts';
import { parseSignerKey, rootFromNodes, rootNodes } from '../tlog/index.ts';
import { dataDirAccessProblem } from './data-dir.ts';
import { Failure } from './output.ts';
import { howToGoOn, openPublished, publishedCheckpointFileName, readPublishedFile, refuseAnotherLog, type Published } from './published-checkpoint-file.ts';

/** What the start check read, in one snapshot, before anything is migrated. */
interface DatabaseLog {
  size: number;
  root: Buffer;
  /** Verifier keys the database records for its log (none on a database never migrated). */
  keys: string[];
}

/** What the start check found: the file, the checkpoint it records (none when there is no file), and the server's own verifier keys. */
export interface StartCheck {
  file: string;
  published: Published | undefined;
  ownKeys: string[];
}

/**
 * The start check: refuses (a Failure, one line) a database whose log is shorter than the
 * checkpoint recorded, or has another root at its size, and a file whose note no key of
 * this log signed. `signerKeys`: the server's signing key and its previous one, if any.
 * Reads only; PublishedCheckpointGuard.check calls it before Ledger.open, which migrates and may sign.
 */
export async function checkPublishedCheckpoint(pool: Pool, dataDir: string, signerKeys: readonly string[]): Promise<StartCheck> {
  // A file in a folder another user may write guards nothing: that user may remove it (the
  // next start then records whatever the database holds). Said here for every caller, an
  // admin command with DATABASE_URL included, which opens no other file there.
  const untrusted = dataDirAccessProblem(dataDir);
  if (untrusted !== undefined) throw new Failure(untrusted, 2);
  const file = join(dataDir, publishedCheckpointFileName);
  const ownKeys = signerKeys.map((key) => parseSignerKey(key).verifierKey);
  const note = await readPublishedFile(file);
  if (note === undefined) return { file, published: undefined, ownKeys };
  const published = await inTransaction(pool, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (client) => {
    const log = await readDatabaseLog(client);
    refuseAnotherLog(file, note, log.keys.at(-1) ?? signerKeys[0]);
    const recorded = openPublished(file, note, [...ownKeys, ...log.keys]);
    if (log.size < recorded.size) {
      throw new Failure(`the database's transparency log has ${log.size} entries (root ${log.root.toString('base64')}), fewer than the checkpoint of size ${recorded.size} (root ${recorded.root.toString('base64')}) this server published, recorded in ${file}: the database is older than what was published (restored from an older backup, or a replica behind) or another database, and served it would give out ids and idempotency answers again and sign a fork of the published log; point chipledger at the newest database, or, ${howToGoOn(file)}`);
    }
    const root = await rootAt(client, recorded.size);
    if (!root.equals(recorded.root)) {
      throw new Failure(`the database's transparency log has root ${root.toString('base64')} at size ${recorded.size} (of ${log.size} entries), but the checkpoint of size ${recorded.size} this server published, recorded in ${file}, has root ${recorded.root.toString('base64')}: the database holds another history (another database, or one restored from a backup and then written to), and served it would sign a fork of the published log; point chipledger at the database it published, or, ${howToGoOn(file)}`);
    }
    return recorded;
  });
  return { file, published, ownKeys };
}

/**
 * The log's size, root and keys as the database holds them. A database never migrated has no
 * log tables: its log is empty.
 */
async function readDatabaseLog(client: PoolClient): Promise<DatabaseLog> {
  const tables = await logTablesPresent(client);
  const head = tables.head ? await readHead(client) : undefined;
  const keys = tables.keys ? (await listLogKeys(client)).map((row) => row.verifier_key) : [];
  return { size: head?.size ?? 0, root: head?.root ?? (await rootAt(client, 0)), keys };
}

/**
 * The root of the database's log at `size` (at most its head), from its tiles as the ledger
 * keeps them. The ledger's own start-up check, which runs next, proves the tiles against the
 * events; a tile missing here is a refusal of the same kind.
 */
export async function rootAt(client: PoolClient, size: number): Promise<Buffer> {
  try {
    return rootFromNodes(size, await new TileReader(client, limits.startCheckTilesMax).nodeGetter(rootNodes(size), client));
  } catch (error) {
    if ((error as { code?: unknown }).code !== undefined) throw error;
    throw new Failure(`couldn't compute the database log's root at size ${size} to compare it with the checkpoint this server published: ${(error as Error).message}`);
  }
}

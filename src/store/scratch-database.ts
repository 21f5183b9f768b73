/**
 * A database of its own for a replay of the log (ledger/replay): made on the checked
 * database's server by its owner, migrated, and dropped afterwards. A check killed before it
 * drops one leaves it behind; its name says what it is and when it was made
 * (`chipledger_replay_<unix seconds>_<random>`), and a later replay drops those made more than
 * leftoverAgeMs before that no session uses. Not younger ones: a replay starting beside this
 * one has made its database but not yet connected to it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { limits } from '../core/limits.ts';
import { migrate } from './migrate.ts';
import { createPool, type Pool } from './pool.ts';

const namePrefix = 'chipledger_replay_';
/** A day: no replay runs that long before it connects, or holds no session while it runs. */
const leftoverAgeMs = 24 * 60 * 60 * 1000;
/**
 * The setting migration 047's trigger reads for how far ahead of the database's clock a batch
 * may be dated (056). A replay dates each batch by its recorded event, which the bound held
 * when it was written; the replay's own database takes any time, so that events a test or a
 * clock ahead dated later than today replay too. The bound is the writers' clock's, not a rule
 * of the domain.
 */
const clockAheadSetting = 'chipledger.clock_ahead_of_database_ms_max';
const anyTimeAheadMs = 1000 * 365 * 24 * 60 * 60 * 1000;

/** The owner may not make a database on its server: said with what mends it. */
export class ScratchDatabaseRefused extends Error {}

export interface ScratchDatabase {
  /** Logs in as the owner that made it. */
  pool: Pool;
  drop(): Promise<void>;
}

/** Makes, configures and migrates a new database on the server of `ownerUrl`, as that URL's role. */
export async function createScratchDatabase(ownerUrl: string, applicationName: string): Promise<ScratchDatabase> {
  const name = `${namePrefix}${Math.floor(Date.now() / 1000)}_${randomBytes(6).toString('hex')}`;
  await asAdmin(ownerUrl, async (admin) => {
    await dropUnused(admin);
    try {
      await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
    } catch (error) {
      if ((error as { code?: unknown }).code !== '42501') throw error;
      throw new ScratchDatabaseRefused(`couldn't make a database to replay the log into: the role of DATABASE_URL may not create databases (${(error as Error).message}); grant it CREATEDB (ALTER ROLE … CREATEDB) for the replay`);
    }
    // Commits need not wait for the disk: the database is dropped at the end, and a crash ends the replay anyway.
    await admin.query(`ALTER DATABASE ${name} SET synchronous_commit = off`);
    await admin.query(`ALTER DATABASE ${name} SET ${clockAheadSetting} = '${anyTimeAheadMs}'`);
  });
  const url = new URL(ownerUrl);
  url.pathname = `/${name}`;
  const pool = createPool({ url: url.toString(), connectionsMax: limits.adminConnectionsMax, applicationName });
  const drop = async (): Promise<void> => {
    await pool.end().catch(() => {});
    await asAdmin(ownerUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => {}));
  };
  try {
    await migrate(pool);
  } catch (error) {
    await drop().catch(() => {});
    throw error;
  }
  return { pool, drop };
}

async function asAdmin<T>(ownerUrl: string, work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: ownerUrl, connectionTimeoutMillis: limits.connectTimeoutMs });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end().catch(() => {});
  }
}

/** Drops the replay databases killed checks left: made more than leftoverAgeMs ago, and used by no session. */
async function dropUnused(admin: pg.Client): Promise<void> {
  const made = (await admin.query<{ name: string }>(
    `SELECT datname AS name FROM pg_database d WHERE starts_with(datname, $1) AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.datid = d.oid)`,
    [namePrefix],
  )).rows;
  const left = made.filter(({ name }) => {
    const seconds = new RegExp(`^${namePrefix}(\\d+)_[0-9a-f]+$`).exec(name)?.[1];
    return seconds !== undefined && Date.now() - Number(seconds) * 1000 > leftoverAgeMs;
  });
  for (const { name } of left) {
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
    } catch (error) {
      if ((error as { code?: unknown }).code !== '55006' && (error as { code?: unknown }).code !== '42501') throw error; // in use since, or another role's
    }
  }
}

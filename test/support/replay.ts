/**
 * A replay of a test database's log (src/ledger/replay), as `check --replay` runs it, into a
 * database of its own: a copy of one empty migrated template per test process, so that a
 * replay costs a CREATE DATABASE, not 60-odd migrations.
 */
import { randomBytes } from 'node:crypto';
import { KeptPromise } from '../../src/core/kept-promise.ts';
import { replayInvariant, replayLog, type ReplayReport } from '../../src/ledger/replay/replay.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createPool, type Pool, type PoolClient } from '../../src/store/pool.ts';
import { stateDifferences } from '../../src/store/state-diff.ts';
import type { Violation } from '../../src/store/violations.ts';
import { allowClocksAhead, asServerAdmin, databaseUrlOf } from '../database.ts';

/** The empty migrated template, one per worker; one that failed is made again by the next file. */
const template = new KeptPromise<string>();

function emptyTemplate(): Promise<string> {
  return template.get(async () => {
    const name = `tpl_replay_${randomBytes(6).toString('hex')}`;
    await asServerAdmin((client) => client.query(`CREATE DATABASE ${name}`));
    const pool = createPool({ url: databaseUrlOf(name), connectionsMax: 1, applicationName: 'chipledger-test-replay-template' });
    try {
      await migrate(pool);
    } finally {
      await pool.end();
    }
    return name;
  });
}

/** Drops the process's template (afterAll of a file that replayed). */
export async function dropReplayTemplate(): Promise<void> {
  const name = await template.take()?.catch(() => undefined); // its failure was the replay's to report
  if (name !== undefined) await asServerAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

export interface Replayed {
  report: ReplayReport;
  /** The replay's database: compare a source with it (differencesFrom), then drop it. */
  target: Pool;
  drop(): Promise<void>;
}

/**
 * Replays the log of the database `source` reads (its whole log, in one snapshot; `tamper` first
 * changes it in that snapshot's transaction, which is rolled back) into a new database.
 */
export async function replayOf(source: Pool, tamper?: (client: PoolClient) => Promise<void>): Promise<Replayed> {
  const name = `t_replay_${randomBytes(6).toString('hex')}`;
  const from = await emptyTemplate();
  await asServerAdmin(async (client) => {
    await client.query(`CREATE DATABASE ${name} TEMPLATE ${from}`);
    await allowClocksAhead(client, name);
  });
  const target = createPool({ url: databaseUrlOf(name), connectionsMax: 4, applicationName: 'chipledger-test-replay' });
  const drop = async (): Promise<void> => {
    await target.end();
    await asServerAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  };
  try {
    const report = await inSnapshot(source, async (client) => {
      await tamper?.(client);
      return replayLog(client, target, await logSize(client));
    });
    return { report, target, drop };
  } catch (error) {
    await drop();
    throw error;
  }
}

/** What the state of `source` (after `tamper`, rolled back) holds otherwise than the replay made. */
export async function differencesFrom(source: Pool, replayed: Replayed, tamper?: (client: PoolClient) => Promise<void>): Promise<Violation[]> {
  return inSnapshot(source, async (client) => {
    await tamper?.(client);
    return stateDifferences(client, replayed.target, replayInvariant);
  });
}

/**
 * Replays `source` (after `tamper`, rolled back, as in replayOf) and compares: its divergence,
 * if any, and every difference (none compared past a divergence).
 */
export async function replayFindings(source: Pool, tamper?: (client: PoolClient) => Promise<void>): Promise<{ report: ReplayReport; differences: Violation[] }> {
  const replayed = await replayOf(source, tamper);
  try {
    const differences = replayed.report.divergence === undefined ? await differencesFrom(source, replayed, tamper) : [];
    return { report: replayed.report, differences };
  } finally {
    await replayed.drop();
  }
}

async function inSnapshot<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    return await work(client);
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}

async function logSize(client: PoolClient): Promise<number> {
  return Number((await client.query<{ size: string }>('SELECT size::text AS size FROM log_head')).rows[0]!.size);
}

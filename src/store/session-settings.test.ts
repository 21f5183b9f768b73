/**
 * A database or role whose settings are not PostgreSQL's defaults (ALTER DATABASE/ROLE … SET,
 * as an operator or a managed service may have them): what chipledger reads and writes does
 * not change with them.
 * - DateStyle 'SQL, DMY', extra_float_digits -12, standard_conforming_strings off: every
 *   connection of the pool is set as chipledger reads it (session-settings.ts, sessionSettingsSql), so
 *   dates, times and coordinates read back exactly and a batch's bytea literals hold.
 * - bytea literals hold with standard_conforming_strings off even on a connection nobody set.
 * - default_transaction_isolation 'repeatable read': the transactions that lock, then read,
 *   open READ COMMITTED, so two ledgers (two servers) on one database never fail each other's
 *   batches with a serialization failure (40001).
 * - A role that may only read and write rows, or whose connection is read-only, runs
 *   chipledger on a database already migrated (migrate needs no DDL then).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, tokenActor, type World } from '../../test/world.ts';
import { ManualClock } from '../core/clock.ts';
import { Ledger } from '../ledger/ledger.ts';
import { systemActor } from '../ledger/permissions.ts';
import { beginBatch, openAtHeadSql } from './head-lock.ts';
import { emptyKeys } from './batch-keys.ts';
import { loadBatchState } from './batch-state.ts';
import { rememberAnswer } from './idempotency-answers.ts';
import { migrate } from './migrate.ts';
import { createPool, type Pool, type PoolClient } from './pool.ts';
import { listAllocations, listSites } from './read-queries.ts';
import { inLogSigningTransaction, logSigningLockKey, readHead } from './tlog-tables.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

const settings = {
  datestyle: "'SQL, DMY'",
  extra_float_digits: '-12',
  standard_conforming_strings: 'off',
  default_transaction_isolation: "'repeatable read'",
};

/** A migrated database of its own whose every new session starts with `set` (ALTER DATABASE … SET). */
async function databaseWith(set: Record<string, string>): Promise<TestDatabase & { name: string }> {
  const database = await createTestDatabase();
  const name = new URL(database.url).pathname.slice(1);
  for (const [setting, value] of Object.entries(set)) await database.pool.query(`ALTER DATABASE ${name} SET ${setting} = ${value}`);
  // The connections migrate opened started before: the pool used here is made afresh.
  return { ...database, name };
}

const pools: Pool[] = [];
function poolOf(url: string, connectionsMax = 4): Pool {
  const pool = createPool({ url, connectionsMax, applicationName: 'chipledger-session-settings-test' });
  pools.push(pool);
  return pool;
}

let database: TestDatabase & { name: string };
let world: World | undefined;
beforeAll(async () => {
  database = await databaseWith(settings);
});
afterAll(async () => {
  await world?.ledger.close();
  await Promise.all(pools.map((pool) => pool.end()));
  await database?.drop();
});

/** What a session on `url` that nobody set up has, to show the database's settings took. */
async function plainSession(url: string, names: string[]): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const shown: Record<string, string> = {};
    for (const name of names) shown[name] = (await client.query<{ value: string }>('SELECT current_setting($1) AS value', [name])).rows[0]!.value;
    return shown;
  } finally {
    await client.end();
  }
}

describe("a database whose settings are not PostgreSQL's defaults", () => {
  it('has them in a session nobody set up, and not in a connection of the pool', async () => {
    const names = ['datestyle', 'extra_float_digits', 'standard_conforming_strings', 'transaction_isolation'];
    expect(await plainSession(database.url, names)).toEqual({ datestyle: 'SQL, DMY', extra_float_digits: '-12', standard_conforming_strings: 'off', transaction_isolation: 'repeatable read' });
    const pool = poolOf(database.url);
    const shown = (await pool.query<Record<string, string>>(`SELECT current_setting('datestyle') AS datestyle, current_setting('extra_float_digits') AS extra_float_digits,
      current_setting('standard_conforming_strings') AS standard_conforming_strings`)).rows[0];
    expect(shown).toEqual({ datestyle: 'ISO, YMD', extra_float_digits: '3', standard_conforming_strings: 'on' });
  });

  it('commits batches, and reads dates, times and coordinates back exactly', async () => {
    world = await buildWorld(poolOf(database.url), { allocationUnits: 400 });
    const { run, actors } = world;
    const allocationId = String((await run('allocation.create', { licenceId: world.exportLicenceId, recipientId: actors.alpha.orgId, units: 3, periodStart: '2026-11-01', periodEnd: '2026-11-30' }, actors.bis)).allocationId);
    const siteId = String((await run('site.register', { name: 'SITE-41', province: '内蒙古', city: '乌兰察布', latitude: 41.0347, longitude: 113.1332, capacityUnits: 100 }, actors.alpha)).siteId);
    // A token revoked: its secret's hash is read (bytea, in a batch's load) and written back.
    await run('token.revoke', { tokenId: actors.auditor.id }, systemActor);

    const pool = poolOf(database.url);
    const everyone = { orgId: null } as Parameters<typeof listAllocations>[1];
    const allocation = (await listAllocations(pool, everyone, { after: null, limit: 100 })).rows.find((row) => row.id === allocationId);
    expect(allocation).toMatchObject({ period_start: '2026-11-01', period_end: '2026-11-30' });
    const site = (await listSites(pool, everyone, { after: null, limit: 100 })).rows.find((row) => row.id === siteId);
    expect(site).toMatchObject({ latitude: 41.0347, longitude: 113.1332 });
    const read = (await pool.query<{ day: string; at: string; x: number }>("SELECT '2026-11-01'::date AS day, '2026-02-01T08:00:00.123Z'::timestamptz AS at, 0.1::float8 + 0.2::float8 AS x")).rows[0];
    expect(read).toEqual({ day: '2026-11-01', at: '2026-02-01T08:00:00.123Z', x: 0.1 + 0.2 });
    const secrets = await pool.query<{ id: string; hashed: boolean }>("SELECT id, length(secret_hash) = 32 AS hashed FROM tokens WHERE id = $1", [actors.auditor.id]);
    expect(secrets.rows).toEqual([{ id: actors.auditor.id, hashed: true }]);
  });

  it('lets two ledgers (two servers) on it write at once under repeatable read, with no batch failed', async () => {
    const clock = new ManualClock('2026-02-01T00:00:00Z');
    const ledgers = [await Ledger.open({ logSealingKey: testSealingKey, pool: poolOf(database.url), clock }), await Ledger.open({ logSealingKey: testSealingKey, pool: poolOf(database.url), clock })];
    try {
      const lanes = ledgers.flatMap((ledger, server) => Array.from({ length: 6 }, async (_, lane) => {
        const refusals: string[] = [];
        for (let n = 0; n < 8; n += 1) {
          const answer = await ledger.submit('organisation.register', { name: `Server ${server} lane ${lane} org ${n}`, country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
          if (!answer.ok) refusals.push(`${answer.error.code}: ${answer.error.message}`);
        }
        return refusals;
      }));
      expect((await Promise.all(lanes)).flat()).toEqual([]);
    } finally {
      await Promise.all(ledgers.map((ledger) => ledger.close()));
    }
  });
});

/**
 * Runs `waiter` while another session holds the head lock, and once the waiter waits for it,
 * moves the head (a write that changes nothing, a new row version all the same) and commits:
 * under repeatable read, a waiter whose snapshot predates that commit could not lock the row
 * (40001); READ COMMITTED reads the committed row.
 */
async function afterHeadMovedUnder<T>(pool: Pool, waiter: () => Promise<T>): Promise<T> {
  const holder = await pool.connect();
  try {
    await holder.query('BEGIN; SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE');
    const waiting = waiter();
    waiting.catch(() => {});
    await untilWaitingForLock(pool);
    await holder.query('UPDATE log_head SET size = size WHERE id = 1; COMMIT');
    return await waiting;
  } finally {
    holder.release();
  }
}

async function untilWaitingForLock(pool: Pool): Promise<void> {
  for (let tries = 0; tries < 200; tries += 1) {
    const { rows } = await pool.query<{ waiting: number }>("SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
    if (rows[0]!.waiting > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('nobody waited for the lock');
}

async function onClient<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await work(client);
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}

describe('a transaction that locks, then reads, under default_transaction_isolation repeatable read', () => {
  it('reads the head committed while it waited for the head lock: a classic batch', async () => {
    const pool = poolOf(database.url);
    const head = await readHead(pool);
    const begun = await afterHeadMovedUnder(pool, () => onClient(pool, (client) => beginBatch(client)));
    expect(begun.head.size).toBe(head.size);
  });

  it('… a batch sent ahead', async () => {
    const pool = poolOf(database.url);
    const head = await readHead(pool);
    await afterHeadMovedUnder(pool, () => onClient(pool, (client) => client.query(openAtHeadSql(head))));
  });

  it('… an answer remembered on its own', async () => {
    const pool = poolOf(database.url);
    const remembered = await afterHeadMovedUnder(pool, () => rememberAnswer(pool, { scope: 'ORG-S', key: 'k-isolation', request_hash: Buffer.alloc(32, 1), status: 409, response: {}, created_at: '2026-02-01T00:00:00.000Z' }));
    expect(remembered).toBeUndefined();
  });

  it('reads the head committed while a log signer waited for the signing lock', async () => {
    const pool = poolOf(database.url);
    const holder = await pool.connect();
    try {
      await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${logSigningLockKey})`);
      const signer = inLogSigningTransaction(pool, async (client) => (await readHead(client)).size);
      signer.catch(() => {});
      await untilWaitingForLock(pool);
      await world!.run('organisation.register', { name: 'Registered while the signer waited', country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
      const moved = (await readHead(pool)).size;
      await holder.query('COMMIT');
      expect(await signer).toBe(moved);
    } finally {
      holder.release();
    }
  });
});

describe('bytea literals with standard_conforming_strings off', () => {
  it('hold on connections nobody set up (a pool of its own, not createPool)', async () => {
    const scs = await databaseWith({ standard_conforming_strings: 'off' });
    const pool = new pg.Pool({ connectionString: scs.url, max: 4 });
    const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool, clock: new ManualClock('2026-02-01T00:00:00Z') });
    try {
      const run = async (kind: 'organisation.register' | 'token.create' | 'token.revoke', input: Record<string, unknown>, actor = systemActor) => {
        const answer = await ledger.submit(kind, input as never, actor);
        if (!answer.ok) expect.fail(`${kind} refused: ${answer.error.code}: ${answer.error.message}`);
        return answer.body;
      };
      const orgId = String((await run('organisation.register', { name: 'Bureau', country: 'US', roles: ['authority'], identifiers: {} })).organisationId);
      const admin = await tokenActor(run as World['run'], orgId, 'authority_admin');
      const officer = await tokenActor(run as World['run'], orgId, 'authority_officer');
      const before = (await pool.query<{ secret_hash: Buffer }>('SELECT secret_hash FROM tokens WHERE id = $1', [officer.id])).rows[0]!.secret_hash;
      await run('token.revoke', { tokenId: officer.id }, admin);
      const after = (await pool.query<{ secret_hash: Buffer; revoked: boolean }>('SELECT secret_hash, revoked_at IS NOT NULL AS revoked FROM tokens WHERE id = $1', [officer.id])).rows[0]!;
      expect(after).toEqual({ secret_hash: before, revoked: true });
    } finally {
      await ledger.close();
      await pool.end();
      await scs.drop();
    }
  });
});

describe('bytea literals on a session whose standard_conforming_strings is off', () => {
  it('hold in a batch sent ahead and in a token loaded for a batch', async () => {
    const client = await poolOf(database.url).connect();
    try {
      await client.query('SET standard_conforming_strings = off');
      // The head's root as written in the text: read wrong, the head would not be the expected one (CLH01).
      await client.query(openAtHeadSql(await readHead(client)));
      await client.query('ROLLBACK');
      const keys = emptyKeys();
      keys.tokens.add(world!.actors.bis.id);
      const [token] = (await loadBatchState(client, keys)).tokens;
      const stored = (await client.query<{ secret_hash: Buffer }>('SELECT secret_hash FROM tokens WHERE id = $1', [world!.actors.bis.id])).rows[0]!.secret_hash;
      expect(token?.secret_hash).toBe(`\\x${stored.toString('hex')}`);
    } finally {
      client.release(true); // its session is not the pool's any more
    }
  });
});

describe('a role that may only read and write rows', () => {
  const role = `r_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const roleUrl = (): string => {
    const url = new URL(database.url);
    url.username = role;
    url.password = password;
    return url.toString();
  };
  beforeAll(async () => {
    await database.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await database.pool.query(`GRANT CONNECT ON DATABASE ${database.name} TO ${role}; GRANT USAGE ON SCHEMA public TO ${role};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}; GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
  });
  afterAll(async () => {
    await database.pool.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
  });

  it('migrates a database already up to date (nothing to apply, no DDL), also on a read-only connection', async () => {
    expect(await migrate(poolOf(roleUrl(), 2))).toEqual([]);
    await database.pool.query(`ALTER ROLE ${role} SET default_transaction_read_only = on`);
    expect(await migrate(poolOf(roleUrl(), 2))).toEqual([]);
  });

  it("answers a write on a read-only connection 'unavailable' (a standby after a failover), not as a bug", async () => {
    await database.pool.query(`ALTER ROLE ${role} SET default_transaction_read_only = on`);
    const ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: poolOf(roleUrl(), 2), clock: new ManualClock('2026-02-01T00:00:00Z') });
    try {
      const answer = await ledger.submit('organisation.register', { name: 'Read-only Org', country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
      expect(answer).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    } finally {
      await ledger.close();
    }
  });
});

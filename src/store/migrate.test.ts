import { randomBytes } from 'node:crypto';
import canonicalize from 'canonicalize';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { listMigrations, migrate, MigrationRefused, refuseOldServer } from './migrate.ts';
import { createPool } from './pool.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => database?.drop());

describe('migrate', () => {
  it('applies once, and concurrent starts do not race', async () => {
    const again = await Promise.all([migrate(database.pool), migrate(database.pool), migrate(database.pool)]);
    expect(again.flat()).toEqual([]);
    const rows = await database.pool.query('SELECT count(*)::int AS n FROM schema_migrations');
    expect(rows.rows[0].n).toBeGreaterThan(0);
    const violations = await database.pool.query('SELECT * FROM ledger_violations()');
    expect(violations.rows).toEqual([]);
  });

  it('refuses a server older than PostgreSQL 13 before anything is read or written, in one line; takes this one', async () => {
    // Stand-ins answer as PostgreSQL 11 and 12 would: no such server runs here.
    const queries: string[] = [];
    const eleven = { query: async (text: string) => { queries.push(text); return { rows: [{ num: '110022', version: '11.22' }] }; } };
    const refusal = await refuseOldServer(eleven as never).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(MigrationRefused);
    expect((refusal as MigrationRefused).reason).toBe('server_version');
    expect((refusal as Error).message).toBe('the database server is PostgreSQL 11.22; chipledger needs PostgreSQL 13 or later (it uses normalize(), jsonb_path_exists and WITH … AS MATERIALIZED), so nothing was applied: upgrade the server, or point DATABASE_URL at a newer one');
    expect(queries).toHaveLength(1);
    const twelve = { query: async () => ({ rows: [{ num: '120022', version: '12.22' }] }) };
    await expect(refuseOldServer(twelve as never)).rejects.toBeInstanceOf(MigrationRefused);
    const thirteen = { query: async () => ({ rows: [{ num: '130000', version: '13.0' }] }) };
    await expect(refuseOldServer(thirteen as never)).resolves.toBeUndefined();
    const client = await database.pool.connect();
    try {
      await expect(refuseOldServer(client)).resolves.toBeUndefined();
    } finally {
      client.release();
    }
  });

  it('refuses a database migrated by a newer chipledger, naming the versions it does not know', async () => {
    await database.pool.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, '999_future.sql', 'x'), (998, '998_next.sql', 'y')");
    try {
      const refusal = await migrate(database.pool).then(() => expect.fail('migrate ran on a newer schema'), (error: unknown) => error);
      expect(refusal).toBeInstanceOf(MigrationRefused);
      expect(refusal).toMatchObject({ reason: 'unknown_versions', versions: [998, 999] });
      expect((refusal as Error).message).toMatch(/^the database was migrated by a newer chipledger: it has migrations 998 \(998_next\.sql\), 999 \(999_future\.sql\), which this build does not know \(it knows up to \d+\); run the newer chipledger/);
    } finally {
      await database.pool.query('DELETE FROM schema_migrations WHERE version IN (998, 999)');
    }
    expect(await migrate(database.pool)).toEqual([]);
  });

  it('refuses a migration changed after it was applied', async () => {
    const first = listMigrations()[0]!;
    const { rows } = await database.pool.query<{ checksum: string }>('SELECT checksum FROM schema_migrations WHERE version = $1', [first.version]);
    await database.pool.query("UPDATE schema_migrations SET checksum = 'changed' WHERE version = $1", [first.version]);
    try {
      await expect(migrate(database.pool)).rejects.toMatchObject({ name: 'MigrationRefused', reason: 'changed', versions: [first.version] });
    } finally {
      await database.pool.query('UPDATE schema_migrations SET checksum = $2 WHERE version = $1', [first.version, rows[0]!.checksum]);
    }
  });

  it('turns reader rows into reader sets that stand for the same pairs (migration 012, on the tables as 011 left them)', async () => {
    const sets = listMigrations().find((migration) => migration.version === 12)!;
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      // Back to the layout 004 made, with rows across several runs of 2,048 seqs.
      await client.query('DROP TABLE event_reader_sets');
      await client.query('CREATE TABLE event_readers (org_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (org_id, seq))');
      await client.query(`INSERT INTO event_readers (org_id, seq)
        SELECT 'ORG-DENSE', s FROM generate_series(0, 5000) AS s
        UNION ALL SELECT 'ORG-SPARSE', s FROM generate_series(7, 100000, 997) AS s
        UNION ALL SELECT 'ORG-ONE', 2047`);
      const before = (await client.query('SELECT org_id, seq FROM event_readers ORDER BY org_id, seq')).rows;
      await client.query(sets.sql);
      const after = (await client.query(`SELECT r.org_id, r.first_seq + d.delta AS seq FROM event_reader_sets r CROSS JOIN LATERAL unnest(r.offsets) AS d(delta)
        ORDER BY r.org_id, seq`)).rows;
      expect(after).toEqual(before);
      expect((await client.query("SELECT count(*)::int AS n FROM event_reader_sets WHERE org_id = 'ORG-DENSE'")).rows[0].n).toBe(3);
      expect((await client.query("SELECT to_regclass('event_readers') AS gone")).rows[0].gone).toBeNull();
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
  it('rebuilds KYC per authority from the set_kyc events, last word per authority (migration 015, on the tables as 014 left them)', async () => {
    const perAuthority = listMigrations().find((migration) => migration.version === 15)!;
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      // Back to the one flag of 001, with organisations, tokens and events as the ledger wrote them.
      await client.query('ALTER TABLE organisations DROP COLUMN kyc_verified_by');
      await client.query('ALTER TABLE organisations ADD COLUMN kyc_verified boolean NOT NULL DEFAULT false');
      // 053's check came later: organisation E's register event here names no seq.
      await client.query('ALTER TABLE events DROP CONSTRAINT events_creation_subject_carries_seq');
      await client.query(`INSERT INTO organisations (id, name, country, roles, kyc_verified, created_seq) VALUES
        ('ORG-BIS', 'BIS', 'US', '{authority}', false, 1), ('ORG-MOF', 'MOFCOM', 'CN', '{authority}', false, 2),
        ('ORG-A', 'A', 'CN', '{recipient}', false, 3), ('ORG-B', 'B', 'CN', '{recipient}', true, 4), ('ORG-C', 'C', 'CN', '{recipient}', true, 5),
        ('ORG-D', 'D', 'CN', '{recipient}', true, 6), ('ORG-E', 'E', 'CN', '{recipient}', false, 7)`);
      await client.query(`INSERT INTO tokens (id, org_id, role, label, secret_hash, created_at) VALUES
        ('TOK-B', 'ORG-BIS', 'authority_officer', 'b', decode(repeat('01', 32), 'hex'), now()), ('TOK-M', 'ORG-MOF', 'authority_admin', 'm', decode(repeat('02', 32), 'hex'), now())`);
      const actors = { 'TOK-B': 'ORG-BIS', 'TOK-M': 'ORG-MOF', 'TOK-gone': 'ORG-MOF', system: 'system' } as const;
      const event = (seq: number, actor: keyof typeof actors, organisationId: string, verified: boolean, kind = 'organisation.set_kyc') => {
        const body = { seq, at: '2026-02-01T00:00:00.000Z', kind, actor: { id: actor, org: actors[actor], role: 'authority_officer' }, subject: organisationId, input: { organisationId, verified }, effects: {} };
        return [seq, body.at, kind, actor, organisationId, [organisationId], Buffer.from(canonicalize(body)!, 'utf8')];
      };
      const events = [
        event(1_000_001, 'TOK-B', 'ORG-A', true), event(1_000_003, 'TOK-M', 'ORG-A', false), event(1_000_002, 'TOK-M', 'ORG-A', true), // A: BIS's stands
        event(1_000_004, 'TOK-B', 'ORG-B', true), event(1_000_005, 'TOK-B', 'ORG-B', false), event(1_000_006, 'TOK-gone', 'ORG-B', true), // B: MOFCOM's, by a token with no row
        event(1_000_007, 'system', 'ORG-C', true), // C: the operator is no authority
        event(1_000_009, 'TOK-B', 'ORG-D', true), event(1_000_008, 'TOK-M', 'ORG-D', true), // D: both
        event(1_000_010, 'TOK-B', 'ORG-E', true, 'organisation.register'), // E: not a set_kyc event
      ];
      for (const values of events) {
        await client.query('INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical) VALUES ($1, $2, $3, $4, $5, $6, $7)', values);
      }
      await client.query(perAuthority.sql);
      const after = await client.query(`SELECT id, kyc_verified_by FROM organisations WHERE id LIKE 'ORG-_' OR id IN ('ORG-BIS', 'ORG-MOF') ORDER BY id`);
      expect(Object.fromEntries(after.rows.map((row) => [row.id, row.kyc_verified_by]))).toEqual({
        'ORG-A': ['ORG-BIS'], 'ORG-B': ['ORG-MOF'], 'ORG-BIS': [], 'ORG-C': [], 'ORG-D': ['ORG-BIS', 'ORG-MOF'], 'ORG-E': [], 'ORG-MOF': [],
      });
      const column = await client.query("SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'organisations' AND column_name = 'kyc_verified'");
      expect(column.rows[0].n).toBe(0);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('migrate on a connection that may not change the schema', () => {
  const role = `m_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const empty = `t_${randomBytes(6).toString('hex')}`;
  const urlOf = (databaseName: string): string => {
    const url = new URL(database.url);
    url.username = role;
    url.password = password;
    url.pathname = `/${databaseName}`;
    return url.toString();
  };
  /** migrate() as the role, on a pool of its own; what it throws. */
  const refusalAsRole = async (databaseName: string): Promise<unknown> => {
    const pool = createPool({ url: urlOf(databaseName), connectionsMax: 1, applicationName: 'chipledger-test' });
    try {
      return await migrate(pool).then(() => expect.fail('migrate applied migrations as a role that may not'), (error: unknown) => error);
    } finally {
      await pool.end();
    }
  };
  const onBase = async (databaseName: string | undefined, sql: string): Promise<void> => {
    const url = new URL(inject('databaseUrl'));
    if (databaseName !== undefined) url.pathname = `/${databaseName}`;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const migrated = (): string => new URL(database.url).pathname.slice(1);
  const newest = listMigrations().at(-1)!;

  beforeAll(async () => {
    await database.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await database.pool.query(`GRANT CONNECT ON DATABASE ${migrated()} TO ${role}; GRANT USAGE ON SCHEMA public TO ${role};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
    // A database with no chipledger schema yet, whose public schema this role may not create in
    // (PostgreSQL 15's default, said here for any version).
    await onBase(undefined, `CREATE DATABASE ${empty}`);
    await onBase(empty, `REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT CONNECT ON DATABASE ${empty} TO ${role}`);
    // The same in the migrated database: before 15 every role may create in public, and a
    // migration one behind would then fail on an object the role does not own, not on the right.
    await onBase(migrated(), 'REVOKE CREATE ON SCHEMA public FROM PUBLIC');
  });
  afterAll(async () => {
    await onBase(undefined, `DROP DATABASE IF EXISTS ${empty} WITH (FORCE)`);
    await database.pool.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
  });

  /** Runs `work` with the newest migration's row gone (as if applied by the next release), then puts it back. */
  async function oneBehind(work: () => Promise<void>): Promise<void> {
    const { rows } = await database.pool.query('DELETE FROM schema_migrations WHERE version = $1 RETURNING version, name, checksum, applied_at', [newest.version]);
    try {
      await work();
    } finally {
      const [row] = rows;
      await database.pool.query('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)', [row.version, row.name, row.checksum, row.applied_at]);
    }
  }

  it("tells a role that may not create tables to run chipledger migrate as the database's owner, in one line", async () => {
    const all = listMigrations();
    const fresh = await refusalAsRole(empty);
    expect(fresh).toBeInstanceOf(MigrationRefused);
    expect(fresh).toMatchObject({ reason: 'not_permitted', versions: all.map((each) => each.version) });
    expect((fresh as Error).message).toBe(`the database needs ${all.length} migrations (from ${all[0]!.name}), which this connection may not apply: this role may not change the database's schema (permission denied for schema public, SQLSTATE 42501); run chipledger migrate as the database's owner, then run this command again`);
    await oneBehind(async () => {
      const behind = await refusalAsRole(migrated());
      expect(behind).toMatchObject({ name: 'MigrationRefused', reason: 'not_permitted', versions: [newest.version] });
      expect((behind as Error).message).toMatch(new RegExp(`^the database needs 1 migration \\(from ${newest.name}\\), which this connection may not apply: this role may not change the database's schema \\([^\\n]+, SQLSTATE 42501\\); run chipledger migrate as the database's owner, then run this command again$`));
    });
    expect((await database.pool.query('SELECT max(version)::int AS newest FROM schema_migrations')).rows[0].newest).toBe(newest.version);
  });

  it('says that the connection is read-only, when it is', async () => {
    await database.pool.query(`ALTER ROLE ${role} SET default_transaction_read_only = on`);
    try {
      const fresh = await refusalAsRole(empty);
      expect(fresh).toMatchObject({ name: 'MigrationRefused', reason: 'read_only' });
      expect((fresh as Error).message).toMatch(/which this connection may not apply: the connection is read-only \(cannot execute CREATE TABLE in a read-only transaction, SQLSTATE 25006\); run chipledger migrate as the database's owner on a connection that may write \(the primary, without default_transaction_read_only\), then run this command again$/);
      await oneBehind(async () => {
        expect(await refusalAsRole(migrated())).toMatchObject({ name: 'MigrationRefused', reason: 'read_only', versions: [newest.version] });
      });
    } finally {
      await database.pool.query(`ALTER ROLE ${role} RESET default_transaction_read_only`);
    }
  });
});

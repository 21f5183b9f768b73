/**
 * Migration 039 in the database: an identifier (kind=value) belongs to one organisation. Its
 * trigger refuses a row, new or with changed identifiers, whose identifier another row
 * holds; rows that already share one (written before it) apply it and keep their other
 * changes, and the re-check names them; the GIN index serves the trigger's look-up and the
 * ledger's load by identifier. The ledger's side is in
 * ledger/handlers/organisations-identifiers.test.ts. Writes here run in transactions rolled back.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, inRolledBack, manifestLinesBefore075 } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { makeUscc } from '../core/uscc.ts';
import { emptyKeys, organisationIdentifierKey } from './batch-keys.ts';
import { loadBatchState } from './batch-state.ts';
import { listMigrations } from './migrate.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** The world's alpha holds this code (test/world.ts). */
const alphaUscc = makeUscc('91110000MA0000001');
const betaUscc = makeUscc('91330100MA0000002');

const insert = (id: string, identifiers: Record<string, string>, seq = 900_000): [string, unknown[]] =>
  [`INSERT INTO organisations (id, name, country, roles, identifiers, created_seq) VALUES ($1, $1, 'CN', '{recipient}', $2, $3)`, [id, JSON.stringify(identifiers), seq]];

const held = (id: string, kind: string, value: string, holder: string) =>
  `organisation ${id} has identifiers.${kind} "${value}", which organisation ${holder} holds; an identifier belongs to one organisation`;

/** Rows that share identifiers, written with 039's triggers off, as a database before 039 may hold them. */
async function writeDuplicates(client: PoolClient): Promise<void> {
  await client.query('ALTER TABLE organisations DISABLE TRIGGER organisations_identifier_once_insert');
  for (const [text, values] of [
    insert('ORG-D46', { uscc: alphaUscc }, 900_001),
    insert('ORG-D47', { uscc: alphaUscc, lei: 'LEI-D' }, 900_002),
    insert('ORG-D54', { lei: 'LEI-D' }, 900_003),
  ]) await client.query(text, values);
  await client.query('ALTER TABLE organisations ENABLE TRIGGER organisations_identifier_once_insert');
}

describe('the database’s rule: one organisation per identifier (039)', () => {
  it('refuses a new row whose identifier another row holds, of any kind', async () => {
    const { alpha } = world.actors;
    expect(await firstRefusal(database.pool, insert('ORG-X1', { uscc: alphaUscc }))).toEqual({ code: '23505', message: held('ORG-X1', 'uscc', alphaUscc, alpha.orgId) });
    expect(await firstRefusal(database.pool, insert('ORG-X1', { lei: 'LEI-1' }), insert('ORG-X2', { duns: '1', lei: 'LEI-1' }))).toEqual({ code: '23505', message: held('ORG-X2', 'lei', 'LEI-1', 'ORG-X1') });
    // Two rows of one statement, as a batch writes them: each sees the other.
    expect(await firstRefusal(database.pool, [`INSERT INTO organisations (id, name, country, roles, identifiers, created_seq)
      VALUES ('ORG-X1', 'X1', 'CN', '{recipient}', '{"lei":"LEI-2"}', 900001), ('ORG-X2', 'X2', 'CN', '{recipient}', '{"lei":"LEI-2"}', 900002)`]))
      .toMatchObject({ code: '23505', message: expect.stringMatching(/identifiers\.lei "LEI-2", which organisation ORG-X[12] holds/) });
    // The same value under another kind, and rows without identifiers, are no duplicates.
    expect(await firstRefusal(database.pool, insert('ORG-X1', { duns: alphaUscc }), insert('ORG-X2', {}), insert('ORG-X3', {}))).toBeUndefined();
  });

  it('refuses changed identifiers that another row holds, and lets any other change through', async () => {
    const { alpha, beta } = world.actors;
    // Since 063 no identifier changes at all (organisations_keep_registration refuses it
    // first); with that trigger off, as an owner may switch it, 039's still holds.
    const keptOff: [string] = ['ALTER TABLE organisations DISABLE TRIGGER organisations_keep_registration'];
    expect(await firstRefusal(database.pool, keptOff, [`UPDATE organisations SET identifiers = identifiers || $1 WHERE id = $2`, [JSON.stringify({ uscc: alphaUscc }), beta.orgId]]))
      .toEqual({ code: '23505', message: held(beta.orgId, 'uscc', alphaUscc, alpha.orgId) });
    expect(await firstRefusal(database.pool, keptOff, [`UPDATE organisations SET identifiers = identifiers || '{"lei":"LEI-BETA"}' WHERE id = $1`, [beta.orgId]])).toBeUndefined();
    // A duplicate written before 039 keeps its other changes (a KYC recorded), also written
    // the ledger's way, which writes back only the KYC marks of a row that exists (store/batch-writes.ts).
    expect(await inRolledBack(database.pool, async (client) => {
      await writeDuplicates(client);
      await client.query(`UPDATE organisations SET kyc_verified_by = $1 WHERE id = 'ORG-D46'`, [[world.actors.mofcom.orgId]]);
      await client.query(`INSERT INTO organisations (id, name, country, roles, identifiers, kyc_verified_by, created_seq) VALUES ('ORG-D47', 'ORG-D47', 'CN', '{recipient}', $1, $2, 900002)
        ON CONFLICT (id) DO UPDATE SET kyc_verified_by = EXCLUDED.kyc_verified_by`, [JSON.stringify({ uscc: alphaUscc, lei: 'LEI-D' }), [world.actors.bis.orgId]]);
      return (await client.query(`SELECT id, name, kyc_verified_by FROM organisations WHERE id IN ('ORG-D46', 'ORG-D47') ORDER BY id`)).rows;
    })).toEqual([{ id: 'ORG-D46', name: 'ORG-D46', kyc_verified_by: [world.actors.mofcom.orgId] }, { id: 'ORG-D47', name: 'ORG-D47', kyc_verified_by: [world.actors.bis.orgId] }]);
  });
});

describe('migration 039 over identifiers shared before it, and the re-check', () => {
  it('applies where rows share identifiers, and ledger_violations() names each later holder', async () => {
    const migration = listMigrations().find((each) => each.version === 39)!;
    const { alpha } = world.actors;
    const found = await inRolledBack(database.pool, async (client) => {
      // Back to the tables as 038 left them, with the finding's duplicates in them.
      await client.query('DROP FUNCTION organisations_identifier_once() CASCADE; DROP INDEX organisations_identifiers');
      for (const [text, values] of [
        insert('ORG-D46', { uscc: alphaUscc }, 900_001),
        insert('ORG-D47', { uscc: alphaUscc, lei: 'LEI-D' }, 900_002),
        insert('ORG-D54', { lei: 'LEI-D' }, 900_003),
      ]) await client.query(text, values);
      await client.query(manifestLinesBefore075); // the table this older migration reads
      await client.query(migration.sql);
      return (await client.query(`SELECT invariant, subject, detail FROM ledger_violations() ORDER BY subject, detail`)).rows;
    });
    const before = (kind: string, value: string, holder: string) => `identifiers.${kind} ${value} is held by organisation ${holder}, registered before it; an identifier belongs to one organisation`;
    expect(found).toEqual([
      { invariant: 'organisation-identifier', subject: 'ORG-D46', detail: before('uscc', alphaUscc, alpha.orgId) },
      { invariant: 'organisation-identifier', subject: 'ORG-D47', detail: before('uscc', alphaUscc, alpha.orgId) },
      { invariant: 'organisation-identifier', subject: 'ORG-D54', detail: before('lei', 'LEI-D', 'ORG-D47') },
    ]);
  });

  it('reports duplicates written with the trigger off, and nothing on the world’s rows', async () => {
    expect((await database.pool.query('SELECT * FROM ledger_violations()')).rows).toEqual([]);
    const found = await inRolledBack(database.pool, async (client) => {
      await writeDuplicates(client);
      return (await client.query(`SELECT subject FROM ledger_violations() WHERE invariant = 'organisation-identifier' ORDER BY subject`)).rows.map((row) => row.subject);
    });
    expect(found).toEqual(['ORG-D46', 'ORG-D47', 'ORG-D54']);
  });

  it('reports one code spelt otherwise (lower case, spaces), as rows written before the ledger spelt identifiers in capitals may hold it', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      // Written with the trigger off, as before 050 (whose trigger compares spellings as the re-check does).
      await client.query('ALTER TABLE organisations DISABLE TRIGGER organisations_identifier_once_insert');
      for (const [text, values] of [insert('ORG-S1', { lei: 'LEI-S' }, 900_011), insert('ORG-S2', { lei: 'lei-s' }, 900_012), insert('ORG-S3', { lei: ' LEI-S ' }, 900_013)]) await client.query(text, values);
      await client.query('ALTER TABLE organisations ENABLE TRIGGER organisations_identifier_once_insert');
      return (await client.query(`SELECT subject, detail FROM ledger_violations() WHERE invariant = 'organisation-identifier' ORDER BY subject`)).rows;
    });
    expect(found.map((row) => row.subject)).toEqual(['ORG-S2', 'ORG-S3']);
    expect(found[0].detail).toMatch(/is held by organisation ORG-S1,/);
  });
});

describe('finding organisations by identifier', () => {
  it('loads each holder once, beside the organisations named by id', async () => {
    const { alpha, beta, bis } = world.actors;
    const keys = emptyKeys();
    keys.organisations.add(bis.orgId).add(alpha.orgId);
    for (const [kind, value] of [['uscc', alphaUscc], ['uscc', betaUscc], ['uscc', 'NOT-HELD'], ['lei', alphaUscc]] as const) {
      keys.organisationIdentifiers.add(organisationIdentifierKey(kind, value));
    }
    const client = await database.pool.connect();
    try {
      const loaded = await loadBatchState(client, keys);
      expect(loaded.organisations.map((organisation) => organisation.id).sort()).toEqual([alpha.orgId, beta.orgId, bis.orgId].sort());
    } finally {
      client.release();
    }
  });

  // The ledger's load reads 050's index since s21 (store/batch-state-identifiers.test.ts).
  it('reads the GIN index for 039’s look-up, at 5,000 organisations, in its cached plan', async () => {
    // A PL/pgSQL function and a named statement (store/pool.ts prepared) each run a generic
    // plan once they have run a few times: the plans asked for here.
    const plans = await inRolledBack(database.pool, async (client) => {
      // The 5,000 rows go in past the trigger: their codes are distinct, and the plans are what
      // is asked. With it on, each row's look-up ran the plan this pooled connection had cached
      // from earlier tests, made over a few rows (a scan of the table), so the insert took
      // 5,000 scans of a growing table: over a minute on a busy host.
      await client.query('ALTER TABLE organisations DISABLE TRIGGER organisations_identifier_once_insert');
      await client.query(`INSERT INTO organisations (id, name, country, roles, identifiers, created_seq)
        SELECT 'ORG-G' || n, 'G' || n, 'CN', '{recipient}', jsonb_build_object('uscc', 'G' || n, 'lei', 'L' || n), 900000 + n FROM generate_series(1, 5000) AS n`);
      await client.query('ALTER TABLE organisations ENABLE TRIGGER organisations_identifier_once_insert');
      await client.query('ANALYZE organisations');
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE identifier_holder(text, jsonb, text) AS SELECT (array_agg(o.id ORDER BY o.created_seq, o.id))[1] FROM organisations o
        WHERE o.identifiers @> jsonb_build_object($1, $2) AND o.id <> $3`);
      const plan = async (sql: string) => (await client.query(`EXPLAIN ${sql}`)).rows.map((row) => row['QUERY PLAN']).join('\n');
      try {
        return [await plan(`EXECUTE identifier_holder('uscc', '"G17"', 'ORG-G1')`)];
      } finally {
        await client.query('DEALLOCATE identifier_holder');
      }
    });
    for (const plan of plans) expect(plan).toMatch(/Bitmap Index Scan on organisations_identifiers/);
  });
});

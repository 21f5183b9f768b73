/**
 * Migration 043 in the database: a reference names one licence of its authority. Its trigger
 * refuses a licence, new or with its reference or authority changed, under a spelling
 * (licence_reference_key: trimmed, ASCII letters in lower case) its authority already gave
 * another; licences that already share one (written before it) stay and keep being written,
 * and the re-check names them; the index serves the trigger's look-up and the ledger's load by
 * reference. The ledger's side is in ledger/handlers/licences-terms.test.ts. Writes here run in
 * transactions rolled back.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { RowCache } from '../ledger/row-cache.ts';
import { referenceSpelling } from '../ledger/handlers/licences.ts';
import { emptyKeys, licenceReferenceKey } from './batch-keys.ts';
import { licencesByReferenceSql, loadBatchState } from './batch-state.ts';
import { listMigrations } from './migrate.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** A draft copy of one of the world's licences (BIS's export licence unless `of` says), under another id and reference. */
function copyOf(id: string, reference: string, seq: number, of: 'export' | 'import' = 'export'): [string, unknown[]] {
  return [`INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units,
      valid_from, valid_to, conditions, riders, status, allocated_units, shipped_units, demo, created_seq, updated_seq)
    SELECT $1, 1, $2, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units,
      valid_from, valid_to, conditions, riders, 'draft', 0, 0, false, $3, $3 FROM licences WHERE id = $4`,
  [id, reference, seq, of === 'export' ? world.exportLicenceId : world.importLicenceId]];
}

/** The statement's error, or undefined; a refused statement is undone (a savepoint), the rest of the transaction kept. */
async function refusalOf(client: PoolClient, [text, values]: [string, unknown[]]): Promise<{ code: string; message: string } | undefined> {
  await client.query('SAVEPOINT statement');
  try {
    await client.query(text, values);
    await client.query('RELEASE SAVEPOINT statement');
    return undefined;
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT statement');
    return { code: (error as { code: string }).code, message: (error as Error).message };
  }
}

const held = (id: string, reference: string, authority: string, holder: string, heldAs: string) =>
  `licence ${id} has reference "${reference}" of authority ${authority}, which licence ${holder} holds (as "${heldAs}"); an authority's reference names one licence (compared in NFKC, every dash as "-", without white space and without regard to the case of ASCII letters)`;

/**
 * The checks at COMMIT of a licence made (its version, 030; its allocations' sum, 023) off, for
 * a transaction that writes licences by hand and then alters tables: ALTER TABLE and CREATE
 * INDEX refuse a table with such checks pending. The transaction is rolled back, never committed.
 */
async function commitChecksOff(client: PoolClient): Promise<void> {
  await client.query('ALTER TABLE licences DISABLE TRIGGER licences_match_version_insert, DISABLE TRIGGER licences_check_sum_insert');
}

/** Licences that share references, written with 043's insert trigger off, as a database before 043 may hold them. */
async function writeDuplicates(client: PoolClient): Promise<void> {
  await commitChecksOff(client);
  await client.query('ALTER TABLE licences DISABLE TRIGGER licences_reference_once_insert');
  for (const statement of [copyOf('L-D1', 'BIS-2026-0001', 900_001), copyOf('L-D2', ' bis-2026-0001', 900_002), copyOf('L-D3', 'BIS-DUP', 900_003), copyOf('L-D4', 'BIS-DUP', 900_004)]) {
    await client.query(...statement);
  }
  await client.query('ALTER TABLE licences ENABLE TRIGGER licences_reference_once_insert');
}

describe('the database’s rule: one licence of an authority per reference (043)', () => {
  it('refuses a new licence under a reference its authority gave, in any case or with spaces around, naming the holder', async () => {
    const bis = world.actors.bis.orgId;
    const found = await inRolledBack(database.pool, async (client) => [
      await refusalOf(client, copyOf('L-X1', 'BIS-2026-0001', 900_001)),
      await refusalOf(client, copyOf('L-X1', '\u00a0bis-2026-0001\t', 900_001)),
      // Another authority's licence under the same reference, and a reference that differs in more than case, are no duplicates.
      await refusalOf(client, copyOf('L-X2', 'BIS-2026-0001', 900_002, 'import')),
      await refusalOf(client, copyOf('L-X3', 'BIS-2026-0001-A', 900_003)),
      // Letters other than A to Z keep their case: É and é are two spellings (see licence_reference_key).
      await refusalOf(client, copyOf('L-X4', 'BIS-ÉTÉ', 900_004)),
      await refusalOf(client, copyOf('L-X5', 'BIS-été', 900_005)),
    ]);
    expect(found).toEqual([
      { code: '23505', message: held('L-X1', 'BIS-2026-0001', bis, world.exportLicenceId, 'BIS-2026-0001') },
      { code: '23505', message: held('L-X1', '\u00a0bis-2026-0001\t', bis, world.exportLicenceId, 'BIS-2026-0001') },
      undefined, undefined, undefined, undefined,
    ]);
  });

  it('refuses two licences under one reference written by one statement, as a batch writes them', async () => {
    const found = await inRolledBack(database.pool, async (client) => refusalOf(client, [`INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units,
        valid_from, valid_to, conditions, riders, status, allocated_units, shipped_units, demo, created_seq, updated_seq)
      SELECT 'L-Y' || n, 1, 'BIS-TWICE', authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units,
        valid_from, valid_to, conditions, riders, 'draft', 0, 0, false, 900000 + n, 900000 + n FROM licences, generate_series(1, 2) AS n WHERE id = $1`, [world.exportLicenceId]]));
    expect(found).toMatchObject({ code: '23505', message: expect.stringMatching(/^licence L-Y[12] has reference "BIS-TWICE" of authority .*, which licence L-Y[12] holds/) });
  });

  it('refuses a reference changed by hand to one its authority gave, and lets every other write of a licence through', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      // 030 refuses any change of terms without a new version first; off, to reach this rule.
      await client.query('ALTER TABLE licences DISABLE TRIGGER licences_terms_follow_versions');
      await client.query(...copyOf('L-Z1', 'BIS-Z1', 900_001));
      return [
        await refusalOf(client, [`UPDATE licences SET reference = 'bis-2026-0001' WHERE id = 'L-Z1'`, []]),
        await refusalOf(client, [`UPDATE licences SET reference = 'BIS-Z1-RENAMED' WHERE id = 'L-Z1'`, []]),
        await refusalOf(client, [`UPDATE licences SET status = 'issued', updated_seq = 900002 WHERE id = 'L-Z1'`, []]),
      ];
    });
    expect(found[0]).toMatchObject({ code: '23505', message: expect.stringContaining(`which licence ${world.exportLicenceId} holds`) });
    expect(found.slice(1)).toEqual([undefined, undefined]);
  });

  it('keeps licences that shared a reference before it writable: their other changes go through', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      await writeDuplicates(client);
      // Written back whole, as a batch's upsert writes a licence's status and counts.
      return refusalOf(client, [`INSERT INTO licences SELECT * FROM licences WHERE id = 'L-D4'
        ON CONFLICT (id) DO UPDATE SET reference = EXCLUDED.reference, status = 'issued', updated_seq = 900010`, []]);
    });
    expect(found).toBeUndefined();
  });

  it('spells a reference as the ledger does, for every character JavaScript trims and letters beyond ASCII', async () => {
    const spaces = '\t\n\u000b\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff';
    const samples = [`${spaces}BIS-A${spaces}`, 'MOFCOM-JK-2026-000128', '商务部〔2026〕第128号', 'Ǆ-ÉTÉ-ß-İ-Ω', ' a\u200bB ', 'ＡＢＣ', `x${spaces}y`];
    const { rows } = await database.pool.query<{ key: string }>('SELECT licence_reference_key(r) AS key FROM unnest($1::text[]) WITH ORDINALITY AS s(r, n) ORDER BY n', [samples]);
    expect(rows.map((row) => row.key)).toEqual(samples.map(referenceSpelling));
  });
});

describe('migration 043 over references shared before it, and the re-check', () => {
  it('applies where licences share references, and ledger_violations() names each later holder', async () => {
    const migration = listMigrations().find((each) => each.version === 43)!;
    const bis = world.actors.bis.orgId;
    const found = await inRolledBack(database.pool, async (client) => {
      // Back to the tables as 042 left them (the listing only grows: its guard off to take the part out), with duplicates in them.
      await client.query('DROP FUNCTION licences_reference_once() CASCADE; DROP FUNCTION licence_reference_key(text) CASCADE; DROP FUNCTION ledger_check_licence_references()');
      await client.query('ALTER TABLE ledger_checks DISABLE TRIGGER ledger_checks_only_grow');
      await client.query(`DELETE FROM ledger_checks WHERE part = 'ledger_check_licence_references'`);
      await client.query('ALTER TABLE ledger_checks ENABLE TRIGGER ledger_checks_only_grow');
      await commitChecksOff(client);
      for (const statement of [copyOf('L-D1', 'BIS-2026-0001', 900_001), copyOf('L-D2', ' bis-2026-0001', 900_002), copyOf('L-D3', 'BIS-DUP', 900_003), copyOf('L-D4', 'BIS-DUP', 900_004)]) {
        await client.query(...statement);
      }
      await client.query(migration.sql);
      return (await client.query(`SELECT invariant, subject, detail FROM ledger_violations() WHERE invariant = 'licence-reference' ORDER BY subject`)).rows;
    });
    const before = (reference: string, holder: string, heldAs: string) => `reference ${reference} of authority ${bis} is held by licence ${holder} (as ${heldAs}), made before it; an authority's reference names one licence`;
    expect(found).toEqual([
      { invariant: 'licence-reference', subject: 'L-D1', detail: before('BIS-2026-0001', world.exportLicenceId, 'BIS-2026-0001') },
      { invariant: 'licence-reference', subject: 'L-D2', detail: before(' bis-2026-0001', world.exportLicenceId, 'BIS-2026-0001') },
      { invariant: 'licence-reference', subject: 'L-D4', detail: before('BIS-DUP', 'L-D3', 'BIS-DUP') },
    ]);
  });

  it('reports duplicates written with the trigger off, and nothing on the world’s rows', async () => {
    expect((await database.pool.query(`SELECT * FROM ledger_violations() WHERE invariant = 'licence-reference'`)).rows).toEqual([]);
    const found = await inRolledBack(database.pool, async (client) => {
      await writeDuplicates(client);
      return (await client.query(`SELECT subject FROM ledger_violations() WHERE invariant = 'licence-reference' ORDER BY subject`)).rows.map((row) => row.subject);
    });
    expect(found).toEqual(['L-D1', 'L-D2', 'L-D4']);
  });
});

describe('finding licences by reference, and every allocation of a licence', () => {
  it('loads each licence its authority gave a reference, in any spelling, beside those named by id', async () => {
    const { bis, mofcom } = world.actors;
    const keys = emptyKeys();
    keys.licences.add(world.importLicenceId);
    for (const [authority, reference] of [[bis.orgId, ' bis-2026-0001 '], [bis.orgId, 'MOFCOM-2026-0001'], [mofcom.orgId, 'MOFCOM-2026-0001'], [bis.orgId, 'NOT-GIVEN']] as const) {
      keys.licenceReferences.add(licenceReferenceKey(authority, reference));
    }
    const client = await database.pool.connect();
    try {
      const loaded = await loadBatchState(client, keys);
      expect(loaded.licences.map((licence) => licence.id).sort()).toEqual([world.exportLicenceId, world.importLicenceId].sort());
    } finally {
      client.release();
    }
  });

  it('loads every allocation of a licence an amendment shortens, and a row cache answers neither look-up', async () => {
    const keys = emptyKeys();
    keys.allocationsOfLicences.add(world.exportLicenceId);
    const client = await database.pool.connect();
    try {
      const loaded = await loadBatchState(client, keys);
      expect(loaded.allocations.map((allocation) => allocation.id).sort()).toEqual([world.allocations.alphaExport, world.allocations.betaExport].sort());
      expect(loaded.licences.map((licence) => licence.id)).toEqual([world.exportLicenceId]);
      const cache = new RowCache();
      const head = { size: 1, root: Buffer.alloc(32) };
      cache.remember(loaded, head);
      const byId = emptyKeys();
      byId.licences.add(world.exportLicenceId);
      expect(cache.lookup(byId)).not.toBeNull();
      expect(cache.lookup(keys)).toBeNull();
      const byReference = emptyKeys();
      byReference.licenceReferences.add(licenceReferenceKey(world.actors.bis.orgId, 'BIS-2026-0001'));
      expect(cache.lookup(byReference)).toBeNull();
    } finally {
      client.release();
    }
  });

  it('reads licences_authority_reference for the trigger’s look-up and the load, at 5,000 licences, in their cached plans', async () => {
    const plans = await inRolledBack(database.pool, async (client) => {
      // Past the trigger: the references are distinct, and the plans are what is asked (039's test says why).
      await commitChecksOff(client);
      await client.query('ALTER TABLE licences DISABLE TRIGGER licences_reference_once_insert');
      await client.query(`INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units,
          valid_from, valid_to, conditions, riders, status, allocated_units, shipped_units, demo, created_seq, updated_seq)
        SELECT 'L-G' || n, 1, 'BIS-G-' || n, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units,
          valid_from, valid_to, conditions, riders, 'draft', 0, 0, false, 900000 + n, 900000 + n FROM licences, generate_series(1, 5000) AS n WHERE id = $1`, [world.exportLicenceId]);
      await client.query('ALTER TABLE licences ENABLE TRIGGER licences_reference_once_insert');
      await client.query('ANALYZE licences');
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE reference_holder(text, text, text) AS SELECT (array_agg(l.id ORDER BY l.created_seq, l.id))[1] FROM licences l
        WHERE l.authority_org_id = $1 AND licence_reference_key(l.reference) = licence_reference_key($2) AND l.id <> $3`);
      await client.query(`PREPARE reference_load(json) AS ${licencesByReferenceSql}`);
      const plan = async (sql: string) => (await client.query(`EXPLAIN ${sql}`)).rows.map((row) => row['QUERY PLAN']).join('\n');
      try {
        const load = JSON.stringify([{ authority: world.actors.bis.orgId, reference: 'bis-g-17' }]);
        return [await plan(`EXECUTE reference_holder('${world.actors.bis.orgId}', 'BIS-G-17', 'L-G1')`), await plan(`EXECUTE reference_load('${load}')`)];
      } finally {
        await client.query('DEALLOCATE reference_holder; DEALLOCATE reference_load');
      }
    });
    for (const plan of plans) expect(plan).toMatch(/Index (Only )?Scan using licences_authority_reference|Bitmap Index Scan on licences_authority_reference/);
  });
});

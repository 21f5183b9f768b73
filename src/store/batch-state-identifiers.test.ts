/**
 * The ledger's load by identifier (store/batch-state.ts organisationsByIdentifierSql) by
 * migration 050's spelling: rows stored before the schema spelt identifiers so are found for
 * the code in its one spelling, and the look-up probes 050's GIN index, as the trigger does
 * (s21 ledger review, finding 2). The ledger's refusal is in ledger/handlers/identities.test.ts.
 * Writes here run in transactions rolled back.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { worldPerFile } from '../../test/world.ts';
import { identifierSpelling } from '../ledger/schemas.ts';
import { emptyKeys, organisationIdentifierKey } from './batch-keys.ts';
import { loadBatchState, organisationsByIdentifierSql } from './batch-state.ts';

let database: TestDatabase;

worldPerFile((_made, madeDatabase) => {
  database = madeDatabase;
});

const insert = (id: string, identifiers: Record<string, string>, seq: number): [string, unknown[]] =>
  [`INSERT INTO organisations (id, name, country, roles, identifiers, created_seq) VALUES ($1, $1, 'US', '{recipient}', $2, $3)`, [id, JSON.stringify(identifiers), seq]];

describe('the load by identifier, by 050’s spelling', () => {
  it('finds rows stored in older spellings for the code in its one spelling, of the same kind only', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      for (const [id, identifiers, seq] of [
        ['ORG-OLD1', { duns: '15-048-3782', vat: 'de 123456789' }, 900_001], ['ORG-OLD2', { lei: 'HWUP KR0M POU8 FGXB T394' }, 900_002],
        ['ORG-OLD3', { uid: 'CHE-123.456.789' }, 900_003], ['ORG-OLD4', { cnpj: '12.345.678/0001-95' }, 900_004], ['ORG-OLD5', { lei: '150483782' }, 900_005],
      ] as const) await client.query(...insert(id, identifiers, seq));
      const keys = emptyKeys();
      for (const [kind, value] of [['duns', '150483782'], ['vat', 'DE123456789'], ['lei', 'HWUPKR0MPOU8FGXBT394'], ['uid', 'CHE123456789'], ['cnpj', '12345678000195']]) {
        keys.organisationIdentifiers.add(organisationIdentifierKey(kind!, identifierSpelling(value!)));
      }
      return (await loadBatchState(client, keys)).organisations.map((organisation) => organisation.id).sort();
    });
    // ORG-OLD5 holds the DUNS number's digits as an LEI: another kind, another identifier.
    expect(found).toEqual(['ORG-OLD1', 'ORG-OLD2', 'ORG-OLD3', 'ORG-OLD4']);
  });

  it('probes organisations_identifier_keys (migration 050) at 5,000 organisations, in its cached plan', async () => {
    const plan = await inRolledBack(database.pool, async (client) => {
      // Past the trigger, as constraints-039.test.ts writes them: their codes are distinct,
      // and the plan is what is asked.
      await client.query('ALTER TABLE organisations DISABLE TRIGGER organisations_identifier_once_insert');
      await client.query(`INSERT INTO organisations (id, name, country, roles, identifiers, created_seq)
        SELECT 'ORG-G' || n, 'G' || n, 'CN', '{recipient}', jsonb_build_object('uscc', 'G' || n, 'lei', 'L-' || n), 900000 + n FROM generate_series(1, 5000) AS n`);
      await client.query('ALTER TABLE organisations ENABLE TRIGGER organisations_identifier_once_insert');
      await client.query('ANALYZE organisations');
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE identifier_load(json) AS ${organisationsByIdentifierSql}`);
      try {
        return (await client.query(`EXPLAIN EXECUTE identifier_load('[{"kind":"uscc","value":"G17"},{"kind":"lei","value":"L18"}]')`)).rows.map((row) => row['QUERY PLAN']).join('\n');
      } finally {
        await client.query('DEALLOCATE identifier_load');
      }
    });
    expect(plan).toMatch(/Bitmap Index Scan on organisations_identifier_keys/);
  });
});

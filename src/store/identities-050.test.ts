/**
 * Migration 050 in the database: a model, an identifier and a reference compared as the
 * ledger compares them (s21 identity review, findings 2, 3 and 4). The folds in SQL against
 * the ledger's over one table of spellings, character for character; then each trigger
 * refusing a spelling the old folds let through, naming the holder, and the re-check naming
 * rows that read alike from before. The ledger's side is in
 * ledger/handlers/identities.test.ts. Writes here run in transactions rolled back.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { identityProblem, newerUnicodeProblem } from '../core/text.ts';
import { referenceSpelling } from '../ledger/handlers/licences.ts';
import { identifierSpelling } from '../ledger/schemas.ts';
import { modelReading } from '../policy/catalogue.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/**
 * Spellings for every fold: each listed character at the edges of its ranges, full width,
 * compatibility forms, letters beyond ASCII (which keep their case), astral characters.
 */
const spellings = [
  'BIS-D-2026-H200-0417', 'bis-d-2026-h200-0417', ' BIS-D-2026-H200-0417\u00a0', 'BIS\u2013D-2026-H200-0417',
  'BIS\u2011D\u20112026\u2011H200\u20110417', 'BIS-D-2026-H200-0417\u200b', 'BIS-D-２０２６-H200-0417', 'BIS-D-2026 -H200-0417',
  'BIS-D-2026-\u041d200-0417', 'MOFCOM-JK-2026-０００１２８', '商务部〔2026〕第128号', 'Ǆ-ÉTÉ-ß-İ-Ω-ǅ', 'ＡＢＣ ａｂｃ',
  'Gaudi 3', 'GAUDI 3', 'Gaudi-3', 'Gaudi ３', 'Gaudi\u00a03', 'Gaudi_3', 'H200\u00adSXM', 'H200\u2060SXM', 'H200\ufeffSXM',
  'x\t\n\u000b\f\r \u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000y', 'a\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180f\u200f\u202a\u202e\u2060\u206f\u3164b',
  'a\ufe00\ufe0f\uffa0\ufff0\ufff8\u{1bca0}\u{1bca3}\u{1d173}\u{1d17a}\u{e0000}\u{e0fff}b', 'a-\u058a\u05be\u1400\u1806\u2010\u2015\u2212\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u2e5d\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\u{10ead}b',
  '\ufb01\u2126\u00b5\u212b\u3392\u2460', '5493 001K JTII GC8Y 1R12', '５４９３００１kjtiigc8y1r12', '15-048-3782', 'A.B.C', '\u{1d400}\u{1d41a}',
  // Codes as printed (s21 ledger review, finding 3): dots and slashes in groups, full width, "&", Latin letters.
  'CHE-123.456.789', 'CHE123456789', 'ＣＨＥ－１２３．４５６．７８９', '12.345.678/0001-95', '2001/012345/07', 'a／b\u2024c', 'A&B010101AAA', 'ａ＆ｂ',
  'MUÑ850101AB1', 'mun\u0303850101ab1', 'de 123.456.789', 'BÜ 12',
];

async function folded(sqlFunction: string): Promise<string[]> {
  const { rows } = await database.pool.query<{ folded: string }>(`SELECT ${sqlFunction}(s) AS folded FROM unnest($1::text[]) WITH ORDINALITY AS t(s, n) ORDER BY n`, [spellings]);
  return rows.map((row) => row.folded);
}

describe('the folds of 050, in SQL and in the ledger, character for character', () => {
  it('reads a model as policy/catalogue.ts modelReading does', async () => {
    expect(await folded('product_model_reading')).toEqual(spellings.map(modelReading));
    expect(new Set(['Gaudi 3', 'GAUDI 3', 'Gaudi-3', 'Gaudi ３', 'Gaudi\u00a03', 'Gaudi_3'].map(modelReading))).toEqual(new Set(['gaudi3']));
  });

  it('spells a reference as ledger/handlers/licences.ts referenceSpelling does', async () => {
    expect(await folded('licence_reference_key')).toEqual(spellings.map(referenceSpelling));
    expect(new Set(spellings.slice(0, 8).map(referenceSpelling))).toEqual(new Set(['bis-d-2026-h200-0417']));
  });

  it('spells an identifier as ledger/schemas.ts identifierSpelling does', async () => {
    expect(await folded('organisation_identifier_spelling')).toEqual(spellings.map(identifierSpelling));
    expect(identifierSpelling('５４９３００１kjtiigc8y1r12')).toBe('5493001KJTIIGC8Y1R12');
    expect(new Set(['CHE-123.456.789', 'CHE123456789', 'ＣＨＥ－１２３．４５６．７８９'].map(identifierSpelling))).toEqual(new Set(['CHE123456789']));
  });

  it('folds every code point alike, but those the schema refuses in an identity field (s21 ledger review, finding 4)', async () => {
    // Every character of the BMP and the compatibility ideographs of plane 2, between two letters
    // (past U+FFFF the schema takes CJK ideographs alone, which have no decomposition). Where
    // this Node's Unicode is newer than the database's, the two folds part on what it added;
    // each such character must be one the schema refuses (newerUnicodeProblem, or as
    // invisible or a line break). A Node or a server with newer tables may part on more: list
    // those in core/text.ts newerNormalisingCharacters.
    const inputs: string[] = [];
    for (const [first, last] of [[0x1, 0xd7ff], [0xe000, 0xffff], [0x2f800, 0x2fa1f]] as const) {
      for (let codePoint = first; codePoint <= last; codePoint++) inputs.push(`a${String.fromCodePoint(codePoint)}B`);
    }
    const parted: string[] = [];
    for (const [sqlFunction, fold] of [['product_model_reading', modelReading], ['licence_reference_key', referenceSpelling], ['organisation_identifier_spelling', identifierSpelling]] as const) {
      const { rows } = await database.pool.query<{ folded: string }>(`SELECT ${sqlFunction}(s) AS folded FROM unnest($1::text[]) WITH ORDINALITY AS t(s, n) ORDER BY n`, [inputs]);
      rows.forEach((row, index) => {
        const input = inputs[index]!;
        if (row.folded !== fold(input) && identityProblem(input) === undefined && newerUnicodeProblem(input) === undefined) parted.push(`${sqlFunction} U+${input.codePointAt(1)!.toString(16).toUpperCase()}`);
      });
    }
    expect(parted).toEqual([]);
  });
});

/** The statement's error, or undefined; a refused statement is undone (a savepoint), the rest of the transaction kept. */
async function refusalOf(client: PoolClient, text: string, values: unknown[]): Promise<{ code: string; message: string } | undefined> {
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

const product = (id: string, model: string, seq: number): [string, unknown[]] =>
  [`INSERT INTO products (id, model, vendor, parameters, eccn, created_seq) SELECT $1, $2, vendor, parameters, eccn, $3 FROM products WHERE id = $4`, [id, model, seq, world.productId]];
const organisation = (id: string, identifiers: Record<string, string>, seq: number): [string, unknown[]] =>
  [`INSERT INTO organisations (id, name, country, roles, identifiers, created_seq) VALUES ($1, $1, 'GB', '{auditor}', $2, $3)`, [id, JSON.stringify(identifiers), seq]];

describe('the triggers of 050', () => {
  it('refuses a product whose model reads as a registered one, naming it, and takes another model', async () => {
    const found = await inRolledBack(database.pool, async (client) => [
      await refusalOf(client, ...product('PRD-X1', 'h200-sxm', 900_001)),
      await refusalOf(client, ...product('PRD-X2', 'H200\u200b SXM', 900_002)),
      await refusalOf(client, ...product('PRD-X3', 'H200 NVL', 900_003)),
    ]);
    expect(found).toEqual([
      { code: '23505', message: `product PRD-X1 has model "h200-sxm", which reads as product ${world.productId}'s "H200 SXM"; a model is registered once (compared in NFKC, without regard to the case of ASCII letters, white space, dashes, underscores or invisible characters)` },
      { code: '23505', message: expect.stringContaining(`which reads as product ${world.productId}'s "H200 SXM"`) },
      undefined,
    ]);
  });

  it('refuses a model changed to read as a registered one, which the ledger never writes, and takes a change to another model', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      await client.query(...product('PRD-X4', 'Other Model', 900_004));
      // Since 063 a product never changes (products_keep_registration refuses it first); with
      // that trigger off, as an owner may switch it, 050's still holds.
      await client.query('ALTER TABLE products DISABLE TRIGGER products_keep_registration');
      return [
        await refusalOf(client, "UPDATE products SET model = 'h200-sxm' WHERE id = 'PRD-X4'", []),
        await refusalOf(client, "UPDATE products SET model = 'Other Model 2' WHERE id = 'PRD-X4'", []),
      ];
    });
    expect(found).toEqual([
      { code: '23505', message: expect.stringContaining(`product PRD-X4 has model "h200-sxm", which reads as product ${world.productId}'s "H200 SXM"`) },
      undefined,
    ]);
  });

  it('refuses a licence under a reference its authority gave in another dash, width or spacing', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      await client.query('ALTER TABLE licences DISABLE TRIGGER licences_match_version_insert, DISABLE TRIGGER licences_check_sum_insert');
      const results = [];
      for (const [id, reference] of [['L-X1', 'BIS\u20132026\u20130001'], ['L-X2', 'BIS-２０２６-0001'], ['L-X3', 'BIS-2026 -0001'], ['L-X4', 'BIS-2026-0002']] as const) {
        results.push(await refusalOf(client, `INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units,
            valid_from, valid_to, conditions, riders, status, allocated_units, shipped_units, demo, created_seq, updated_seq)
          SELECT $1, 1, $2, authority_org_id, direction, holder_org_id, product_ids, origin, destination, authorised_units,
            valid_from, valid_to, conditions, riders, 'draft', 0, 0, false, 900001, 900001 FROM licences WHERE id = $3`, [id, reference, world.exportLicenceId]));
      }
      return results;
    });
    expect(found.slice(0, 3).map((refusal) => refusal?.code)).toEqual(['23505', '23505', '23505']);
    expect(found[0]?.message).toContain(`which licence ${world.exportLicenceId} holds (as "BIS-2026-0001"); an authority's reference names one licence (compared in NFKC, every dash as "-", without white space and without regard to the case of ASCII letters)`);
    expect(found[3]).toBeUndefined();
  });

  it('refuses an identifier another organisation holds in another spelling, of the same kind only', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      await client.query(...organisation('ORG-L1', { lei: '5493001KJTIIGC8Y1R12' }, 900_001));
      await client.query(...organisation('ORG-U1', { uid: 'CHE-123.456.789' }, 900_002));
      return [
        await refusalOf(client, ...organisation('ORG-L2', { lei: '5493 001K JTII GC8Y 1R12' }, 900_003)),
        await refusalOf(client, ...organisation('ORG-L3', { lei: '５４９３００１kjtiigc8y1r12' }, 900_004)),
        await refusalOf(client, ...organisation('ORG-L4', { lei: '5493001KJTII\ufeffGC8Y1R12' }, 900_005)),
        await refusalOf(client, ...organisation('ORG-U2', { uid: 'CHE123456789' }, 900_006)),
        await refusalOf(client, ...organisation('ORG-L5', { duns: '5493001KJTIIGC8Y1R12' }, 900_007)),
      ];
    });
    expect(found[0]).toEqual({ code: '23505', message: 'organisation ORG-L2 has identifiers.lei "5493 001K JTII GC8Y 1R12", which organisation ORG-L1 holds; an identifier belongs to one organisation' });
    expect(found.slice(1, 3).map((refusal) => refusal?.code)).toEqual(['23505', '23505']);
    // A Swiss UID with and without its dots (s21 ledger review, finding 3).
    expect(found[3]).toEqual({ code: '23505', message: 'organisation ORG-U2 has identifiers.uid "CHE123456789", which organisation ORG-U1 holds; an identifier belongs to one organisation' });
    expect(found[4]).toBeUndefined();
  });
});

describe('the re-check over rows that read alike from before 050', () => {
  it('names each later product and organisation, against the first (licences: 043’s part, over the new spelling)', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      await client.query('ALTER TABLE products DISABLE TRIGGER products_model_reading_once_insert');
      await client.query('ALTER TABLE organisations DISABLE TRIGGER organisations_identifier_once_insert');
      await client.query(...product('PRD-D1', 'Gaudi 3', 900_001));
      await client.query(...product('PRD-D2', 'GAUDI\u00a03', 900_002));
      await client.query(...organisation('ORG-D1', { lei: '5493001KJTIIGC8Y1R12' }, 900_003));
      await client.query(...organisation('ORG-D2', { lei: '5493-001K-JTII-GC8Y-1R12' }, 900_004));
      return (await client.query(`SELECT invariant, subject, detail FROM ledger_violations() WHERE invariant IN ('organisation-identifier', 'product-model') ORDER BY invariant, subject`)).rows;
    });
    expect(found).toEqual([
      { invariant: 'organisation-identifier', subject: 'ORG-D2', detail: 'identifiers.lei 5493-001K-JTII-GC8Y-1R12 is held by organisation ORG-D1, registered before it; an identifier belongs to one organisation' },
      { invariant: 'product-model', subject: 'PRD-D2', detail: 'model GAUDI\u00a03 reads as product PRD-D1\'s Gaudi 3, registered before it; a model is registered once' },
    ]);
  });
});

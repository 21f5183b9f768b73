/**
 * When are two strings the same thing? (s21 identity review.) Through the ledger: a model with
 * an invisible or look-alike letter is refused, not registered beside the catalogue's (finding
 * 1); a model is registered once however it is spelt (2); an identifier is held once however
 * it is spelt, a USCC only as uscc, an LEI with its check digits (3); an authority's reference
 * names one licence however it is spelt (4); free text keeps no C1 or bidi control (6). The
 * database's side is in store/identities-050.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';
import { makeLei } from '../../core/lei.ts';
import { makeUscc } from '../../core/uscc.ts';
import { modelReading } from '../../policy/catalogue.ts';
import type { Answer } from '../ledger.ts';
import { systemActor } from '../permissions.ts';
import type { CommandRequest } from '../schemas.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const refusal = (answer: Answer) => (answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, details: answer.error.details });
const parameters = { denseTops: 100, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4_800, memoryGb: 141, designedForDatacenter: true };
const product = (model: string, vendor = 'NVIDIA'): CommandRequest<'product.register'> => ({ model, vendor, parameters });
const registerProduct = (model: string, vendor?: string) => world.ledger.submit('product.register', product(model, vendor), world.actors.bis);
const organisation = (name: string, identifiers: Record<string, string>): CommandRequest<'organisation.register'> => ({ name, country: 'US', roles: ['recipient'], identifiers });
const registerOrganisation = (name: string, identifiers: Record<string, string>) => world.ledger.submit('organisation.register', organisation(name, identifiers), systemActor);
const productsReading = async (reading: string) => (await database.pool.query<{ id: string }>('SELECT id FROM products WHERE product_model_reading(model) = $1 ORDER BY created_seq', [reading])).rows.map((row) => row.id);

describe('finding 1: the catalogue check is not bypassed by an invisible or look-alike letter', () => {
  it('refuses a model with an invisible character, naming its code point', async () => {
    for (const [model, codePoint] of [['H200\u200b SXM', 'U+200B'], ['H200\u00adSXM', 'U+00AD'], ['H200\u2060SXM', 'U+2060'], ['H200 SXM\ufeff', 'U+FEFF']] as const) {
      expect(refusal(await registerProduct(model)), codePoint).toMatchObject({
        code: 'invalid_input', rule: 'schema', message: expect.stringContaining(`model: must be one line of visible characters: invisible character ${codePoint} at position`),
      });
    }
  });

  it('refuses a model that mixes Latin letters with Cyrillic or Greek ones, naming the letter', async () => {
    expect(refusal(await registerProduct('\u041d200 SXM'))).toMatchObject({
      code: 'invalid_input', rule: 'mixed-script',
      message: 'model "Н200 SXM" mixes Latin letters with Cyrillic ones: "Н" (U+041D) at position 0 looks like a Latin letter but is not one; write the model in one of the two (rule mixed-script)',
    });
    expect(refusal(await registerProduct('H2\u039f0 SXM'))).toMatchObject({ rule: 'mixed-script', message: expect.stringContaining('Greek ones: "Ο" (U+039F) at position 2') });
    // One script, or Latin with Han, is a model like any other.
    expectOk(await registerProduct('Эльбрус-16С', 'МЦСТ'));
    expectOk(await registerProduct('昇腾 Ascend 950', 'Huawei'));
  });

  it('reads a model without its invisible characters, as the catalogue and the database compare it', () => {
    for (const model of ['H200\u200b SXM', 'H200\u00adSXM', 'H200\u2060SXM', 'H200\ufeffSXM', 'H200\u180eSXM', 'H200\u2212SXM']) expect(modelReading(model), model).toBe('h200sxm');
  });

  it('still tells a spelling of a listed model to register it as listed (product-catalogue)', async () => {
    for (const model of ['h200 sxm', 'Ｈ２００ SXM', 'H200\u2011SXM']) {
      expect(refusal(await registerProduct(model)), model).toMatchObject({ code: 'invalid_input', rule: 'product-catalogue', message: expect.stringContaining('reads as "H200 SXM" of the accelerator catalogue') });
    }
  });
});

describe('finding 2: a model is registered once, however it is spelt', () => {
  it('refuses a registration that reads as a registered product, in one batch, naming the product', async () => {
    const answers = await Promise.all(['Gaudi 3', 'GAUDI 3', 'Gaudi-3', 'Gaudi ３', 'Gaudi\u00a03'].map((model) => registerProduct(model, 'Intel')));
    const first = String(expectOk(answers[0]!).productId);
    for (const answer of answers.slice(1)) {
      expect(refusal(answer)).toMatchObject({
        code: 'conflict', rule: 'product-model', details: { productId: first },
        message: expect.stringMatching(new RegExp(`is already registered, as product ${first} by ${world.actors.bis.orgId} \\(as "Gaudi 3", which reads the same`)),
      });
    }
    expect(await productsReading('gaudi3')).toEqual([first]);
  });
});

describe('finding 3: an identifier is held once, however it is spelt', () => {
  const lei = '5493001KJTIIGC8Y1R12';

  it('holds an LEI in one spelling, and refuses it again in groups, in lower case or in full width', async () => {
    const first = String(expectOk(await registerOrganisation('LEI Holder Ltd', { lei: '5493 001K JTII GC8Y 1R12' })).organisationId);
    const stored = await database.pool.query<{ lei: string }>("SELECT identifiers->>'lei' AS lei FROM organisations WHERE id = $1", [first]);
    expect(stored.rows[0]!.lei).toBe(lei);
    for (const spelt of [lei, lei.toLowerCase(), '５４９３００１KJTIIGC8Y1R12', '5493-001K-JTII-GC8Y-1R12']) {
      expect(refusal(await registerOrganisation('LEI Squatter Ltd', { lei: spelt })), spelt).toMatchObject({
        code: 'conflict', rule: 'organisation-identifier', details: { kind: 'lei', value: lei, organisationId: first },
      });
    }
  });

  it('refuses a character outside its alphabet, naming it', async () => {
    for (const [spelt, named] of [[`${lei}\u200b`, '"\u200b" (U+200B) at position 20'], ['5493001KJTII\ufeffGC8Y1R12', '(U+FEFF) at position 12'], ['5493001KJTIIGC8Y1R1\u0417', '"З" (U+0417, a Cyrillic letter) at position 19']] as const) {
      expect(refusal(await registerOrganisation('LEI Squatter Ltd', { lei: spelt })), named).toMatchObject({
        code: 'invalid_input', rule: 'schema', message: expect.stringContaining(`${named} once in NFKC and capitals; an identifier holds A-Z, 0-9, "&" and Latin letters`),
      });
    }
  });

  it('finds a code stored before 050 in another spelling, and refuses it itself, naming the holder (s21 ledger review, finding 2)', async () => {
    // As the release before stored them: in groups, with dots, in lower case. The ledger loaded
    // candidates by the exact text (039's index), missed these, and the database's trigger then
    // failed the batch under rule unique, naming an organisation never made.
    await database.pool.query(`INSERT INTO organisations (id, name, country, roles, identifiers, created_seq) VALUES
      ('ORG-OLD1', 'Old DUNS', 'US', '{recipient}', '{"duns": "15-048-3782", "vat": "de 123456789"}', 900001),
      ('ORG-OLD2', 'Old LEI', 'US', '{recipient}', '{"lei": "HWUP KR0M POU8 FGXB T394"}', 900002),
      ('ORG-OLD3', 'Old UID', 'CH', '{recipient}', '{"uid": "CHE-123.456.789"}', 900003)`);
    for (const [kind, spelt, holder, held] of [
      ['duns', '150483782', 'ORG-OLD1', '15-048-3782'], ['vat', 'DE 123456789', 'ORG-OLD1', 'de 123456789'],
      ['lei', 'HWUPKR0MPOU8FGXBT394', 'ORG-OLD2', 'HWUP KR0M POU8 FGXB T394'], ['uid', 'CHE123456789', 'ORG-OLD3', 'CHE-123.456.789'],
    ] as const) {
      expect(refusal(await registerOrganisation('Again Ltd', { [kind]: spelt })), kind).toMatchObject({
        code: 'conflict', rule: 'organisation-identifier', details: { kind, organisationId: holder },
        message: expect.stringContaining(`is already held by organisation ${holder} (as ${JSON.stringify(held)})`),
      });
    }
  });

  it('drops the dots and slashes of a code as printed, and takes "&" and Latin letters (s21 ledger review, finding 3)', async () => {
    const swiss = String(expectOk(await registerOrganisation('Swiss A AG', { uid: 'CHE-123.456.780' })).organisationId);
    for (const spelt of ['CHE123456780', 'CHE 123 456 780', 'che-123/456/780']) {
      expect(refusal(await registerOrganisation('Swiss B AG', { uid: spelt })), spelt).toMatchObject({ rule: 'organisation-identifier', details: { organisationId: swiss } });
    }
    for (const [kind, spelt, stored] of [['cnpj', '12.345.678/0001-95', '12345678000195'], ['company_registration', '2001/012345/07', '200101234507'], ['rfc', 'A&B010101AAA', 'A&B010101AAA'], ['rfc', 'muñ850101ab1', 'MUÑ850101AB1']] as const) {
      const id = String(expectOk(await registerOrganisation(`Holder of ${spelt}`, { [kind]: spelt })).organisationId);
      const { rows } = await database.pool.query<{ value: string }>('SELECT identifiers->>$2 AS value FROM organisations WHERE id = $1', [id, kind]);
      expect(rows[0]!.value, spelt).toBe(stored);
    }
  });

  it('refuses an LEI whose check digits fail, and a USCC given under another kind', async () => {
    expect(refusal(await registerOrganisation('Typo Ltd', { lei: '5493001KJTIIGC8Y1R13' }))).toMatchObject({
      code: 'invalid_input', rule: 'lei-check', message: expect.stringContaining('identifiers.lei 5493001KJTIIGC8Y1R13 is not a valid Legal Entity Identifier (ISO 17442): its check digits'),
    });
    expectOk(await registerOrganisation('Checked Ltd', { lei: makeLei('529900T8BM49AURSDO') }));
    // The world's alpha holds this code as uscc (test/world.ts).
    const uscc = makeUscc('91110000MA0000001');
    expect(refusal(await registerOrganisation('Shell Ltd', { social_credit_code: uscc }))).toMatchObject({
      code: 'invalid_input', rule: 'uscc-kind', details: { kind: 'social_credit_code', value: uscc },
      message: `identifiers.social_credit_code ${uscc} is a Unified Social Credit Code: give it as identifiers.uscc (the CLI's --uscc), under which it is compared with the codes other organisations hold`,
    });
  });
});

describe('finding 4: an authority’s reference names one licence, however it is spelt', () => {
  const licence = (reference: string): CommandRequest<'licence.create'> => ({
    reference, direction: 'export', holderId: world.actors.exporter.orgId, productIds: [world.productId], origin: 'US', destination: 'CN',
    authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  });

  it('refuses a reference the authority gave, in another dash, width or spacing, naming the licence', async () => {
    // The world's export licence is BIS-2026-0001.
    for (const reference of ['BIS\u20132026-0001', 'BIS\u20112026\u20110001', 'BIS-２０２６-0001', 'BIS-2026 -0001', 'ｂｉｓ－2026－0001', 'BIS\u22122026-0001']) {
      expect(refusal(await world.ledger.submit('licence.create', licence(reference), world.actors.bis)), reference).toMatchObject({
        code: 'conflict', rule: 'licence-reference', details: { licenceId: world.exportLicenceId, heldAs: 'BIS-2026-0001' },
        message: expect.stringContaining('(as "BIS-2026-0001": references are compared in NFKC, every dash as "-", without white space and without regard to the case of ASCII letters)'),
      });
    }
  });

  it('refuses a reference with an invisible character or a bidi control, naming its code point', async () => {
    expect(refusal(await world.ledger.submit('licence.create', licence('BIS-2026-0001\u200b'), world.actors.bis))).toMatchObject({
      code: 'invalid_input', message: expect.stringContaining('reference: must be one line of visible characters: invisible character U+200B at position 13'),
    });
    expect(refusal(await world.ledger.submit('licence.create', licence('BIS-2026-\u202e1000'), world.actors.bis))).toMatchObject({
      code: 'invalid_input', message: expect.stringContaining('reference: must be free of control characters and bidi controls, and well-formed Unicode: bidi control U+202E at position 9'),
    });
  });
});

describe('the ledger and the database read an identity field alike (s21 ledger review, finding 4)', () => {
  it('refuses a reference or model with a character an older database folds otherwise, naming it', async () => {
    // U+1CCF1, an outlined 1 (Unicode 16): NFKC reads it as 1 in this code, not in PostgreSQL
    // 17's tables, so the ledger took this for BIS-2026-0001 and the database for a reference of its own.
    expect(refusal(await world.ledger.submit('licence.create', {
      reference: 'BIS-2026-000\u{1ccf1}', direction: 'export', holderId: world.actors.exporter.orgId, productIds: [world.productId], origin: 'US', destination: 'CN',
      authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
    }, world.actors.bis))).toMatchObject({ code: 'invalid_input', message: expect.stringContaining('reference: has the character U+1CCF1 at position 12, which an older database (Unicode 13.0: PostgreSQL 13) may fold otherwise than the ledger; past U+FFFF only CJK ideographs are taken') });
    expect(refusal(await registerProduct('X\ua7f1 100'))).toMatchObject({ code: 'invalid_input', message: expect.stringContaining('model: has the character U+A7F1 at position 1, which an older database') });
    // CJK ideographs past U+FFFF (Extension B) are read alike by every Unicode.
    expectOk(await registerProduct('\u{20000}腾 950', 'Huawei'));
  });
});

describe('joiners and bidi marks in names (s21 ledger review, finding 5)', () => {
  it('takes a vendor spelt with a zero-width non-joiner or joiner, and refuses either in a model', async () => {
    expectOk(await registerProduct('NPU-X1', 'پردازش\u200cگران'));
    expectOk(await registerProduct('NPU-X2', 'शक्ति\u200d सेमी'));
    expect(refusal(await registerProduct('NPU\u200c-X3', 'Acme'))).toMatchObject({ code: 'invalid_input', message: expect.stringContaining('invisible character U+200C at position 3') });
  });

  it('takes a right-to-left mark in an organisation\'s name, and still refuses an override', async () => {
    expectOk(await world.ledger.submit('organisation.register', { name: 'شركة الرقائق\u200f ABC', country: 'AE', roles: ['recipient'] }, systemActor));
    expectOk(await world.ledger.submit('organisation.register', { name: 'Acme\u200e \u061cLtd', country: 'AE', roles: ['recipient'] }, systemActor));
    expect(refusal(await world.ledger.submit('organisation.register', { name: 'Acme\u2067Ltd', country: 'AE', roles: ['recipient'] }, systemActor))).toMatchObject({ message: expect.stringContaining('bidi control U+2067 at position 4') });
  });
});

describe('finding 6: free text keeps no C1 control or bidi control, and one kind of line ending', () => {
  it('refuses a C1 control in a name and a bidi control in an address, naming each', async () => {
    expect(refusal(await world.ledger.submit('organisation.register', { name: 'Acme\u009b31mRed', country: 'US', roles: ['recipient'] }, systemActor))).toMatchObject({
      code: 'invalid_input', message: expect.stringContaining('name: must be free of control characters and bidi controls, and well-formed Unicode: control character U+009B at position 4'),
    });
    expect(refusal(await world.ledger.submit('organisation.register', { name: 'Acme', country: 'US', roles: ['recipient'], address: '1 Main St\u0085Suite 2' }, systemActor))).toMatchObject({
      message: expect.stringContaining('control character U+0085 at position 9'),
    });
    expect(refusal(await world.ledger.submit('organisation.register', { name: 'Acme', country: 'US', roles: ['recipient'], address: '1 Main St, Suite 2\u202eevil' }, systemActor))).toMatchObject({
      message: expect.stringContaining('bidi control U+202E at position 18'),
    });
  });

  it('stores CRLF and CR as LF', async () => {
    const id = String(expectOk(await world.ledger.submit('organisation.register', { name: 'Acme Lines', country: 'US', roles: ['recipient'], address: '1 Main St\r\nSuite 2\rFloor 3' }, systemActor)).organisationId);
    const { rows } = await database.pool.query<{ address: string }>('SELECT address FROM organisations WHERE id = $1', [id]);
    expect(rows[0]!.address).toBe('1 Main St\nSuite 2\nFloor 3');
  });
});

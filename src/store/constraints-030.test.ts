/**
 * Migration 030: a licence's terms and parties are those its newest version records, and its
 * versions are written once (s13 review, amend finding 2). The first part writes around the
 * ledger, straight into the tables, in transactions that are always rolled back; before 030
 * the database took every one of these writes and ledger_violations() reported none. The
 * second part runs every ledger path that writes a licence, its versions or its parties
 * through the same triggers, and must see each accepted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, type Statement } from '../../test/support/rolled-back.ts';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const refusal = (...statements: Statement[]) => firstRefusal(database.pool, ...statements);

const cap = { id: 'cap-2', text: 'At most 2 units a shipment', kind: 'max_units_per_shipment' as const, value: 2 };
/** An issued export licence with a per-shipment cap of 2 and a value, naming alpha as end user; amended once (riders), so at version 2. */
let cappedId: string;

beforeAll(async () => {
  const { run, actors, productId } = world;
  cappedId = String((await run('licence.create', {
    reference: 'BIS-030', direction: 'export', holderId: actors.exporter.orgId, parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }],
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, valueMinor: 500_000, currency: 'USD',
    validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z', conditions: [cap],
  }, actors.bis)).licenceId);
  await run('licence.issue', { licenceId: cappedId }, actors.bis);
  await run('licence.amend', { licenceId: cappedId, reason: 'rider', riders: ['Re-export needs a licence'] }, actors.bis);
});

/** Version 2's snapshot of the capped licence, changed: a version row as a forger would write it (an event of its own for each version, as 058 holds). */
const forgedVersion = (version: number, changes: Record<string, unknown>): Statement => [
  `INSERT INTO licence_versions (licence_id, version, snapshot, seq)
   SELECT licence_id, $2, snapshot || jsonb_build_object('version', $2::int) || $3::jsonb, 999990 + $2 FROM licence_versions WHERE licence_id = $1 AND version = 2`,
  [cappedId, version, JSON.stringify(changes)],
];

/** The re-check's licence-versions rows after the statements, in a transaction that is always rolled back. */
async function violationsAfter(...statements: Statement[]): Promise<Array<{ subject: string; detail: string }>> {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    for (const [text, values] of statements) await client.query(text, values ?? []);
    return (await client.query<{ subject: string; detail: string }>(`SELECT subject, detail FROM ledger_violations() WHERE invariant = 'licence-versions' ORDER BY subject`)).rows;
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

describe('the review’s rewrites (P6), each refused', () => {
  it('refuses a stored version rewritten', async () => {
    expect(await refusal([`UPDATE licence_versions SET snapshot = jsonb_set(snapshot, '{authorised_units}', '999999') WHERE licence_id = $1 AND version = 1`, [cappedId]]))
      .toEqual({ code: '23001', message: 'the ledger only grows: licence_versions rows are never changed' });
  });

  it('refuses a cap dropped and the validity stretched in place, naming both changes', async () => {
    expect(await refusal([`UPDATE licences SET conditions = '[]', valid_to = '2099-01-01' WHERE id = $1`, [cappedId]])).toEqual({
      code: '23514',
      message: `licence ${cappedId} is at version 2; its terms change only with a new version, as an amendment makes one (valid_to 2027-01-01 00:00:00+00 → 2099-01-01 00:00:00+00, `
        + 'conditions [{"id": "cap-2", "kind": "max_units_per_shipment", "text": "At most 2 units a shipment", "value": 2}] → [])',
    });
  });

  it('refuses a named party deleted, one row or all of them', async () => {
    const { importLicenceId, actors } = world;
    expect(await refusal([`DELETE FROM licence_parties WHERE licence_id = $1 AND org_id = $2`, [importLicenceId, actors.beta.orgId]])).toEqual({
      code: '23514',
      message: `licence ${importLicenceId} no longer names ${actors.beta.orgId} as consignee, but its version 1 does; a licence's named parties change only with a new version, as an amendment makes one`,
    });
    const all = await refusal([`DELETE FROM licence_parties WHERE licence_id = $1`, [importLicenceId]]);
    expect(all?.code, all?.message ?? 'the database accepted it').toBe('23514');
    expect(all?.message).toMatch(new RegExp(`^licence ${importLicenceId} no longer names ORG-\\d+ as (consignee|supplier), but its version 1 does; `));
  });
});

describe('a licence’s terms change only with a new version', () => {
  it('refuses each term changed in place, naming it', async () => {
    const { actors } = world;
    for (const [set, words] of [
      [`product_ids = array_append(product_ids, 'PRD-X')`, /\(products \{PRD-\d+\} → \{PRD-\d+,PRD-X\}\)$/],
      ['authorised_units = 99', /\(authorised units 100 → 99\)$/],
      [`value_minor = 1, currency = 'EUR'`, /\(value 500000 USD → 1 EUR\)$/],
      [`valid_from = '2025-01-01'`, /\(valid_from 2026-01-01 00:00:00\+00 → 2025-01-01 00:00:00\+00\)$/],
      [`riders = '[]'`, /\(riders \["Re-export needs a licence"\] → \[\]\)$/],
      [`holder_org_id = '${actors.alpha.orgId}'`, new RegExp(`\\(holder ${actors.exporter.orgId} → ${actors.alpha.orgId}\\)$`)],
      [`reference = 'BIS-FORGED'`, /\(reference BIS-030 → BIS-FORGED\)$/],
      // The export licence's destination is not its authority's country (025 takes it); this rule does not.
      [`destination = 'GB'`, /\(route US to CN → US to GB\)$/],
      ['demo = true', /\(demo false → true\)$/],
    ] as const) {
      const error = await refusal([`UPDATE licences SET ${set} WHERE id = $1`, [cappedId]]);
      expect(error?.code, `${set}: ${error?.message ?? 'the database accepted it'}`).toBe('23514');
      expect(error?.message).toMatch(new RegExp(`^licence ${cappedId} is at version 2; its terms change only with a new version, as an amendment makes one `));
      expect(error?.message).toMatch(words);
    }
  });

  it('takes the row written back whole, as a batch upsert writes it, with only status and counts changed', async () => {
    expect(await refusal([`INSERT INTO licences SELECT * FROM licences WHERE id = $1
      ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, reference = EXCLUDED.reference, product_ids = EXCLUDED.product_ids,
        authorised_units = EXCLUDED.authorised_units, value_minor = EXCLUDED.value_minor, currency = EXCLUDED.currency, valid_from = EXCLUDED.valid_from,
        valid_to = EXCLUDED.valid_to, conditions = EXCLUDED.conditions, riders = EXCLUDED.riders, status = 'suspended', updated_seq = 999999`, [cappedId]])).toBeUndefined();
  });

  it('refuses a version taken back', async () => {
    expect(await refusal([`UPDATE licences SET version = 1, riders = '[]' WHERE id = $1`, [cappedId]])).toEqual({
      code: '23514',
      message: `licence ${cappedId} is at version 2; it cannot go back to version 1 (every amendment adds a version, and none is taken back)`,
    });
  });

  it('refuses, at COMMIT, a new version that is not stored, skips one, or records other terms', async () => {
    const words = (version: number, mismatch: string) =>
      `licence ${cappedId} does not match its version ${version}: ${mismatch} (a licence's terms, its parties among them, are those its newest version records, and an amendment writes both)`;
    const unstored = await refusal([`UPDATE licences SET version = 3, conditions = '[]' WHERE id = $1`, [cappedId]]);
    expect(unstored).toEqual({ code: '23514', message: words(3, 'it is at version 3, but its stored versions are 1 to 2') });
    const skipped = await refusal(forgedVersion(4, { conditions: [] }), [`UPDATE licences SET version = 4, conditions = '[]' WHERE id = $1`, [cappedId]]);
    expect(skipped).toEqual({ code: '23514', message: words(4, 'it is at version 4, but its stored versions are 3 of 1 to 4') });
    const other = await refusal(forgedVersion(3, {}), [`UPDATE licences SET version = 3, conditions = '[]', valid_to = '2099-01-01' WHERE id = $1`, [cappedId]]);
    expect(other).toEqual({
      code: '23514',
      message: words(3, 'valid_to 2099-01-01 00:00:00+00, recorded 2027-01-01T00:00:00.000Z, '
        + 'conditions [], recorded [{"id": "cap-2", "kind": "max_units_per_shipment", "text": "At most 2 units a shipment", "value": 2}]'),
    });
  });

  it('refuses a version stored ahead of its licence', async () => {
    const ahead = await refusal(forgedVersion(3, { conditions: [] }));
    expect(ahead?.code, ahead?.message ?? 'the database accepted it').toBe('23514');
    expect(ahead?.message).toMatch(new RegExp(`^licence ${cappedId} does not match its version 2: it is at version 2, but its stored versions are 1 to 3 `));
  });

  it('takes new terms written with the version that records them, one version up or two in one write', async () => {
    // What an amendment writes, by hand: the rule is the version, not a ban on change.
    expect(await refusal(forgedVersion(3, { conditions: [] }), [`UPDATE licences SET version = 3, conditions = '[]' WHERE id = $1`, [cappedId]])).toBeUndefined();
    // A batch that amends a licence twice writes its row once, two versions up.
    expect(await refusal(forgedVersion(3, { riders: [] }), forgedVersion(4, { riders: [], conditions: [] }),
      [`UPDATE licences SET version = 4, riders = '[]', conditions = '[]' WHERE id = $1`, [cappedId]])).toBeUndefined();
  });

  it('refuses a licence made without its first version', async () => {
    const made = await refusal([`INSERT INTO licences SELECT 'L-FORGED', 1, reference || '-FORGED', authority_org_id, direction, holder_org_id, product_ids, origin, destination,
      authorised_units, value_minor, currency, valid_from, valid_to, conditions, riders, 'draft', 0, 0, demo, 999999, 999999 FROM licences WHERE id = $1`, [cappedId]]);
    expect(made).toEqual({
      code: '23514',
      message: `licence L-FORGED does not match its version 1: it is at version 1, but its stored versions are none (a licence's terms, its parties among them, are those its newest version records, and an amendment writes both)`,
    });
  });
});

describe('a licence’s named parties change only with a new version', () => {
  it('refuses a party added, and a party changed or truncated', async () => {
    const { exportLicenceId, actors } = world;
    expect(await refusal([`INSERT INTO licence_parties (licence_id, org_id, role) VALUES ($1, $2, 'consignee')`, [exportLicenceId, actors.auditor.orgId]])).toEqual({
      code: '23514',
      message: `licence ${exportLicenceId} names ${actors.auditor.orgId} as consignee, but its version 1 does not; a licence's named parties change only with a new version, as an amendment makes one`,
    });
    expect(await refusal([`UPDATE licence_parties SET role = 'supplier' WHERE licence_id = $1`, [exportLicenceId]])).toEqual({
      code: '23001', message: "licence_parties rows are never changed: a licence's named parties change only with a new version, as an amendment makes one",
    });
    expect(await refusal(['TRUNCATE licence_parties'])).toEqual({
      code: '23001', message: "licence_parties rows are never truncated: a licence's named parties change only with a new version, as an amendment makes one",
    });
  });

  it('takes the parties replaced as an amendment replaces them, with the version that names them', async () => {
    const { actors } = world;
    const parties = [{ licence_id: cappedId, org_id: actors.beta.orgId, role: 'end_user' }];
    expect(await refusal(
      ['DELETE FROM licence_parties WHERE licence_id = $1', [cappedId]],
      forgedVersion(3, { parties }),
      ['UPDATE licences SET version = 3 WHERE id = $1', [cappedId]],
      [`INSERT INTO licence_parties (licence_id, org_id, role) VALUES ($1, $2, 'end_user')`, [cappedId, actors.beta.orgId]],
    )).toBeUndefined();
    // The version names beta, the rows still alpha.
    const stale = await refusal(forgedVersion(3, { parties }), ['UPDATE licences SET version = 3 WHERE id = $1', [cappedId]]);
    expect(stale?.message ?? 'the database accepted it').toMatch(
      new RegExp(`^licence ${cappedId} does not match its version 3: parties \\[${actors.alpha.orgId} end_user\\], recorded \\[${actors.beta.orgId} end_user\\] `));
  });
});

describe('the re-check (ledger_violations) finds a licence that no longer matches its newest version', () => {
  const unguarded: Statement = [`ALTER TABLE licences DISABLE TRIGGER licences_terms_follow_versions;
    ALTER TABLE licence_versions DISABLE TRIGGER licence_versions_no_change;
    ALTER TABLE licence_parties DISABLE TRIGGER licence_parties_follow_versions`];

  it('reports terms rewritten, a version rewritten and a party dropped, with the triggers off', async () => {
    const { importLicenceId, actors } = world;
    // Parties are listed sorted as text, the rows' and the version's alike (ORG-2 before ORG-4).
    expect(actors.exporter.orgId < actors.beta.orgId).toBe(true);
    expect(await violationsAfter()).toEqual([]);
    expect(await violationsAfter(unguarded, [`UPDATE licences SET conditions = '[]', valid_to = '2099-01-01' WHERE id = $1`, [cappedId]])).toEqual([{
      subject: cappedId,
      detail: 'does not match its version 2: valid_to 2099-01-01 00:00:00+00, recorded 2027-01-01T00:00:00.000Z, '
        + 'conditions [], recorded [{"id": "cap-2", "kind": "max_units_per_shipment", "text": "At most 2 units a shipment", "value": 2}]',
    }]);
    expect(await violationsAfter(unguarded, [`UPDATE licence_versions SET snapshot = jsonb_set(snapshot, '{authorised_units}', '999999') WHERE licence_id = $1 AND version = 2`, [cappedId]]))
      .toEqual([{ subject: cappedId, detail: 'does not match its version 2: authorised units 100, recorded 999999' }]);
    expect(await violationsAfter(unguarded, [`DELETE FROM licence_parties WHERE licence_id = $1 AND org_id = $2`, [importLicenceId, actors.beta.orgId]])).toEqual([{
      subject: importLicenceId,
      detail: `does not match its version 1: parties [${actors.exporter.orgId} supplier], recorded [${actors.exporter.orgId} supplier, ${actors.beta.orgId} consignee]`,
    }]);
  });
});

describe('the ledger’s own writes go through', () => {
  /** A licence's versions as stored: each number, and what each records of the licence. */
  async function versionsOf(licenceId: string): Promise<Array<{ version: number; authorised_units: number; status: string }>> {
    return (await database.pool.query(
      `SELECT version, (snapshot ->> 'authorised_units')::int AS authorised_units, snapshot ->> 'status' AS status FROM licence_versions WHERE licence_id = $1 ORDER BY version`,
      [licenceId])).rows;
  }
  const statusOf = async (licenceId: string) => (await database.pool.query<{ status: string; version: number }>('SELECT status, version FROM licences WHERE id = $1', [licenceId])).rows[0]!;

  it('creates, issues, amends each term, suspends, reinstates, allocates, exhausts by shipping, surrenders and revokes', async () => {
    const { run, ledger, actors, productId } = world;
    const secondProductId = String((await run('product.register', {
      model: 'H20', vendor: 'NVIDIA', parameters: { denseTops: 296, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4000, designedForDatacenter: true },
    }, actors.bis)).productId);
    const common = { productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 4, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z' };
    const exportId = String((await run('licence.create', {
      ...common, reference: 'BIS-030-FLOW', direction: 'export', holderId: actors.exporter.orgId, valueMinor: 1_000, currency: 'USD',
      parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }],
    }, actors.bis)).licenceId);
    const importId = String((await run('licence.create', {
      ...common, reference: 'MOFCOM-030-FLOW', direction: 'import', holderId: actors.alpha.orgId, parties: [{ organisationId: actors.exporter.orgId, role: 'supplier' }],
    }, actors.mofcom)).licenceId);
    await run('licence.issue', { licenceId: exportId }, actors.bis);
    await run('licence.issue', { licenceId: importId }, actors.mofcom);
    const amend = (input: Record<string, unknown>) => run('licence.amend', { licenceId: exportId, reason: 'calibration', ...input } as never, actors.bis);
    await amend({ authorisedUnits: 6 });
    await amend({ validTo: '2026-12-01T00:00:00Z' });
    await amend({ productIds: [productId, secondProductId] });
    await amend({ conditions: [{ id: 'cap-3', text: 'At most 4 units a shipment', kind: 'max_units_per_shipment', value: 4 }] });
    await amend({ riders: ['Annual report due'] });
    await amend({ parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }, { organisationId: actors.beta.orgId, role: 'consignee' }] });
    await amend({ parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }] });
    // Two amendments sent at once: a batch that takes both writes the row once, two versions up.
    for (const answer of await Promise.all([
      ledger.submit('licence.amend', { licenceId: exportId, reason: 'one', riders: ['One'] }, actors.bis),
      ledger.submit('licence.amend', { licenceId: exportId, reason: 'two', riders: ['Two'] }, actors.bis),
    ])) expectOk(answer);
    expect(await statusOf(exportId)).toEqual({ status: 'issued', version: 10 });
    expect((await versionsOf(exportId)).map((row) => row.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    await run('licence.suspend', { licenceId: exportId }, actors.bis);
    await run('licence.reinstate', { licenceId: exportId }, actors.bis);
    const exportAllocationId = String((await run('allocation.create', { licenceId: exportId, recipientId: actors.alpha.orgId, units: 2 }, actors.bis)).allocationId);
    await run('allocation.resize', { allocationId: exportAllocationId, units: 4 }, actors.bis);
    const importAllocationId = String((await run('allocation.create', { licenceId: importId, recipientId: actors.alpha.orgId, units: 4 }, actors.mofcom)).allocationId);
    // Shipping all 4 units exhausts the import licence (its counts and status, no version).
    const shipmentId = String((await run('shipment.book', {
      exportAllocationId, importAllocationId, productId, units: 4, deadline: '2026-03-01T00:00:00Z', serials: ['F30-1', 'F30-2', 'F30-3', 'F30-4'],
    }, actors.exporter)).shipmentId);
    await run('shipment.ship', { shipmentId }, actors.exporter);
    expect(await statusOf(importId)).toEqual({ status: 'exhausted', version: 1 });
    // Amended up it is issued again, down to what has shipped exhausted again: each a version.
    await run('licence.amend', { licenceId: importId, reason: 'more', authorisedUnits: 5 }, actors.mofcom);
    await run('licence.amend', { licenceId: importId, reason: 'less', authorisedUnits: 4 }, actors.mofcom);
    expect(await versionsOf(importId)).toEqual([
      { version: 1, authorised_units: 4, status: 'draft' }, { version: 2, authorised_units: 5, status: 'issued' }, { version: 3, authorised_units: 4, status: 'exhausted' },
    ]);
    await run('licence.surrender', { licenceId: importId }, actors.alpha);
    await run('licence.revoke', { licenceId: exportId }, actors.bis);
    expect([await statusOf(importId), await statusOf(exportId)]).toEqual([{ status: 'surrendered', version: 3 }, { status: 'revoked', version: 10 }]);
    expect(await ledger.violations()).toEqual([]);
  });

  it('expires a licence by the sweep', async () => {
    const { run, ledger, clock, actors, productId } = world;
    const licenceId = String((await run('licence.create', {
      reference: 'BIS-030-SHORT', direction: 'export', holderId: actors.exporter.orgId, productIds: [productId], origin: 'US', destination: 'CN',
      authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2026-02-02T00:00:00Z',
    }, actors.bis)).licenceId);
    await run('licence.issue', { licenceId }, actors.bis);
    clock.advanceMs(2 * 24 * 60 * 60 * 1000);
    expectOk(await ledger.sweep());
    expect(await statusOf(licenceId)).toEqual({ status: 'expired', version: 1 });
    expect(await ledger.violations()).toEqual([]);
  });
});

/**
 * The holes of the s12 review, closed by migration 028: each case writes around the ledger,
 * straight into the tables, in a transaction that is always rolled back, and must be refused
 * with its SQLSTATE and words (before 028 the database took every one of them). The
 * ledger's own writes through the same triggers are the rest of the suite's.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, inRolledBack, partOnChangedState, statusInStep, type Statement } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** A booked shipment of 2 units to alpha, both listed (F28-1, F28-2). */
let bookedId: string;
/** A booked shipment of 2 units to alpha, nothing listed yet. */
let emptyId: string;
/** Delivered to beta, one unit (D28-BETA); another to alpha (D28-ALPHA): their manifests are no longer live. */
let deliveredBetaId: string;
/** An issued import licence of 1,000,000 units with nothing allocated: room to move an allocation to. */
let spareImportLicenceId: string;

const refusal = (...statements: Statement[]) => firstRefusal(database.pool, ...statements);

async function book(recipient: 'alpha' | 'beta', units: number, serials: string[]): Promise<string> {
  const { run, actors, productId, allocations } = world;
  return String((await run('shipment.book', {
    exportAllocationId: allocations[`${recipient}Export`], importAllocationId: allocations[`${recipient}Import`], productId,
    units, deadline: '2026-03-01T00:00:00Z', ...(serials.length > 0 ? { serials } : {}),
  }, actors.exporter)).shipmentId);
}

async function delivered(recipient: 'alpha' | 'beta', serial: string): Promise<string> {
  const { run, actors } = world;
  const shipmentId = await book(recipient, 1, [serial]);
  await run('shipment.ship', { shipmentId }, actors.exporter);
  await run('shipment.clear', { shipmentId }, actors.mofcom);
  await run('shipment.deliver', { shipmentId }, actors[recipient]);
  return shipmentId;
}

beforeAll(async () => {
  const { run, actors, productId } = world;
  bookedId = await book('alpha', 2, ['F28-1', 'F28-2']);
  emptyId = await book('alpha', 2, []);
  await delivered('alpha', 'D28-ALPHA');
  deliveredBetaId = await delivered('beta', 'D28-BETA');
  spareImportLicenceId = String((await run('licence.create', {
    reference: 'MOFCOM-028', direction: 'import', holderId: actors.alpha.orgId, parties: [{ organisationId: actors.exporter.orgId, role: 'supplier' }],
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 1_000_000, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  }, actors.mofcom)).licenceId);
  await run('licence.issue', { licenceId: spareImportLicenceId }, actors.mofcom);
});

describe('H1: a shipment keeps what it was booked as, an allocation its licence and recipient', () => {
  it('refuses a change of units, product, booking date, allocation, exporter or route, naming what changed', async () => {
    const cases: Array<[string, unknown[], RegExp]> = [
      ['UPDATE shipments SET units = 6000 WHERE id = $1', [bookedId], /\(units 2 → 6000\)$/],
      [`UPDATE shipments SET booked_at = '2001-01-01T00:00:00Z' WHERE id = $1`, [bookedId], /\(booked_at 2026-02-01 00:00:00\+00 → 2001-01-01 00:00:00\+00\)$/],
      ['UPDATE shipments SET import_allocation_id = $2 WHERE id = $1', [bookedId, world.allocations.betaImport], new RegExp(`\\(import allocation ${world.allocations.alphaImport} → ${world.allocations.betaImport}\\)$`)],
      ['UPDATE shipments SET export_allocation_id = $2 WHERE id = $1', [bookedId, world.allocations.betaExport], new RegExp(`\\(export allocation ${world.allocations.alphaExport} → ${world.allocations.betaExport}\\)$`)],
      ['UPDATE shipments SET exporter_org_id = $2 WHERE id = $1', [bookedId, world.actors.auditor.orgId], new RegExp(`\\(exporter ${world.actors.exporter.orgId} → ${world.actors.auditor.orgId}\\)$`)],
      [`UPDATE shipments SET destination = 'GB' WHERE id = $1`, [bookedId], /\(route US to CN → US to GB\)$/],
    ];
    for (const [sql, values, words] of cases) {
      const error = await refusal([sql, values]);
      expect(error?.code, `${sql}: ${error?.message ?? 'the database accepted it'}`).toBe('23514');
      expect(error?.message).toMatch(new RegExp(`^shipment ${bookedId} keeps what it was booked as; it cannot change `));
      expect(error?.message).toMatch(words);
    }
    // A product that neither licence names, made for the purpose (as the review did).
    const product: Statement = [`INSERT INTO products (id, model, vendor, parameters, eccn, created_seq) VALUES ('PRD-X', 'X-1', 'X', '{}', 'EAR99', 999999)`];
    const error = await refusal(product, [`UPDATE shipments SET product_id = 'PRD-X' WHERE id = $1`, [bookedId]]);
    expect(error).toEqual({ code: '23514', message: `shipment ${bookedId} keeps what it was booked as; it cannot change (product ${world.productId} → PRD-X)` });
  });

  it('takes the row written back whole, as a batch upsert writes it, with only status and counts changed', async () => {
    expect(await refusal([`INSERT INTO shipments SELECT * FROM shipments WHERE id = $1
      ON CONFLICT (id) DO UPDATE SET units = EXCLUDED.units, product_id = EXCLUDED.product_id, booked_at = EXCLUDED.booked_at,
        export_allocation_id = EXCLUDED.export_allocation_id, import_allocation_id = EXCLUDED.import_allocation_id,
        status = 'cancelled', updated_seq = 999999`, [bookedId]],
      // Its units released on both sides, as the batch releases them (migration 070).
      ['UPDATE allocations a SET reserved_units = a.reserved_units - s.units FROM shipments s WHERE s.id = $1 AND a.id IN (s.export_allocation_id, s.import_allocation_id)', [bookedId]])).toBeUndefined();
  });

  it("refuses an allocation moved to another licence (its counters moved with it) or another recipient", async () => {
    const moved = await refusal(
      ['UPDATE licences SET allocated_units = allocated_units - (SELECT units FROM allocations WHERE id = $2) WHERE id = $1', [world.importLicenceId, world.allocations.betaImport]],
      ['UPDATE licences SET allocated_units = (SELECT units FROM allocations WHERE id = $2) WHERE id = $1', [spareImportLicenceId, world.allocations.betaImport]],
      ['UPDATE allocations SET licence_id = $2 WHERE id = $1', [world.allocations.betaImport, spareImportLicenceId]],
    );
    expect(moved).toEqual({
      code: '23514',
      message: `allocation ${world.allocations.betaImport} is of licence ${world.importLicenceId} for ${world.actors.beta.orgId}; it cannot become one of licence ${spareImportLicenceId} for ${world.actors.beta.orgId} (its shipments were booked under the first)`,
    });
    const handed = await refusal(['UPDATE allocations SET recipient_org_id = $2 WHERE id = $1', [world.allocations.betaImport, world.actors.alpha.orgId]]);
    expect(handed?.code, handed?.message ?? 'the database accepted it').toBe('23514');
    expect(handed?.message).toMatch(new RegExp(`^allocation ${world.allocations.betaImport} is of licence .* for ${world.actors.beta.orgId}; it cannot become one of licence .* for ${world.actors.alpha.orgId} `));
  });
});

describe('H2: a live manifest line is a unit of its shipment, product and recipient', () => {
  // Since 075 a shipment's manifest is its units, and the lines of those that moved on: a line
  // is made live, or moved, only by moving its unit. F28-1 listed again in emptyId once bookedId
  // is cancelled, as the ledger lists a released unit, leaves its line in bookedId.
  const listedAgain = (): Statement[] => [statusInStep(bookedId, 'cancelled'), ['UPDATE units SET shipment_id = $1 WHERE serial = $2', [emptyId, 'F28-1']]];

  it('refuses a delivered unit listed again, and a unit of a booking under way listed in a second one', async () => {
    expect(await refusal(['UPDATE units SET shipment_id = $1 WHERE serial = $2', [emptyId, 'D28-ALPHA']]))
      .toEqual({ code: '23514', message: 'unit D28-ALPHA is delivered; it cannot be listed in another shipment' });
    expect(await refusal(['UPDATE units SET shipment_id = $1 WHERE serial = $2', [emptyId, 'F28-1']]))
      .toEqual({ code: '23505', message: 'unit F28-1 is live in a shipment under way; it cannot be listed in another as well' });
    // What the ledger does: a unit is listed again once its booking has ended.
    expect(await refusal(...listedAgain())).toBeUndefined();
  });

  it('keeps the line a unit leaves: the database writes it, the writer cannot write, change or delete one, and no one changes or deletes one', async () => {
    // The writer moves the unit, as the ledger does, and the database writes the line for it.
    const lines = await inRolledBack(database.writerPool, async (client) => {
      for (const [text, values] of listedAgain()) await client.query(text, values);
      return (await client.query('SELECT shipment_id, serial FROM moved_manifest_lines WHERE serial = $1', ['F28-1'])).rows;
    });
    expect(lines).toEqual([{ shipment_id: bookedId, serial: 'F28-1' }]);
    const byWriter = (...statements: Statement[]) => firstRefusal(database.writerPool, ...statements);
    const denied = { code: '42501', message: 'permission denied for table moved_manifest_lines' };
    // A line forged for a unit still in its shipment would make the manifest list it twice.
    expect(await byWriter(['INSERT INTO moved_manifest_lines (shipment_id, serial) VALUES ($1, $2)', [bookedId, 'F28-2']])).toEqual(denied);
    expect(await byWriter(...listedAgain(), ['UPDATE moved_manifest_lines SET shipment_id = $1 WHERE serial = $2', [emptyId, 'F28-1']])).toEqual(denied);
    expect(await byWriter(...listedAgain(), ['DELETE FROM moved_manifest_lines WHERE serial = $1', ['F28-1']])).toEqual(denied);
    // The owner's own mistakes are refused too (the owner can turn the trigger off; then the re-check below names it).
    expect(await refusal(...listedAgain(), ['UPDATE moved_manifest_lines SET shipment_id = $1 WHERE serial = $2', [emptyId, 'F28-1']]))
      .toEqual({ code: '23001', message: 'the ledger only grows: moved_manifest_lines rows are never changed' });
    for (const remove of ['DELETE FROM moved_manifest_lines', 'TRUNCATE moved_manifest_lines']) {
      expect(await refusal(...listedAgain(), [remove]), remove).toEqual({ code: '23001', message: 'the ledger only grows: moved_manifest_lines rows are never deleted' });
    }
  });

  it("is reported by the full re-check: another tenant's delivered unit moved into alpha's booking", async () => {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      expect((await client.query('SELECT * FROM ledger_violations()')).rows).toEqual([]);
      // As an owner who turns 019's trigger off could; the line it leaves in beta's shipment is written as ever.
      await client.query('ALTER TABLE units DISABLE TRIGGER units_keep_identity');
      await client.query(`UPDATE units SET shipment_id = $1 WHERE serial = 'D28-BETA'`, [emptyId]);
      await client.query('UPDATE shipments SET serial_count = 1 WHERE id = $1', [emptyId]);
      expect((await client.query(`SELECT shipment_id FROM moved_manifest_lines WHERE serial = 'D28-BETA'`)).rows).toEqual([{ shipment_id: deliveredBetaId }]);
      // Named once, by 020's clause; the manifests' counts still hold (beta's shipment keeps the unit's line).
      expect((await client.query('SELECT * FROM ledger_violations()')).rows).toEqual([{
        invariant: 'invariant-4', subject: 'D28-BETA', detail: `the unit is ${world.actors.beta.orgId}'s, but its shipment ${emptyId} is for ${world.actors.alpha.orgId}`,
      }]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('is reported by the re-check: a moved line with no unit, one whose unit never left, one of a booking under way, and a unit of another product in a booking under way', async () => {
    const found = await partOnChangedState(database.pool, 'ledger_check_manifest_units', async (client) => {
      await client.query(`INSERT INTO moved_manifest_lines (shipment_id, serial) VALUES ($1, 'F28-9'), ($1, 'F28-2')`, [bookedId]);
      await client.query(`INSERT INTO products (id, model, vendor, parameters, eccn, created_seq) VALUES ('PRD-X', 'X-1', 'X', '{}', 'EAR99', 999999)`);
      // D28-ALPHA's delivery has ended: its manifest is no longer live, so its product is not this clause's.
      await client.query(`UPDATE units SET product_id = 'PRD-X' WHERE serial IN ('F28-1', 'D28-ALPHA')`);
    });
    const expected = [
      { invariant: 'invariant-4', subject: bookedId, detail: 'serial F28-9 is in the manifest but has no unit' },
      { invariant: 'invariant-4', subject: bookedId, detail: 'serial F28-2 is kept as a unit that moved on, but its unit is still in this shipment' },
      // A unit leaves only a shipment that has ended: both lines are of a booking under way.
      ...['F28-9', 'F28-2'].map((serial) => ({ invariant: 'invariant-4', subject: bookedId, detail: `serial ${serial} is kept as a unit that moved on, but the shipment is booked: a unit leaves only a shipment that has ended` })),
      { invariant: 'invariant-4', subject: bookedId, detail: `serial F28-1 is live in the manifest, but its unit is of product PRD-X, not ${world.productId}` },
    ];
    expect(found).toEqual(expect.arrayContaining(expected));
    expect(found).toHaveLength(expected.length);
  });
});

describe('H3: the serial lists keep their starting point', () => {
  it('refuses an UPDATE or DELETE of event_serials_from, and a TRUNCATE of either table', async () => {
    expect(await refusal(['UPDATE event_serials_from SET seq = 1000000000'])).toEqual({ code: '23001', message: 'the ledger only grows: event_serials_from rows are never changed' });
    expect(await refusal(['DELETE FROM event_serials_from'])).toEqual({ code: '23001', message: 'the ledger only grows: event_serials_from rows are never deleted' });
    expect(await refusal(['TRUNCATE event_serials_from'])).toEqual({ code: '23001', message: 'the ledger only grows: event_serials_from rows are never deleted' });
    expect(await refusal(['TRUNCATE event_serials'])).toEqual({ code: '23001', message: 'the ledger only grows: event_serials rows are never deleted' });
  });
});

describe('H4: an event keeps the columns the API serves', () => {
  it('refuses a rewritten kind, subject, actor, time or readers, and a TRUNCATE', async () => {
    const { rows } = await database.pool.query<{ seq: string; kind: string; subject_id: string; actor: string }>(
      `SELECT seq, kind, subject_id, actor FROM events WHERE kind = 'shipment.book' AND subject_id = $1`, [bookedId]);
    const event = rows[0]!;
    for (const set of [`kind = 'shipment.cancel'`, `subject_id = 'S-47'`, `actor = 'TOK-0'`, `at = '2000-01-01T00:00:00Z'`, `org_ids = '{}'`, 'seq = seq + 1000000']) {
      const error = await refusal([`UPDATE events SET ${set} WHERE seq = $1`, [event.seq]]);
      expect(error?.code, `${set}: ${error?.message ?? 'the database accepted it'}`).toBe('23001');
      expect(error?.message).toMatch(new RegExp(`^event ${event.seq} is shipment\\.book of ${bookedId} by ${event.actor}, at .*; an event's columns never change$`));
    }
    expect(await refusal(['TRUNCATE events CASCADE'])).toEqual({ code: '23001', message: 'the ledger only grows: events rows are never deleted' });
    // The canonical bytes are the log's checks' to catch (transparency-log.test.ts tampers with them).
    expect(await refusal([`UPDATE events SET canonical = canonical || '\\x20'::bytea WHERE seq = $1`, [event.seq]])).toBeUndefined();
  });
});

describe('H5: a stored idempotency answer stays as it was stored', () => {
  it('refuses an UPDATE, a DELETE and a TRUNCATE', async () => {
    const stored: Statement = [`INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) VALUES ('ORG-028', 'k1', '\\x00', 200, '{"shipmentId":"S-1"}', now())`];
    expect(await refusal(stored, [`UPDATE idempotency_keys SET request_hash = '\\x01', response = '{"shipmentId":"S-99"}' WHERE key = 'k1'`]))
      .toEqual({ code: '23001', message: 'the ledger only grows: idempotency_keys rows are never changed' });
    expect(await refusal(stored, [`DELETE FROM idempotency_keys WHERE key = 'k1'`])).toEqual({ code: '23001', message: 'the ledger only grows: idempotency_keys rows are never deleted' });
    expect(await refusal(stored, ['TRUNCATE idempotency_keys'])).toEqual({ code: '23001', message: 'the ledger only grows: idempotency_keys rows are never deleted' });
  });
});

describe('H7: a licence is exhausted exactly when every unit has shipped, whatever column changes', () => {
  it('refuses the last units shipped with the status left issued, and units given to an exhausted licence with the status left exhausted', async () => {
    const shippedOut = await refusal(['UPDATE licences SET shipped_units = authorised_units WHERE id = $1', [spareImportLicenceId]]);
    expect(shippedOut).toEqual({
      code: '23514', message: `licence ${spareImportLicenceId} has shipped 1000000 of its 1000000 units; it cannot stay issued (a licence is exhausted exactly when every unit has shipped)`,
    });
    // Shipped units that no allocation shipped: 070's check of them off, this case is about the status that goes with them.
    const shippedUnguarded: Statement = ['ALTER TABLE licences DISABLE TRIGGER licences_note_shipped_update'];
    const exhaust: Statement = [`UPDATE licences SET shipped_units = authorised_units, status = 'exhausted' WHERE id = $1`, [spareImportLicenceId]];
    // Units changed without a new version, which migration 030 refuses on its own: off for
    // these two cases, which are about the status that goes with the units.
    const termsUnguarded: Statement = ['ALTER TABLE licences DISABLE TRIGGER licences_terms_follow_versions'];
    expect(await refusal(shippedUnguarded, exhaust)).toBeUndefined();
    expect(await refusal(shippedUnguarded, termsUnguarded, exhaust, ['UPDATE licences SET authorised_units = authorised_units + 1 WHERE id = $1', [spareImportLicenceId]])).toEqual({
      code: '23514', message: `licence ${spareImportLicenceId} has shipped 1000000 of its 1000001 units; it cannot stay exhausted (a licence is exhausted exactly when every unit has shipped)`,
    });
    // The ledger's way: the status goes with the units.
    expect(await refusal(shippedUnguarded, termsUnguarded, exhaust, [`UPDATE licences SET authorised_units = authorised_units + 1, status = 'issued' WHERE id = $1`, [spareImportLicenceId]])).toBeUndefined();
  });
});

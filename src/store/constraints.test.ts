/**
 * The database holds the invariants on its own: each case here writes around the ledger's
 * code, straight into the tables, and must be refused by a constraint or trigger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { firstRefusal, inRolledBack, insertShipments, statusInStep, type Statement } from '../../test/support/rolled-back.ts';
import { buildWorld, type World } from '../../test/world.ts';

let database: TestDatabase;
let world: World;
let shipmentId: string;
let emptyShipmentId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  const booked = await world.run('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
    units: 2, deadline: '2026-03-01T00:00:00Z', serials: ['DB-1', 'DB-2'],
  }, world.actors.exporter);
  shipmentId = String(booked.shipmentId);
  emptyShipmentId = String((await world.run('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
    units: 2, deadline: '2026-03-01T00:00:00Z',
  }, world.actors.exporter)).shipmentId);
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

/** Runs `setup` then `sql` in a transaction that is always rolled back; returns the error either raised. */
const refusal = (sql: string, values: unknown[] = [], setup: Statement[] = []) => firstRefusal(database.pool, ...setup, [sql, values]);
/** The error one statement raised, whole (its constraint too), in a transaction that is always rolled back; undefined if none. */
const errorOf = (sql: string, values: unknown[] = []) => inRolledBack(database.pool, (client) => client.query(sql, values).then(() => undefined, (error: unknown) => error));
const insertShipment = (overrides: Record<string, string> = {}) => insertShipments(world, [overrides]);

describe('database constraints, written around the ledger', () => {
  it.each([
    ['invariant 1: a licence allocated beyond its units', () => [`UPDATE licences SET allocated_units = authorised_units + 1 WHERE id = $1`, [world.exportLicenceId]], '23514'],
    ['invariant 1: an allocation the licence does not count', () => [`INSERT INTO allocations (id, licence_id, recipient_org_id, units, created_seq) VALUES ('A-X', $1, $2, 1, 999999)`, [world.exportLicenceId, world.actors.alpha.orgId]], '23514'],
    ['invariant 2: reserved and shipped beyond the allocation', () => [`UPDATE allocations SET reserved_units = units + 1 WHERE id = $1`, [world.allocations.alphaExport]], '23514'],
    ['invariant 2: a negative reservation', () => [`UPDATE allocations SET reserved_units = -1 WHERE id = $1`, [world.allocations.alphaExport]], '23514'],
    ['invariant 2: a shipment without an import-side allocation', () => insertShipment({ import_allocation_id: 'A-NOPE' }), '23503'],
    ['invariant 3: a shipment under a licence that is not issued', () => [`UPDATE licences SET status = 'suspended' WHERE id = $1; `.trim(), [world.importLicenceId]], 'setup'],
    ['invariant 3: a shipment on the wrong route', () => insertShipment({ destination: 'RU' }), '23514'],
    ['invariant 3: a shipment outside the licence validity', () => insertShipment({ booked_at: '2028-01-01T00:00:00Z', deadline: '2028-02-01T00:00:00Z' }), '23514'],
    ['invariant 3: a shipment for a recipient the allocation is not for', () => insertShipment({ recipient_org_id: world.actors.beta.orgId }), '23514'],
    ['invariant 3: an export allocation used as the import side', () => insertShipment({ export_allocation_id: world.allocations.alphaImport, import_allocation_id: world.allocations.alphaExport }), '23514'],
    // A shipment's manifest is its units (075): a serial listed live in a second shipment is its unit moved there.
    ['invariant 4: a serial live in two shipments', () => [`UPDATE units SET shipment_id = $1 WHERE serial = 'DB-1'`, [emptyShipmentId]], '23505'],
    ['invariant 4: a manifest line for no shipment', () => [`INSERT INTO units (serial, product_id, recipient_org_id, custody, shipment_id, updated_seq) VALUES ('DB-9', $1, $2, 'licensed', 'S-NOPE', 999999)`, [world.productId, world.actors.alpha.orgId]], '23503'],
    ['invariant 4: a deployed unit without a site', () => [`UPDATE units SET custody = 'deployed', ever_shipped = true WHERE serial = 'DB-1'`, []], '23514'],
    ['invariant 4: a unit at a site that does not exist', () => [`UPDATE units SET custody = 'deployed', site_id = 'SITE-NOPE', ever_shipped = true WHERE serial = 'DB-1'`, []], '23503'],
    ['invariant 6: one idempotency key answered twice', () => [`INSERT INTO idempotency_keys SELECT 'o', 'k', '\\x00', 0, '{}', now() FROM generate_series(1, 2)`, []], '23505'],
    ['the record only grows: deleting a shipment', () => [`DELETE FROM shipments WHERE id = $1`, [shipmentId]], '23001'],
  ] as Array<[string, () => [string, unknown[]], string]>)('refuses %s', async (_name, make, code) => {
    const [sql, values] = make();
    if (code === 'setup') {
      // A suspended licence: the shipment insert after it must be refused.
      const [insert, insertValues] = insertShipment();
      const client = await database.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(sql, values);
        const error = await client.query(insert, insertValues).then(() => undefined, (caught: { code: string }) => caught);
        expect(error?.code).toBe('23514');
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
      return;
    }
    const error = await refusal(sql, values);
    expect(error?.code, error?.message ?? 'the database accepted it').toBe(code);
  });

  it('accepts a well-formed shipment row (so the refusals above are about the rule, not the row)', async () => {
    const [sql, values] = insertShipment();
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(sql, values);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('checks invariant 3 for every row of a many-row insert, and names the row that breaks it', async () => {
    // Rows that share their allocations, product, parties and route are checked as a group
    // (migration 014): the one booked outside the licences' validity must still be found.
    const rows: Array<Record<string, string>> = [
      { id: 'S-X1' }, { id: 'S-X2', booked_at: '2026-02-03T00:00:00Z' }, { id: 'S-X3', booked_at: '2028-01-01T00:00:00Z', deadline: '2028-02-01T00:00:00Z' },
      { id: 'S-X4', recipient_org_id: world.actors.beta.orgId, export_allocation_id: world.allocations.betaExport, import_allocation_id: world.allocations.betaImport },
    ];
    const insertMany = (many: Array<Record<string, string>>) => refusal(...insertShipments(world, many));
    const error = await insertMany(rows);
    expect(error?.code).toBe('23514');
    expect(error?.message).toMatch(/^invariant 3: shipment S-X3 booked under licences/);
    expect(await insertMany(rows.filter((row) => row.id !== 'S-X3'))).toBeUndefined();
  });

  /** Runs `setup` then inserts the shipment rows, in a transaction that is always rolled back. */
  function insertAfter(setup: Statement[], rows: Array<Record<string, string>>) {
    return refusal(...insertShipments(world, rows), setup);
  }
  // Conditions and parties rewritten in place, as someone who can turn off migration 030's
  // triggers (a licence's terms and parties follow its versions) could: these cases are about
  // what the booking check makes of such a licence.
  const termsUnguarded: Statement = ['ALTER TABLE licences DISABLE TRIGGER licences_terms_follow_versions'];
  const partiesUnguarded: Statement = ['ALTER TABLE licence_parties DISABLE TRIGGER licence_parties_no_change'];
  const conditions = (licenceId: string, list: unknown[]): [string, unknown[]] => ['UPDATE licences SET conditions = $2::jsonb WHERE id = $1', [licenceId, JSON.stringify(list)]];
  const invariant3 = (id: string, rule: string) => new RegExp(`^invariant 3: shipment ${id} booked under licences .* that do not cover it \\(${rule}\\)$`);

  // Each rule of migration 015 is a clause per side of the shipment, the export licence's
  // (BIS) and the import licence's (MOFCOM): every case runs on both, so that a clause
  // dropped on either side fails here.
  const sides = [
    { side: 'export', licenceId: () => world.exportLicenceId, allocationId: () => world.allocations.alphaExport, authority: () => world.actors.bis.orgId, otherAuthority: () => world.actors.mofcom.orgId },
    { side: 'import', licenceId: () => world.importLicenceId, allocationId: () => world.allocations.alphaImport, authority: () => world.actors.mofcom.orgId, otherAuthority: () => world.actors.bis.orgId },
  ];

  it.each(sides)("refuses a shipment booked outside its $side allocation's period, and names the rule (migration 015)", async ({ allocationId }) => {
    // A tranche keeps its period (066): made one here by hand, with that trigger off.
    const periodUnguarded: [string, unknown[]] = ['ALTER TABLE allocations DISABLE TRIGGER allocations_keep_licence', []];
    const period: [string, unknown[]] = [`UPDATE allocations SET period_start = '2026-03-01', period_end = '2026-03-31' WHERE id = $1`, [allocationId()]];
    const before = await insertAfter([periodUnguarded, period], [{ booked_at: '2026-02-28T23:59:59Z' }]);
    expect(before?.code, before?.message ?? 'the database accepted it').toBe('23514');
    expect(before?.message).toMatch(invariant3('S-X', 'allocation-period'));
    const after = await insertAfter([periodUnguarded, period], [{ booked_at: '2026-04-01T00:00:00Z', deadline: '2026-04-02T00:00:00Z' }]);
    expect(after?.message ?? 'the database accepted it').toMatch(invariant3('S-X', 'allocation-period'));
    // The period's dates are inclusive, in UTC, whatever the session's time zone.
    expect(await insertAfter([['SET LOCAL TIME ZONE \'Asia/Shanghai\'', []], periodUnguarded, period], [
      { id: 'S-X1', booked_at: '2026-03-01T00:00:00Z', deadline: '2026-04-02T00:00:00Z' }, { id: 'S-X2', booked_at: '2026-03-31T23:59:59Z', deadline: '2026-04-02T00:00:00Z' },
    ])).toBeUndefined();
    // In a group, a row inside the period does not hide the one outside it.
    const group = await insertAfter([periodUnguarded, period], [{ id: 'S-X1', booked_at: '2026-03-05T00:00:00Z', deadline: '2026-04-02T00:00:00Z' }, { id: 'S-X2', booked_at: '2026-02-02T00:00:00Z' }]);
    expect(group?.message ?? 'the database accepted it').toMatch(invariant3('S-X2', 'allocation-period'));
  });

  it.each(sides)('refuses a shipment above a max_units_per_shipment condition of the $side licence, and names it (migration 015)', async ({ licenceId }) => {
    const cap = conditions(licenceId(), [{ id: 'cap', text: 'At most 5 units a shipment', kind: 'max_units_per_shipment', value: 5 }]);
    const over = await insertAfter([termsUnguarded, cap], [{ id: 'S-X1', units: '5' }, { id: 'S-X2', units: '6' }]);
    expect(over?.code, over?.message ?? 'the database accepted it').toBe('23514');
    expect(over?.message).toMatch(invariant3('S-X2', 'max_units_per_shipment'));
    expect(await insertAfter([termsUnguarded, cap], [{ id: 'S-X1', units: '5' }, { id: 'S-X2', units: '1' }])).toBeUndefined();
  });

  it.each(sides)("refuses a shipment under end_user_kyc_required of the $side licence unless that licence's own authority verified the recipient (migration 015)", async ({ licenceId, authority, otherAuthority }) => {
    const kyc = conditions(licenceId(), [{ id: 'kyc', text: 'KYC of each end user', kind: 'end_user_kyc_required' }]);
    const verifiedBy = (orgIds: string[]): [string, unknown[]] => ['UPDATE organisations SET kyc_verified_by = $2 WHERE id = $1', [world.actors.alpha.orgId, orgIds]];
    // Unverified, and verified only by the other side's authority: both refused.
    for (const setup of [[termsUnguarded, kyc], [termsUnguarded, kyc, verifiedBy([otherAuthority()])]]) {
      const error = await insertAfter(setup, [{}]);
      expect(error?.code, error?.message ?? 'the database accepted it').toBe('23514');
      expect(error?.message).toMatch(invariant3('S-X', 'end_user_kyc_required'));
    }
    expect(await insertAfter([termsUnguarded, kyc, verifiedBy([authority()])], [{}])).toBeUndefined();
  });

  it.each(sides)('refuses a shipment of a product the $side licence no longer names, by rule licence (migration 015)', async ({ licenceId }) => {
    // Another product in the product's place: a licence names at least one (001).
    const products: [string, unknown[]] = [`UPDATE licences SET product_ids = ARRAY['P-CONSTRAINTS-OTHER'] WHERE id = $1`, [licenceId()]];
    const error = await insertAfter([termsUnguarded, products], [{}]);
    expect(error?.code, error?.message ?? 'the database accepted it').toBe('23514');
    expect(error?.message).toMatch(invariant3('S-X', 'licence'));
    // The same licence naming the product beside the other one covers it.
    expect(await insertAfter([termsUnguarded, [`UPDATE licences SET product_ids = product_ids || ARRAY['P-CONSTRAINTS-OTHER'] WHERE id = $1`, [licenceId()]]], [{}])).toBeUndefined();
  });

  it('refuses a shipment to a recipient a licence names only as a supplier, or not at all (migration 015)', async () => {
    // The export licence names alpha and beta as end users; the import licence is alpha's and names beta as a consignee.
    const role = (licenceId: string, orgId: string, to: string): [string, unknown[]] => ['UPDATE licence_parties SET role = $3 WHERE licence_id = $1 AND org_id = $2', [licenceId, orgId, to]];
    const exportSide = await insertAfter([partiesUnguarded, role(world.exportLicenceId, world.actors.alpha.orgId, 'supplier')], [{}]);
    expect(exportSide?.code, exportSide?.message ?? 'the database accepted it').toBe('23514');
    expect(exportSide?.message).toMatch(invariant3('S-X', 'licence-recipient'));
    const beta = { recipient_org_id: world.actors.beta.orgId, export_allocation_id: world.allocations.betaExport, import_allocation_id: world.allocations.betaImport };
    expect(await insertAfter([], [beta])).toBeUndefined();
    const importSide = await insertAfter([partiesUnguarded, role(world.importLicenceId, world.actors.beta.orgId, 'supplier')], [beta]);
    expect(importSide?.message ?? 'the database accepted it').toMatch(invariant3('S-X', 'licence-recipient'));
    // An import licence names its holder as the recipient without a party row: alpha's own.
    expect((await database.pool.query('SELECT count(*)::int AS n FROM licence_parties WHERE licence_id = $1 AND org_id = $2', [world.importLicenceId, world.actors.alpha.orgId])).rows[0].n).toBe(0);
    expect(await insertAfter([], [{}])).toBeUndefined();
  });

  it('refuses a reader set that misstates its run: offsets from 0 to its span, at most 2,048, within int2', async () => {
    const insert = (first: number, last: number, offsets: string) => refusal(`INSERT INTO event_reader_sets (org_id, first_seq, last_seq, offsets) VALUES ('ORG-X', ${first}, ${last}, '${offsets}'::int2[])`);
    expect(await insert(100, 104, '{0,2,4}')).toBeUndefined(); // well formed: the cases below are about one rule each
    for (const [first, last, offsets] of [
      [100, 104, '{1,2,4}'], [100, 104, '{0,2,3}'], [100, 104, '{}'], [100, 99, '{0}'], [-1, 0, '{0,1}'],
      [0, 40_000, '{0,32767}'], [0, 2_048, `{${Array.from({ length: 2_049 }, (_, index) => index).join(',')}}`], [100, 101, '{{0},{1}}'],
    ] as const) {
      const error = await insert(first, last, offsets);
      expect(error?.code, `${first}..${last} ${offsets.slice(0, 20)}: ${error?.message ?? 'accepted'}`).toBe('23514');
    }
  });

  it('keeps a unit what it is: its product, its GPU UUID once known, and custody it can leave a shipment from (migration 019)', async () => {
    const otherProduct = String((await world.run('product.register', {
      model: 'Constraint Test Accelerator', vendor: 'Test', parameters: { denseTops: 100, bitLength: 8, logicDieAreaMm2: 500, dramBandwidthGbS: 1_000, designedForDatacenter: true },
    }, world.actors.bis)).productId);
    expect(await refusal(`UPDATE units SET product_id = $1 WHERE serial = 'DB-1'`, [otherProduct])).toMatchObject({ code: '23514', message: expect.stringMatching(/unit DB-1 is a unit of product .*; it cannot become one of/) });
    // Its serial is its manifest line's (075): a new serial is a new unit.
    expect(await errorOf(`UPDATE units SET serial = 'DB-1X' WHERE serial = 'DB-1'`)).toMatchObject({ code: '23514', constraint: 'units_keep_serial', message: 'unit DB-1 cannot become unit DB-1X: a serial is one unit, listed under it' });
    // A GPU UUID may be learnt once, then never changes.
    expect(await refusal(`UPDATE units SET gpu_uuid = 'GPU-00000000-0000-0000-0000-000000000001' WHERE serial = 'DB-1'`)).toBeUndefined();
    expect(await refusal(`UPDATE units SET gpu_uuid = 'GPU-00000000-0000-0000-0000-000000000001' WHERE serial = 'DB-1'; UPDATE units SET gpu_uuid = 'GPU-00000000-0000-0000-0000-000000000002' WHERE serial = 'DB-1'`))
      .toMatchObject({ code: '23514', message: expect.stringMatching(/has GPU UUID GPU-00000000-0000-0000-0000-000000000001; it cannot change/) });
    // Moving to another shipment of the same exporter: from licensed in a booking that has ended, yes (as
    // the ledger lists it again after a cancellation, 075); while that booking is under way, no (invariant
    // 4: the unit would be live in both); from in transit, no.
    expect(await refusal(`UPDATE units SET shipment_id = '${emptyShipmentId}' WHERE serial = 'DB-1'`, [], [statusInStep(shipmentId, 'cancelled')])).toBeUndefined();
    // The unit leaves its line in the booking it left, written by the database: that manifest still lists it.
    const left = await inRolledBack(database.pool, async (client) => {
      await client.query(...statusInStep(shipmentId, 'cancelled'));
      await client.query(`UPDATE units SET shipment_id = $1 WHERE serial = 'DB-1'`, [emptyShipmentId]);
      return (await client.query('SELECT shipment_id, serial FROM moved_manifest_lines')).rows;
    });
    expect(left).toEqual([{ shipment_id: shipmentId, serial: 'DB-1' }]);
    // Nor does it go back into the booking it left (its line is there, and would be twice).
    expect(await refusal(`UPDATE units SET shipment_id = '${emptyShipmentId}' WHERE serial = 'DB-1'; UPDATE units SET shipment_id = '${shipmentId}' WHERE serial = 'DB-1'`, [], [statusInStep(shipmentId, 'cancelled'), statusInStep(emptyShipmentId, 'cancelled')]))
      .toMatchObject({ code: '23514', message: `unit DB-1 left shipment ${shipmentId} before; it cannot go back into it` });
    // Named as the unique violation it is, which ledger/refusals.ts hears as invariant 4.
    expect(await errorOf(`UPDATE units SET shipment_id = $1 WHERE serial = 'DB-1'`, [emptyShipmentId])).toMatchObject({
      code: '23505', constraint: 'units_live_in_one_shipment',
      message: 'unit DB-1 is live in a shipment under way; it cannot be listed in another as well',
    });
    expect(await refusal(`UPDATE units SET custody = 'in_transit', ever_shipped = true WHERE serial = 'DB-1'; UPDATE units SET shipment_id = '${emptyShipmentId}' WHERE serial = 'DB-1'`))
      .toMatchObject({ code: '23514', message: expect.stringMatching(/unit DB-1 is in_transit; it cannot be listed in another shipment/) });
    // Custody changes alone (shipping a shipment, which marks its units shipped) are not this trigger's business.
    expect(await refusal(`UPDATE units SET custody = 'in_transit', ever_shipped = true WHERE shipment_id = $1`, [shipmentId])).toBeUndefined();
    // But a unit in transit has shipped (033).
    expect(await refusal(`UPDATE units SET custody = 'in_transit' WHERE shipment_id = $1`, [shipmentId])).toMatchObject({ code: '23514', message: expect.stringMatching(/units_shipped_custody/) });
  });

  it('finds a booked shipment changed afterwards around the ledger, against the terms no amendment can change (017)', async () => {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      // The booking trigger fires on INSERT only: an UPDATE goes past it, the re-check does
      // not. (Since 020 a shipment's recipient cannot change either, and since 028 its route:
      // those triggers are off here, as for someone who can turn them off.)
      await client.query('ALTER TABLE shipments DISABLE TRIGGER shipments_keep_recipient');
      await client.query('ALTER TABLE shipments DISABLE TRIGGER shipments_keep_booking');
      await client.query(`UPDATE shipments SET recipient_org_id = $1, destination = 'GB' WHERE id = $2`, [world.actors.beta.orgId, shipmentId]);
      const found = (await client.query<{ invariant: string; subject: string; detail: string }>("SELECT * FROM ledger_violations() WHERE invariant = 'invariant-3'")).rows;
      expect(found).toEqual([{ invariant: 'invariant-3', subject: shipmentId, detail: expect.stringMatching(new RegExp(`shipment .* → ${world.actors.beta.orgId}, US to GB`)) }]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    expect((await database.pool.query("SELECT * FROM ledger_violations() WHERE invariant = 'invariant-3'")).rows).toEqual([]);
  });

  it('keeps stored tiles append-only: no hash changed, no tile narrowed, none deleted (migration 018)', async () => {
    const tile = "(SELECT 1 FROM tlog_tiles WHERE level = 0 AND index = 0)";
    expect(await refusal(`SELECT 1 WHERE EXISTS ${tile}`)).toBeUndefined();
    const changed = await refusal(`UPDATE tlog_tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 1) WHERE level = 0 AND index = 0`);
    expect(changed).toMatchObject({ code: '23514', message: expect.stringMatching(/tile 0\/0 holds \d+ hashes; a write of \d+ hashes would change or drop some of them/) });
    const narrowed = await refusal(`UPDATE tlog_tiles SET width = width - 1, hashes = substring(hashes FROM 1 FOR 32 * (width - 1)) WHERE level = 0 AND index = 0 AND width > 1`);
    expect(narrowed?.code).toBe('23514');
    expect((await refusal('DELETE FROM tlog_tiles WHERE level = 0 AND index = 0'))?.code).toBe('23001');
    // Growing in place is what every batch does: the hashes kept, one more after them.
    expect(await refusal(`UPDATE tlog_tiles SET width = width + 1, hashes = hashes || decode(repeat('ab', 32), 'hex') WHERE level = 0 AND index = 0 AND width < 256`)).toBeUndefined();
  });

  it('refuses two checkpoint roots for one size (a fork)', async () => {
    const error = await refusal(`INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES (1, $1, 'a', 'x'), (1, $2, 'b', 'y')`, [Buffer.alloc(32, 1), Buffer.alloc(32, 2)]);
    expect(error?.code).toBe('23514');
  });
});

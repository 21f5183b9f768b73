/**
 * More of the database's own hold on the invariants (constraints.test.ts has the first
 * cases), each written around the ledger's code, each against one clause of a trigger or
 * of the re-check that the cases there do not isolate: a rule whose clause could be
 * dropped with every test still passing holds nothing. Each statement runs in a
 * transaction that is always rolled back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { firstRefusal, insertShipments as insertRows, statusInStep, type Statement } from '../../test/support/rolled-back.ts';
import { buildWorld, type World } from '../../test/world.ts';

let database: TestDatabase;
let world: World;
/** An issued import licence of 100 units, 10 of them allocated to alpha: room to spare. */
let roomyLicenceId: string;
let roomyAllocationId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  const { run, actors, productId } = world;
  roomyLicenceId = String((await run('licence.create', {
    reference: 'MOFCOM-ROOMY', direction: 'import', holderId: actors.alpha.orgId, parties: [{ organisationId: actors.exporter.orgId, role: 'supplier' }],
    productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
  }, actors.mofcom)).licenceId);
  await run('licence.issue', { licenceId: roomyLicenceId }, actors.mofcom);
  roomyAllocationId = String((await run('allocation.create', { licenceId: roomyLicenceId, recipientId: actors.alpha.orgId, units: 10 }, actors.mofcom)).allocationId);
  // Two units listed in a live shipment of the exporter's: MORE-1 and MORE-2.
  await run('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId,
    units: 2, deadline: '2026-03-01T00:00:00Z', serials: ['MORE-1', 'MORE-2'],
  }, actors.exporter);
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

const refusal = (...statements: Statement[]) => firstRefusal(database.pool, ...statements);

/** The re-check's rows for one invariant after the statements, in a transaction that is always rolled back. */
async function violationsAfter(invariant: string, ...statements: Statement[]): Promise<Array<{ subject: string; detail: string }>> {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    for (const [text, values] of statements) await client.query(text, values ?? []);
    return (await client.query<{ subject: string; detail: string }>('SELECT subject, detail FROM ledger_violations() WHERE invariant = $1 ORDER BY subject', [invariant])).rows;
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

const insertShipments = (rows: Array<Record<string, string>>): Statement => insertRows(world, rows.map((row) => ({ id: 'S-Y', ...row })));

// A licence's terms and parties rewritten in place, as someone who can turn off migration
// 030's triggers (they follow its versions) could: the cases below are about what the other
// checks make of such a licence. Each goes first, before any row is written.
const termsUnguarded: Statement = ['ALTER TABLE licences DISABLE TRIGGER licences_terms_follow_versions'];
const partiesUnguarded: Statement = ['ALTER TABLE licence_parties DISABLE TRIGGER licence_parties_follow_versions'];

/** A shipment of these serials to alpha, booked, shipped, cleared and delivered through the ledger; its id. */
async function deliveredTo(serials: string[]): Promise<string> {
  const { run, actors, productId } = world;
  const shipmentId = String((await run('shipment.book', {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId,
    units: serials.length, deadline: '2026-03-01T00:00:00Z', serials,
  }, actors.exporter)).shipmentId);
  await run('shipment.ship', { shipmentId }, actors.exporter);
  await run('shipment.clear', { shipmentId }, actors.mofcom);
  await run('shipment.deliver', { shipmentId }, actors.alpha);
  return shipmentId;
}

describe('invariant 1: the licence records the true sum of its allocations', () => {
  it('refuses an allocation the licence does not count, on a licence with room to spare', async () => {
    // constraints.test.ts does this on a full licence, where the sum also passes the authorised units.
    const error = await refusal([`INSERT INTO allocations (id, licence_id, recipient_org_id, units, created_seq) VALUES ('A-Y', $1, $2, 1, 999999)`, [roomyLicenceId, world.actors.alpha.orgId]]);
    expect(error?.code, error?.message ?? 'the database accepted it').toBe('23514');
    expect(error?.message).toMatch(/^invariant 1: licence .* allocations sum to 11 but the licence records 10/);
  });

  it('refuses an allocation grown or shrunk without its licence, and takes both changed together', async () => {
    for (const delta of [1, -1]) {
      const error = await refusal(['UPDATE allocations SET units = units + $2 WHERE id = $1', [roomyAllocationId, delta]]);
      expect(error?.code, error?.message ?? `the database accepted ${delta}`).toBe('23514');
    }
    expect(await refusal(
      ['UPDATE licences SET allocated_units = allocated_units + 5 WHERE id = $1', [roomyLicenceId]],
      ['UPDATE allocations SET units = units + 5 WHERE id = $1', [roomyAllocationId]],
    )).toBeUndefined();
  });

  it('sums a licence\'s allocations when one\'s units change, not when a booking or a shipment changes its counters (074)', async () => {
    // The sum broken behind the check's back: the counters' update that every batch of bookings
    // makes does not look (it would sum all of the licence's allocations each time); an update
    // that changes the units does, in a statement with other rows too.
    const broken: Statement[] = [['ALTER TABLE allocations DISABLE TRIGGER allocations_sum_update'], ['UPDATE allocations SET units = units + 1 WHERE id = $1', [roomyAllocationId]], ['ALTER TABLE allocations ENABLE TRIGGER allocations_sum_update']];
    expect(await refusal(...broken, ['UPDATE allocations SET reserved_units = reserved_units, shipped_units = shipped_units WHERE id = $1', [roomyAllocationId]])).toBeUndefined();
    const error = await refusal(...broken, ['UPDATE allocations SET units = units + (id = $1)::int WHERE id IN ($1, $2)', [roomyAllocationId, world.allocations.alphaImport]]);
    expect(error?.message ?? 'the database accepted it').toMatch(/^invariant 1: licence .* allocations sum to 12 but the licence records 10/);
  });

  it('sums the licence of an allocation whose id changes with its units (074, s38 review)', async () => {
    // Old and new rows are told apart by licence, not by an id the statement may rewrite.
    const error = await refusal(['UPDATE allocations SET id = id || \'-X\', units = units + 5 WHERE id = $1', [roomyAllocationId]]);
    expect(error?.message ?? 'the database accepted it').toMatch(/^invariant 1: licence .* allocations sum to 15 but the licence records 10/);
  });
});

describe('invariant 1 when the licence row changes (migration 023)', () => {
  it('refuses authorised units and a counter cut together below what the allocations sum to', async () => {
    // The world's import licence: 1,000 units, all of them allocated.
    const error = await refusal(termsUnguarded, [`UPDATE licences SET authorised_units = 10, allocated_units = 10 WHERE id = $1`, [world.importLicenceId]]);
    expect(error?.code, error?.message ?? 'the database accepted it').toBe('23514');
    expect(error?.message).toBe(`invariant 1: licence ${world.importLicenceId} allocations sum to 1000 but the licence records 10 (authorised 10)`);
  });

  it('refuses a counter changed alone, or a licence made with a counter no allocation explains', async () => {
    for (const delta of [1, -1]) {
      const error = await refusal(['UPDATE licences SET allocated_units = allocated_units + $2 WHERE id = $1', [roomyLicenceId, delta]]);
      expect(error?.message ?? `the database accepted ${delta}`).toMatch(/^invariant 1: licence .* allocations sum to 10 but the licence records (11|9) \(authorised 100\)$/);
    }
    const error = await refusal([`INSERT INTO licences (id, version, reference, authority_org_id, direction, holder_org_id, product_ids, origin, destination,
        authorised_units, valid_from, valid_to, status, allocated_units, created_seq, updated_seq)
      SELECT 'L-Y', 1, 'MADE-UP', authority_org_id, direction, holder_org_id, product_ids, origin, destination, 100, valid_from, valid_to, 'issued', 7, 999999, 999999
      FROM licences WHERE id = $1`, [roomyLicenceId]]);
    expect(error?.message ?? 'the database accepted it').toBe('invariant 1: licence L-Y allocations sum to 0 but the licence records 7 (authorised 100)');
  });

  it('takes authorised units changed down to the allocations or up, and runs only when the two columns change', async () => {
    expect(await refusal(termsUnguarded, ['UPDATE licences SET authorised_units = 10 WHERE id = $1', [roomyLicenceId]])).toBeUndefined();
    expect(await refusal(termsUnguarded, ['UPDATE licences SET authorised_units = 5000 WHERE id = $1', [world.importLicenceId]])).toBeUndefined();
    // With the sum broken behind its back (the allocations' trigger off), a licence change
    // that leaves both columns alone does not look (bookings and shipping pay nothing); one
    // that touches either does.
    const broken: Statement[] = [['ALTER TABLE allocations DISABLE TRIGGER allocations_sum_update'], ['UPDATE allocations SET units = units + 1 WHERE id = $1', [roomyAllocationId]]];
    expect(await refusal(...broken, [`UPDATE licences SET status = 'suspended', shipped_units = shipped_units WHERE id = $1`, [roomyLicenceId]])).toBeUndefined();
    expect((await refusal(termsUnguarded, ...broken, ['UPDATE licences SET authorised_units = authorised_units + 1 WHERE id = $1', [roomyLicenceId]]))?.message)
      .toMatch(/^invariant 1: licence .* allocations sum to 11 but the licence records 10/);
  });
});

describe('invariant 2: the re-check finds balances that the shipments do not explain', () => {
  it('finds a reservation, or a shipped count, that no shipment accounts for', async () => {
    expect(await violationsAfter('invariant-2')).toEqual([]);
    const reserved = await violationsAfter('invariant-2', ['UPDATE allocations SET reserved_units = reserved_units + 1 WHERE id = $1', [world.allocations.alphaImport]]);
    expect(reserved).toEqual([{ subject: world.allocations.alphaImport, detail: expect.stringMatching(/^reserved 3 \(shipments say 2\)/) }]);
    const released = await violationsAfter('invariant-2', ['UPDATE allocations SET reserved_units = reserved_units - 2 WHERE id = $1', [world.allocations.alphaExport]]);
    expect(released.map((row) => row.subject)).toEqual([world.allocations.alphaExport]);
    // Shipped on the allocation and its licence alike: the allocation is still out of step with its shipments.
    const shipped = await violationsAfter('invariant-2',
      ['UPDATE allocations SET shipped_units = shipped_units + 1 WHERE id = $1', [world.allocations.alphaExport]],
      ['UPDATE licences SET shipped_units = shipped_units + 1 WHERE id = $1', [world.exportLicenceId]]);
    expect(shipped.map((row) => row.subject)).toEqual([world.allocations.alphaExport]);
  });
});

describe('invariant 3: the booking trigger checks each side, and every row of a group', () => {
  it('refuses a shipment under a suspended export licence, as under a suspended import licence', async () => {
    for (const licenceId of [world.exportLicenceId, world.importLicenceId]) {
      const error = await refusal([`UPDATE licences SET status = 'suspended' WHERE id = $1`, [licenceId]], insertShipments([{}]));
      expect(error?.code, error?.message ?? `the database accepted a shipment under suspended ${licenceId}`).toBe('23514');
    }
    expect(await refusal(insertShipments([{}]))).toBeUndefined();
  });

  it("refuses a row booked before one licence's validity, in a group whose other row is within it", async () => {
    for (const licenceId of [world.exportLicenceId, world.importLicenceId]) {
      const error = await refusal(
        termsUnguarded,
        [`UPDATE licences SET valid_from = '2026-02-01T00:00:00Z' WHERE id = $1`, [licenceId]],
        insertShipments([{ id: 'S-Y1', booked_at: '2026-01-15T00:00:00Z' }, { id: 'S-Y2', booked_at: '2026-02-02T00:00:00Z' }]),
      );
      expect(error?.code, error?.message ?? `the database accepted it (${licenceId})`).toBe('23514');
      expect(error?.message).toMatch(/^invariant 3: shipment S-Y1 booked under licences .* \(licence\)$/);
    }
  });
});

describe('invariant 3: the exporter a licence lets ship (migration 023)', () => {
  const dropSupplier = (): Statement => [`DELETE FROM licence_parties WHERE licence_id = $1 AND org_id = $2 AND role = 'supplier'`, [world.importLicenceId, world.actors.exporter.orgId]];

  it('refuses a shipment booked under an import licence that does not name its exporter as supplier', async () => {
    const error = await refusal(partiesUnguarded, dropSupplier(), insertShipments([{}]));
    expect(error?.code, error?.message ?? 'the database accepted it').toBe('23514');
    expect(error?.message).toBe(`invariant 3: shipment S-Y booked under licences ${world.exportLicenceId} and ${world.importLicenceId} that do not cover it (licence-exporter)`);
    // Nor may the import licence's holder ship under it, unless it names it as supplier (migration 035).
    const held = await refusal(partiesUnguarded, termsUnguarded, dropSupplier(), [`UPDATE licences SET holder_org_id = $2 WHERE id = $1`, [world.importLicenceId, world.actors.exporter.orgId]],
      [`INSERT INTO licence_parties (licence_id, org_id, role) VALUES ($1, $2, 'end_user')`, [world.importLicenceId, world.actors.alpha.orgId]], insertShipments([{}]));
    expect(held?.message).toBe(`invariant 3: shipment S-Y booked under licences ${world.exportLicenceId} and ${world.importLicenceId} that do not cover it (licence-exporter)`);
  });

  it('refuses a booked shipment that ships, or ships and is delivered in one write, once the import licence no longer names its exporter', async () => {
    const shipmentId = (await database.pool.query<{ id: string }>(`SELECT id FROM shipments WHERE status = 'booked' ORDER BY id LIMIT 1`)).rows[0]!.id;
    for (const status of ['shipped', 'delivered']) {
      const ship: Statement = statusInStep(shipmentId, status);
      expect(await refusal(ship)).toBeUndefined();
      const error = await refusal(partiesUnguarded, dropSupplier(), ship);
      expect(error?.code, error?.message ?? `the database accepted ${status}`).toBe('23514');
      expect(error?.message).toBe(`invariant 3: shipment ${shipmentId} cannot become ${status}: licences ${world.exportLicenceId} and ${world.importLicenceId} do not let its exporter ${world.actors.exporter.orgId} ship it (licence-exporter)`);
    }
    // Cancelling is not shipping.
    expect(await refusal(partiesUnguarded, dropSupplier(), statusInStep(shipmentId, 'cancelled'))).toBeUndefined();
  });
});

describe("invariant 4: a unit stays on its exporter's side", () => {
  // A unit released by a booking that ended is listed by whichever booking claims it (033): the
  // exporter's side holds a unit that has shipped, and (075) one still in a booking under way.
  it("refuses a unit that has shipped moved to a shipment of another exporter, and one from custody 'licensed' under way moved to any", async () => {
    const emptyShipmentId = String((await world.run('shipment.book', {
      exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
      units: 1, deadline: '2026-03-01T00:00:00Z',
    }, world.actors.exporter)).shipmentId);
    const deliveredId = await deliveredTo(['MOVE-1']);
    // As the ledger lists a returned unit again: licensed under the new booking, which lists it by that (075).
    const returned: Statement = [`UPDATE units SET custody = 'returned' WHERE serial = 'MOVE-1'`];
    const move = (serial: string): Statement => [`UPDATE units SET shipment_id = $1, custody = 'licensed' WHERE serial = $2`, [emptyShipmentId, serial]];
    expect(await refusal(returned, move('MOVE-1'))).toBeUndefined(); // the same exporter's: allowed
    // The shipment row is made another organisation's (an UPDATE, which the booking trigger does
    // not see; since 028 a trigger refuses it, off here, as for someone who can turn it off).
    const otherExporters: Statement[] = [['ALTER TABLE shipments DISABLE TRIGGER shipments_keep_booking'], [`UPDATE shipments SET exporter_org_id = $2 WHERE id = $1`, [emptyShipmentId, world.actors.auditor.orgId]]];
    const error = await refusal(...otherExporters, returned, move('MOVE-1'));
    expect(error?.code, error?.message ?? 'the database accepted it').toBe('23514');
    expect(error?.message).toBe(`unit MOVE-1 is ${world.actors.exporter.orgId}'s (it has shipped, or its booking ${deliveredId} is delivered); shipment ${emptyShipmentId} is not that exporter's`);
    // MORE-1, licensed in a booking under way, moves to no shipment, the exporter's own or another's: it would be live in two.
    for (const setup of [[], otherExporters]) {
      expect(await refusal(...setup, move('MORE-1'))).toEqual({
        code: '23505', message: 'unit MORE-1 is live in a shipment under way; it cannot be listed in another as well',
      });
    }
  });
});

describe('invariant 4: where a unit is deployed, and whose it is (migration 020)', () => {
  it('deploys a unit only from delivered or deployed, only at a site of its recipient, and keeps its recipient', async () => {
    const { run, actors } = world;
    const shipmentId = await deliveredTo(['DEP-1', 'DEP-2', 'DEP-3']);
    const site = { province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 10 };
    const alphaSite = String((await run('site.register', { ...site, name: 'Alpha DC' }, actors.alpha)).siteId);
    const betaSite = String((await run('site.register', { ...site, name: 'Beta DC' }, actors.beta)).siteId);
    await run('units.deploy', { siteId: alphaSite, serials: ['DEP-1'] }, actors.alpha);
    // Marked as shipped as well, as a deployed unit must be (033's CHECK), so that 020's rules are what refuses.
    const deploy = (serial: string, siteId: string): Statement => [`UPDATE units SET custody = 'deployed', site_id = $2, ever_shipped = true WHERE serial = $1`, [serial, siteId]];
    const refused = async (why: RegExp, ...statements: Statement[]) => {
      const error = await refusal(...statements);
      expect(error?.code, error?.message ?? `the database accepted ${JSON.stringify(statements)}`).toBe('23514');
      expect(error?.message).toMatch(why);
    };

    expect(await refusal(deploy('DEP-2', alphaSite))).toBeUndefined(); // delivered, to its recipient's site
    expect(await refusal([`UPDATE units SET updated_seq = 999999 WHERE serial = 'DEP-1'`])).toBeUndefined(); // a deployed unit's other columns may change
    await refused(/^unit DEP-2 is .*'s; site .* is not$/, deploy('DEP-2', betaSite));
    await refused(/^unit DEP-1 is .*'s; site .* is not$/, deploy('DEP-1', betaSite)); // a move to another's site
    await refused(/^unit MORE-1 is at site SITE-\d+, but its shipment S-\d+ is booked; only delivered units can be deployed$/, deploy('MORE-1', alphaSite));
    // Nor in two steps: custody set to delivered first, while the shipment is still booked.
    await refused(/^unit MORE-1 is at site SITE-\d+, but its shipment S-\d+ is booked/, [`UPDATE units SET custody = 'delivered', ever_shipped = true WHERE serial = 'MORE-1'`], deploy('MORE-1', alphaSite));
    // The rows above the unit keep what these rules read.
    await refused(/^site .* belongs to its organisation; it cannot change hands$/, [`UPDATE sites SET org_id = $2 WHERE id = $1`, [alphaSite, actors.beta.orgId]]);
    await refused(/^shipment .* belongs to its recipient; it cannot change hands$/, [`UPDATE shipments SET recipient_org_id = $2 WHERE id = $1`, [shipmentId, actors.beta.orgId]]);
    await refused(/violates check constraint "units_check"/, [`UPDATE units SET custody = 'deployed' WHERE serial = 'DEP-3'`]); // 001's
    await refused(/violates check constraint "units_check"/, [`UPDATE units SET site_id = NULL WHERE serial = 'DEP-1'`]);
    // Handed to another recipient: refused, also together with a site of that recipient.
    await refused(/^unit DEP-3 is .*'s; it goes to another recipient only in a shipment to that recipient$/, [`UPDATE units SET recipient_org_id = $1 WHERE serial = 'DEP-3'`, [actors.beta.orgId]]);
    await refused(/another recipient/, [`UPDATE units SET recipient_org_id = $1, site_id = $2 WHERE serial = 'DEP-1'`, [actors.beta.orgId, betaSite]]);
  });

  it('keeps an ended shipment ended', async () => {
    const ended = (await database.pool.query<{ id: string; status: string }>(`SELECT DISTINCT ON (status) id, status FROM shipments WHERE status IN ('delivered', 'cancelled') ORDER BY status, id`)).rows;
    expect(ended.map((row) => row.status)).toContain('delivered');
    for (const { id, status } of ended) {
      for (const to of ['booked', 'shipped', 'cleared']) {
        const error = await refusal([`UPDATE shipments SET status = $2 WHERE id = $1`, [id, to]]);
        expect(error?.message, `${status} → ${to}`).toBe(`shipment ${id} is ${status}; it cannot become ${to}`);
      }
    }
  });

  it('deploys a unit whose shipment is delivered in the same transaction (one batch delivers and deploys)', async () => {
    const { run, actors, productId } = world;
    const shipmentId = String((await run('shipment.book', {
      exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId,
      units: 1, deadline: '2026-03-01T00:00:00Z', serials: ['TRN-1'],
    }, actors.exporter)).shipmentId);
    await run('shipment.ship', { shipmentId }, actors.exporter);
    await run('shipment.clear', { shipmentId }, actors.mofcom);
    const siteId = (await database.pool.query<{ id: string }>(`SELECT id FROM sites WHERE org_id = $1 LIMIT 1`, [actors.alpha.orgId])).rows[0]!.id;
    const deployTransit: Statement = [`UPDATE units SET custody = 'deployed', site_id = $1 WHERE serial = 'TRN-1'`, [siteId]];
    expect((await refusal(deployTransit))?.message).toMatch(/^unit TRN-1 is at site SITE-\d+, but its shipment S-\d+ is cleared/);
    expect(await refusal([`UPDATE shipments SET status = 'delivered' WHERE id = $1`, [shipmentId]], deployTransit)).toBeUndefined();
  });

  it('is re-checked in full: ledger_violations finds a unit that breaks these rules with the triggers off', async () => {
    const off = (statement: string) => `ALTER TABLE units DISABLE TRIGGER USER; ${statement}; ALTER TABLE units ENABLE TRIGGER USER`;
    const betaSite = (await database.pool.query<{ id: string }>(`SELECT id FROM sites WHERE org_id = $1 LIMIT 1`, [world.actors.beta.orgId])).rows[0]!.id;
    expect(await violationsAfter('invariant-4')).toEqual([]);
    // (The two sites' deployed counts are off too, which 017's check reports about the sites.)
    const moved = await violationsAfter('invariant-4', [off(`UPDATE units SET site_id = '${betaSite}' WHERE serial = 'DEP-1'`)]);
    expect(moved.filter((row) => !row.subject.startsWith('SITE-'))).toEqual([
      { subject: 'DEP-1', detail: expect.stringMatching(/^deployed at site .* of .*, but the unit is .*'s$/) },
    ]);
    expect(await violationsAfter('invariant-4', [off(`UPDATE units SET recipient_org_id = '${world.actors.beta.orgId}' WHERE serial = 'MORE-2'`)])).toEqual([
      { subject: 'MORE-2', detail: expect.stringMatching(/^the unit is .*'s, but its shipment S-\d+ is for /) },
    ]);
    expect(await violationsAfter('invariant-4', [off(`UPDATE units SET custody = 'delivered', ever_shipped = true WHERE serial = 'MORE-2'`)])).toEqual([
      { subject: 'MORE-2', detail: expect.stringMatching(/^the unit is delivered, but its shipment S-\d+ is booked$/) },
      { subject: 'MORE-2', detail: 'the unit is marked as shipped, but no shipment that lists it has shipped' },
    ]);
  });

  it('takes a new unit at a site only as its shipment and recipient allow, one in transit as a batch writes it, and an upsert of a deployed unit as the update it is', async () => {
    const columns = 'serial, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq, ever_shipped';
    const shipmentId = (await database.pool.query<{ shipment_id: string }>(`SELECT shipment_id FROM units WHERE serial = 'MORE-1'`)).rows[0]!.shipment_id;
    const unit = (serial: string, custody: string, siteId: string | null) => [serial, world.productId, world.actors.alpha.orgId, custody, shipmentId, siteId, 999999, custody !== 'licensed'];
    const siteId = (await database.pool.query<{ id: string }>(`SELECT id FROM sites WHERE org_id = $1 LIMIT 1`, [world.actors.alpha.orgId])).rows[0]!.id;
    const error = await refusal([`INSERT INTO units (${columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, unit('NEW-1', 'deployed', siteId)]);
    expect(error?.code, error?.message ?? 'the database accepted it').toBe('23514');
    expect(error?.message).toMatch(/^unit NEW-1 is at site SITE-\d+, but its shipment S-\d+ is booked; only delivered units can be deployed$/);
    expect(await refusal([`INSERT INTO units (${columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, unit('NEW-2', 'licensed', null)])).toBeUndefined();
    // A batch that lists new serials and ships their shipment writes the new units in transit.
    expect(await refusal([`INSERT INTO units (${columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, unit('NEW-3', 'in_transit', null)])).toBeUndefined();
    // The batch writes changed units by upsert: the row of a deployed unit proposed again is an update, not a new unit.
    const deployed = (await database.pool.query<{ serial: string; shipment_id: string; site_id: string }>(`SELECT serial, shipment_id, site_id FROM units WHERE custody = 'deployed' LIMIT 1`)).rows[0]!;
    expect(await refusal([`INSERT INTO units (${columns}) VALUES ($1, $2, $3, 'deployed', $4, $5, 999999, true)
      ON CONFLICT (serial) DO UPDATE SET custody = EXCLUDED.custody, site_id = EXCLUDED.site_id, updated_seq = EXCLUDED.updated_seq`,
    [deployed.serial, world.productId, world.actors.alpha.orgId, deployed.shipment_id, deployed.site_id]])).toBeUndefined();
  });
});

describe('invariant 4: what migration 020 lets through', () => {
  it('a returned unit listed again by its exporter in a shipment to another recipient, which becomes its recipient', async () => {
    const { run, actors, productId } = world;
    // DEP-3: delivered to alpha by the first test of the block above.
    await run('units.return', { serials: ['DEP-3'], reason: 'sold on' }, actors.alpha);
    const shipmentId = String((await run('shipment.book', {
      exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport, productId,
      units: 1, deadline: '2026-03-01T00:00:00Z', serials: ['DEP-3'],
    }, actors.exporter)).shipmentId);
    const unit = (await database.pool.query(`SELECT recipient_org_id, shipment_id, custody FROM units WHERE serial = 'DEP-3'`)).rows[0];
    expect(unit).toEqual({ recipient_org_id: actors.beta.orgId, shipment_id: shipmentId, custody: 'licensed' });
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe("a unit's custody only moves forward (migration 023)", () => {
  it('refuses a step back, or from one end to another, and takes every step forward', async () => {
    // DEP-2: delivered to alpha (and not deployed) by the tests above; MORE-1: licensed, in a booked shipment.
    const units = (await database.pool.query<{ serial: string; custody: string }>(`SELECT serial, custody FROM units WHERE serial IN ('DEP-2', 'MORE-1') ORDER BY serial`)).rows;
    expect(units).toEqual([{ serial: 'DEP-2', custody: 'delivered' }, { serial: 'MORE-1', custody: 'licensed' }]);
    // Marked as shipped as well when it leaves 'licensed' (033's CHECK), so that 023's rule is what refuses.
    const set = (serial: string, custody: string): Statement => [`UPDATE units SET custody = $2, ever_shipped = ever_shipped OR $2::text <> 'licensed' WHERE serial = $1`, [serial, custody]];
    const refused = async (serial: string, from: string, to: string, ...before: Statement[]) => {
      const error = await refusal(...before, set(serial, to));
      expect(error?.code, error?.message ?? `the database accepted ${from} → ${to}`).toBe('23514');
      expect(error?.message).toBe(`unit ${serial} is ${from}; its custody cannot become ${to} (custody only moves forward, and starts again only in another shipment)`);
    };
    await refused('DEP-2', 'delivered', 'in_transit');
    await refused('DEP-2', 'delivered', 'licensed');
    await refused('MORE-1', 'in_transit', 'licensed', set('MORE-1', 'in_transit'));
    await refused('DEP-2', 'returned', 'licensed', set('DEP-2', 'returned')); // starts again in another shipment only
    await refused('DEP-2', 'returned', 'lost', set('DEP-2', 'returned'));
    for (const to of ['in_transit', 'delivered', 'lost', 'decommissioned', 'returned']) expect(await refusal(set('MORE-1', to)), `licensed → ${to}`).toBeUndefined();
    for (const to of ['lost', 'decommissioned', 'returned']) expect(await refusal(set('DEP-2', to)), `delivered → ${to}`).toBeUndefined();
  });
});

describe('units in an end state, and the rows the ledger never deletes (migration 022)', () => {
  it('refuses any change to a decommissioned or lost unit, and any delete of units, manifest lines or licences', async () => {
    const { run, actors } = world;
    await deliveredTo(['END-1', 'END-2', 'END-3']);
    await run('units.decommission', { serials: ['END-1'], reason: 'end of life' }, actors.alpha);
    await run('units.report_lost', { serials: ['END-2'], reason: 'not found at audit' }, actors.alpha);
    const siteId = String((await run('site.register', { name: 'End DC', province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 10 }, actors.alpha)).siteId);
    const refused = async (why: RegExp, code: string, statement: Statement) => {
      const error = await refusal(statement);
      expect(error?.code, error?.message ?? `the database accepted ${statement[0]}`).toBe(code);
      expect(error?.message).toMatch(why);
    };
    for (const [serial, custody] of [['END-1', 'decommissioned'], ['END-2', 'lost']] as const) {
      const why = new RegExp(`^unit ${serial} is ${custody}; a decommissioned or lost unit never changes again$`);
      await refused(why, '23514', [`UPDATE units SET custody = 'deployed', site_id = $2 WHERE serial = $1`, [serial, siteId]]);
      await refused(why, '23514', [`UPDATE units SET custody = 'delivered' WHERE serial = $1`, [serial]]);
      await refused(why, '23514', [`UPDATE units SET updated_seq = updated_seq + 1 WHERE serial = $1`, [serial]]);
      // The way a batch writes a unit it changed: an upsert, which is an update here.
      await refused(why, '23514', [`INSERT INTO units (serial, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq, ever_shipped)
        SELECT serial, product_id, recipient_org_id, 'delivered', shipment_id, NULL, updated_seq + 1, ever_shipped FROM units WHERE serial = $1
        ON CONFLICT (serial) DO UPDATE SET custody = EXCLUDED.custody, updated_seq = EXCLUDED.updated_seq`, [serial]]);
    }
    // A unit still in use changes as before: deployed from delivered.
    expect(await refusal([`UPDATE units SET custody = 'deployed', site_id = $1 WHERE serial = 'END-3'`, [siteId]])).toBeUndefined();
    for (const table of ['units', 'moved_manifest_lines', 'licences', 'licence_versions']) {
      await refused(new RegExp(`^the ledger only grows: ${table} rows are never deleted$`), '23001', [`DELETE FROM ${table}`]);
      await refused(new RegExp(`^the ledger only grows: ${table} rows are never deleted$`), '23001', [`TRUNCATE ${table} CASCADE`]);
    }
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('invariant 5: the events are exactly seq 0 to the head', () => {
  it('finds the last event renumbered one past the head, though the count still matches', async () => {
    const { size } = (await database.pool.query<{ size: number }>('SELECT size FROM log_head')).rows[0]!;
    // A seq never changes (028): this is someone who can turn that trigger off, and drop the
    // check that an event making a record names it by its seq (053).
    const found = await violationsAfter('invariant-5',
      ['ALTER TABLE events DISABLE TRIGGER events_keep_columns'],
      ['ALTER TABLE events DROP CONSTRAINT events_creation_subject_carries_seq'],
      ['UPDATE events SET seq = seq + 1 WHERE seq = $1', [size - 1]]);
    expect(found).toEqual([{ subject: 'events', detail: `log size ${size}, events ${size}, max seq ${size}` }]);
    expect(await violationsAfter('invariant-5')).toEqual([]);
  });
});

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { limits } from '../core/limits.ts';
import * as read from './read-queries.ts';
import type { Viewer } from './read-queries.ts';

let database: TestDatabase;
let world: World;
const shipmentIds: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool, { licenceUnits: 10_000, allocationUnits: 5_000 });
  const { run, actors, allocations, productId } = world;
  // Enough shipments that ids cross a digit boundary (S-99 < S-100 by number, not by text).
  for (let index = 0; index < 90; index += 1) {
    const alpha = index % 3 !== 0;
    const booked = await run('shipment.book', {
      exportAllocationId: alpha ? allocations.alphaExport : allocations.betaExport,
      importAllocationId: alpha ? allocations.alphaImport : allocations.betaImport,
      productId, units: 2, deadline: '2026-03-01T00:00:00Z', serials: [`RQ-${index}-A`, `RQ-${index}-B`],
    }, actors.exporter);
    shipmentIds.push(String(booked.shipmentId));
  }
  await run('shipment.ship', { shipmentId: shipmentIds[1]! }, actors.exporter);
  // Submitted together, these land in shared batches: each recipient's reader set for a
  // batch then holds many events with gaps between them (the other's sites), so a page can
  // end inside a set; and a batch of 256 events or more writes its sets by COPY.
  const sites = await Promise.all(Array.from({ length: 300 }, (_, index) => world.ledger.submit('site.register', {
    name: `Read queries DC ${index}`, province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 10,
  }, index % 3 === 0 ? actors.beta : actors.alpha)));
  expect(sites.every((answer) => answer.ok)).toBe(true);
});
afterAll(async () => {
  await world?.ledger.close();
  await database?.drop();
});

const everything: Viewer = { orgId: null, allocations: 'related' };
const recipient = (orgId: string): Viewer => ({ orgId, allocations: 'received' });
const exporter = (orgId: string): Viewer => ({ orgId, allocations: 'related' });

async function all<T, K extends number | string>(fetch: (page: read.PageRequest<K>) => Promise<read.Page<T, K>>, limit: number): Promise<T[]> {
  const rows: T[] = [];
  let after: K | null = null;
  for (;;) {
    const page = await fetch({ after, limit });
    rows.push(...page.rows);
    if (page.nextAfter === null) return rows;
    after = page.nextAfter;
  }
}

describe('read queries', () => {
  it('pages shipments by creation order across id digit boundaries, without gaps or repeats', async () => {
    const rows = await all((page: read.PageRequest<number>) => read.listShipments(database.pool, everything, page), 7);
    expect(rows.map((row) => row.id)).toEqual(shipmentIds);
    expect(shipmentIds.some((id) => Number(id.slice(2)) >= 100)).toBe(true);
  });

  it('filters by tenant in SQL: a recipient sees its own rows only, an unknown and an invisible id look alike', async () => {
    const alpha = world.actors.alpha.orgId;
    const beta = world.actors.beta.orgId;
    const shipments = await all((page: read.PageRequest<number>) => read.listShipments(database.pool, recipient(alpha), page), 10);
    expect(shipments.length).toBe(60);
    expect(shipments.every((row) => row.recipient_org_id === alpha)).toBe(true);
    const allocations = await all((page: read.PageRequest<number>) => read.listAllocations(database.pool, recipient(alpha), page), 10);
    expect(allocations.map((row) => row.id).sort()).toEqual([world.allocations.alphaExport, world.allocations.alphaImport].sort());
    // Alpha holds the import licence, yet beta's allocation on it stays beta's.
    expect(await read.findAllocation(database.pool, recipient(alpha), world.allocations.betaImport)).toBeNull();
    expect(await read.findAllocation(database.pool, exporter(world.actors.exporter.orgId), world.allocations.betaImport)).not.toBeNull();
    const betaShipment = shipmentIds[0]!;
    expect(await read.findShipment(database.pool, recipient(alpha), betaShipment)).toBeNull();
    expect(await read.findShipment(database.pool, recipient(alpha), 'S-999999')).toBeNull();
    expect(await read.findShipment(database.pool, recipient(beta), betaShipment)).not.toBeNull();
    expect(await read.listShipmentSerials(database.pool, recipient(alpha), betaShipment, { after: null, limit: 10 })).toBeNull();
    const units = await all((page: read.PageRequest<string>) => read.listUnits(database.pool, recipient(beta), page), 9);
    expect(units.length).toBe(60);
    expect(units.every((row) => row.recipient_org_id === beta)).toBe(true);
    expect([...units.map((row) => row.serial)].sort()).toEqual(units.map((row) => row.serial));
    const events = await all((page: read.PageRequest<number>) => read.listEvents(database.pool, recipient(beta), page), 25);
    expect(events.every((row) => row.org_ids.includes(beta))).toBe(true);
    expect(events.some((row) => row.kind === 'shipment.book')).toBe(true);
  });

  it('pages a tenant\'s events from its cursor without gaps or repeats: every event that names it, in order', async () => {
    for (const orgId of [world.actors.alpha.orgId, world.actors.beta.orgId, world.actors.exporter.orgId]) {
      // The rule in plain SQL: the readers each event names (events.org_ids), which the
      // reader sets only index.
      const readable = await database.pool.query<{ seq: number }>('SELECT seq FROM events WHERE $1 = ANY (org_ids) ORDER BY seq', [orgId]);
      expect(readable.rows.length).toBeGreaterThan(20);
      if (orgId !== world.actors.exporter.orgId) {
        const shared = await database.pool.query<{ most: number }>('SELECT max(cardinality(offsets))::int AS most FROM event_reader_sets WHERE org_id = $1', [orgId]);
        expect(shared.rows[0]!.most).toBeGreaterThan(50);
      }
      for (const pageSize of [1, 7, 500]) {
        const paged = await all((page: read.PageRequest<number>) => read.listEvents(database.pool, recipient(orgId), page), pageSize);
        expect(paged.map((row) => row.seq), `${orgId}, pages of ${pageSize}`).toEqual(readable.rows.map((row) => row.seq));
      }
    }
    expect(await all((page: read.PageRequest<number>) => read.listEvents(database.pool, recipient('ORG-nobody'), page), 7)).toEqual([]);
  });

  it('has the full re-check hold the reader sets to the events (a set that shows a tenant an event not naming it, misses a reader, or lists one twice) and manifests to units', async () => {
    expect(await world.ledger.violations()).toEqual([]);
    const alpha = world.actors.alpha.orgId;
    const { rows: [foreign] } = await database.pool.query<{ seq: number }>('SELECT seq FROM events WHERE NOT ($1 = ANY (org_ids)) ORDER BY seq DESC LIMIT 1', [alpha]);
    const { rows: [own] } = await database.pool.query<{ seq: number }>('SELECT seq FROM events WHERE $1 = ANY (org_ids) ORDER BY seq DESC LIMIT 1', [alpha]);
    // One inside a set (not its last), so a second set can list it under another key.
    const { rows: [inner] } = await database.pool.query<{ seq: number }>(`SELECT e.seq FROM events e WHERE $1 = ANY (e.org_ids)
      AND NOT EXISTS (SELECT 1 FROM event_reader_sets r WHERE r.org_id = $1 AND r.last_seq = e.seq) ORDER BY e.seq LIMIT 1`, [alpha]);
    const tampered = async (sql: string, values: unknown[]) => {
      const client = await database.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(sql, values);
        return (await client.query<{ invariant: string; subject: string; detail: string }>('SELECT * FROM ledger_violations()')).rows;
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
    };
    const insertSet = 'INSERT INTO event_reader_sets (org_id, first_seq, last_seq, offsets) VALUES ($1, $2, $2, \'{0}\')';
    expect(await tampered(insertSet, [alpha, foreign!.seq])).toEqual([
      { invariant: 'event-readers', subject: String(foreign!.seq), detail: `a reader set of ${alpha} lists it, but the event does not name ${alpha}` },
    ]);
    expect(await tampered(insertSet, [alpha, inner!.seq])).toEqual([{ invariant: 'event-readers', subject: String(inner!.seq), detail: `reader sets of ${alpha} list it 2 times` }]);
    // A manifest line whose serial has no unit (the batch loader relies on there being one),
    // and one kept as moved on for a unit still in the shipment (migration 075): each also
    // makes the manifest one line longer than the shipment's serial_count.
    // Its shipment is under way, which no unit leaves: each line is named for that too.
    const { rows: [listed] } = await database.pool.query<{ shipment_id: string; serial_count: number; status: string }>(
      "SELECT s.id AS shipment_id, s.serial_count, s.status FROM units u JOIN shipments s ON s.id = u.shipment_id WHERE u.serial = 'RQ-5-A'");
    const { shipment_id: listedIn, serial_count: listedCount, status } = listed!;
    const longer = { invariant: 'invariant-4', subject: listedIn, detail: `serial_count ${listedCount}, manifest rows ${listedCount + 1} (${listedCount} units in it, 1 moved on)` };
    const underWay = (serial: string) => ({ invariant: 'invariant-4', subject: listedIn, detail: `serial ${serial} is kept as a unit that moved on, but the shipment is ${status}: a unit leaves only a shipment that has ended` });
    const moved = 'INSERT INTO moved_manifest_lines (shipment_id, serial) VALUES ($1, $2)';
    expect(await tampered(moved, [listedIn, 'RQ-5-GHOST'])).toEqual([
      longer,
      { invariant: 'invariant-4', subject: listedIn, detail: 'serial RQ-5-GHOST is in the manifest but has no unit' },
      underWay('RQ-5-GHOST'),
    ]);
    expect(await tampered(moved, [listedIn, 'RQ-5-A'])).toEqual([
      longer,
      { invariant: 'invariant-4', subject: listedIn, detail: 'serial RQ-5-A is kept as a unit that moved on, but its unit is still in this shipment' },
      underWay('RQ-5-A'),
    ]);
    expect(await tampered('DELETE FROM event_reader_sets WHERE org_id = $1 AND last_seq = $2', [alpha, own!.seq])).toContainEqual(
      { invariant: 'event-readers', subject: String(own!.seq), detail: `the event names ${alpha}, but no reader set of ${alpha} lists it` },
    );
  });

  it('answers a subject\'s history to its readers only: every event of the subject that names the viewer', async () => {
    const subjects = (await database.pool.query<{ subject_id: string }>('SELECT DISTINCT subject_id FROM events WHERE subject_id IS NOT NULL ORDER BY subject_id')).rows.map((row) => row.subject_id);
    expect(subjects.length).toBeGreaterThan(10);
    let seen = 0;
    for (const orgId of [world.actors.alpha.orgId, world.actors.beta.orgId, world.actors.exporter.orgId]) {
      for (const subjectId of subjects) {
        const truth = (await database.pool.query<{ seq: number }>('SELECT seq FROM events WHERE $2 = ANY (org_ids) AND (subject_id = $1 OR seq IN (SELECT seq FROM event_subjects WHERE subject_id = $1)) ORDER BY seq', [subjectId, orgId])).rows.map((row) => row.seq);
        const paged = await all((page: read.PageRequest<number>) => read.listEvents(database.pool, recipient(orgId), page, { subjectId }), 2);
        expect(paged.map((row) => row.seq), `${orgId} reading ${subjectId}`).toEqual(truth);
        seen += truth.length;
      }
    }
    expect(seen).toBeGreaterThan(20);
  });

  it('answers no for a subject\'s event when the viewer\'s next reader set starts further beyond it than an int2 offset reaches', async () => {
    const { rows: [first] } = await database.pool.query<{ seq: number; subject_id: string }>('SELECT seq, subject_id FROM events WHERE subject_id IS NOT NULL ORDER BY seq LIMIT 1');
    // A set 40,000 seqs on: the event's offset in it would not fit int2.
    const far = first!.seq + 40_000;
    await database.pool.query("INSERT INTO event_reader_sets (org_id, first_seq, last_seq, offsets) VALUES ('ORG-FAR', $1, $1, '{0}')", [far]);
    try {
      const page = await read.listEvents(database.pool, recipient('ORG-FAR'), { after: null, limit: 10 }, { subjectId: first!.subject_id });
      expect(page.rows).toEqual([]);
    } finally {
      await database.pool.query("DELETE FROM event_reader_sets WHERE org_id = 'ORG-FAR'");
    }
  });

  it('pages units for each tenant, with and without filters, exactly as the visibility rule reads them', async () => {
    const truth = async (orgId: string | null, custody?: string) => (await database.pool.query<{ serial: string }>(
      `SELECT u.serial FROM units u WHERE ($1::text IS NULL OR u.recipient_org_id = $1 OR EXISTS (SELECT 1 FROM shipments s WHERE s.id = u.shipment_id AND s.exporter_org_id = $1))
         AND ($2::text IS NULL OR u.custody = $2) ORDER BY u.serial`,
      [orgId, custody ?? null],
    )).rows.map((row) => row.serial);
    const viewers: Viewer[] = [recipient(world.actors.alpha.orgId), recipient(world.actors.beta.orgId), exporter(world.actors.exporter.orgId), everything, recipient('ORG-nobody')];
    for (const viewer of viewers) {
      for (const custody of [undefined, 'in_transit']) {
        const paged = await all((page: read.PageRequest<string>) => read.listUnits(database.pool, viewer, page, custody === undefined ? {} : { custody }), 7);
        expect(paged.map((row) => row.serial), `${viewer.orgId} ${custody}`).toEqual(await truth(viewer.orgId, custody));
        expect(paged.every((row) => row.demo === false)).toBe(true);
      }
    }
    expect((await truth(world.actors.exporter.orgId)).length).toBe(180);
    expect((await truth(world.actors.alpha.orgId, 'in_transit')).length).toBe(2);
    // An organisation that both exported a unit and receives it sees it once.
    const exporterId = world.actors.exporter.orgId;
    const { rows: [unit] } = await database.pool.query<{ recipient_org_id: string }>("SELECT recipient_org_id FROM units WHERE serial = 'RQ-5-A'");
    // (The ledger makes such a unit only through a shipment to itself; here the row is
    // changed in place, past the trigger of migration 020 that allows that only.)
    const unguarded = (statement: string) => `ALTER TABLE units DISABLE TRIGGER units_keep_recipient; ${statement}; ALTER TABLE units ENABLE TRIGGER units_keep_recipient`;
    await database.pool.query(unguarded(`UPDATE units SET recipient_org_id = ${pg.escapeLiteral(exporterId)} WHERE serial = 'RQ-5-A'`));
    try {
      for (const pageSize of [7, 500]) {
        const paged = await all((page: read.PageRequest<string>) => read.listUnits(database.pool, exporter(exporterId), page), pageSize);
        expect(paged.map((row) => row.serial), `pages of ${pageSize}`).toEqual(await truth(exporterId));
      }
    } finally {
      await database.pool.query(unguarded(`UPDATE units SET recipient_org_id = ${pg.escapeLiteral(unit!.recipient_org_id)} WHERE serial = 'RQ-5-A'`));
    }
  });

  it('reports utilisation per licence and allocation', async () => {
    const rows = await all((page: read.PageRequest<number>) => read.utilisation(database.pool, everything, page), 1);
    const exportLicence = rows.find((row) => row.id === world.exportLicenceId)!;
    expect(exportLicence.allocated_units).toBe(10_000);
    expect(exportLicence.reserved_units + exportLicence.shipped_units).toBe(180);
    const alphaExport = exportLicence.allocations.find((row) => row.id === world.allocations.alphaExport)!;
    expect(alphaExport.reserved_units + alphaExport.shipped_units).toBe(120);
    expect(alphaExport.shipped_units).toBe(2);
    const forAlpha = await all((page: read.PageRequest<number>) => read.utilisation(database.pool, recipient(world.actors.alpha.orgId), page), 5);
    expect(forAlpha.flatMap((row) => row.allocations).every((row) => row.recipient_org_id === world.actors.alpha.orgId)).toBe(true);
  });

  it('finds a token credential by id with its hash', async () => {
    const credential = await read.findTokenCredential(database.pool, 'TOK-none');
    expect(credential).toBeNull();
  });
});

describe('the utilisation report\'s pages', () => {
  it('end early, with a cursor to the next licence, once the allocations they embed reach the page\'s bound; a licence past its own bound keeps its flag', async () => {
    const { run, actors, productId } = world;
    // Licences with 3, 1, 0, 4 and 2 allocations, after the world's two with 2 each.
    const counts = [3, 1, 0, 4, 2];
    for (const [index, count] of counts.entries()) {
      const licenceId = String((await run('licence.create', {
        productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 100, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
        reference: `BIS-UTIL-${index}`, direction: 'export', holderId: actors.exporter.orgId, parties: [{ organisationId: actors.alpha.orgId, role: 'end_user' }],
      }, actors.bis)).licenceId);
      await run('licence.issue', { licenceId }, actors.bis);
      for (let made = 0; made < count; made += 1) await run('allocation.create', { licenceId, recipientId: actors.alpha.orgId, units: 1 }, actors.bis);
    }
    const bounds = { licenceAllocationsMax: 2, pageAllocationsMax: 3 };
    const unbounded = { licenceAllocationsMax: 1_000, pageAllocationsMax: 1_000 };
    for (const viewer of [everything, recipient(world.actors.alpha.orgId), exporter(world.actors.exporter.orgId)]) {
      const whole = (await read.utilisation(database.pool, viewer, { after: null, limit: 500 }, unbounded)).rows;
      expect(whole.some((licence) => licence.allocations.length > bounds.licenceAllocationsMax), `${viewer.orgId}`).toBe(true);
      for (const limit of [500, 2]) {
        const pages: read.Page<read.UtilisationLicence, number>[] = [];
        for (let after: number | null = null; pages.length === 0 || after !== null; after = pages[pages.length - 1]!.nextAfter) {
          pages.push(await read.utilisation(database.pool, viewer, { after, limit }, bounds));
        }
        const where = `${viewer.orgId}, pages of ${limit}`;
        // Every licence once, in order, each with its first allocations and the flag when it has more.
        expect(pages.flatMap((page) => page.rows.map((row) => row.id)), where).toEqual(whole.map((licence) => licence.id));
        for (const [index, row] of pages.flatMap((page) => page.rows).entries()) {
          const all = whole[index]!.allocations;
          expect(row.allocations, where).toEqual(all.slice(0, bounds.licenceAllocationsMax));
          expect(row.allocations_truncated, where).toBe(all.length > bounds.licenceAllocationsMax);
        }
        const embedded = (page: read.Page<read.UtilisationLicence, number>) => page.rows.reduce((sum, row) => sum + row.allocations.length, 0);
        for (const [index, page] of pages.entries()) {
          expect(page.rows.length, where).toBeGreaterThan(0);
          expect(page.rows.length, where).toBeLessThanOrEqual(limit);
          expect(embedded(page), where).toBeLessThanOrEqual(bounds.pageAllocationsMax);
          // A page ends early only where the next licence would take it past its bound.
          const next = pages[index + 1]?.rows[0];
          if (next !== undefined && page.rows.length < limit) expect(embedded(page) + next.allocations.length, where).toBeGreaterThan(bounds.pageAllocationsMax);
        }
        if (limit === 500) expect(pages.length, where).toBeGreaterThan(1);
      }
    }
  });

  it('embed no more than the named bound, which holds a licence\'s own bound', () => {
    expect(limits.utilisationPageAllocationsMax).toBeGreaterThanOrEqual(limits.embeddedRowsMax);
    expect(limits.utilisationPageAllocationsMax).toBeLessThan(limits.embeddedRowsMax * limits.pageSizeMax);
  });
});

describe('a licence read beside a writer', () => {
  it('answers its totals and its allocations from one committed state, even when a batch commits between the two reads', async () => {
    const { run, actors, exportLicenceId, allocations } = world;
    // A pool whose connections commit a change to the licence's allocations (alpha's shrinks
    // by a unit) right after the read's first statement.
    let reads = 0;
    let alphaUnits = (await database.pool.query<{ units: number }>('SELECT units FROM allocations WHERE id = $1', [allocations.alphaExport])).rows[0]!.units;
    const interleaving = {
      connect: async () => {
        const client = await database.pool.connect();
        const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
        (client as unknown as { query: typeof query }).query = async (...args: unknown[]) => {
          const result = await query(...args);
          const text = typeof args[0] === 'string' ? args[0] : '';
          if (!text.startsWith('BEGIN') && (reads += 1) === 1) await run('allocation.resize', { allocationId: allocations.alphaExport, units: (alphaUnits -= 1) }, actors.bis);
          return result;
        };
        return client;
      },
    };
    for (const read_ of [() => read.findLicence(interleaving as never, everything, exportLicenceId), async () => (await read.utilisation(interleaving as never, everything, { after: null, limit: 100 })).rows.find((row) => row.id === exportLicenceId)!]) {
      reads = 0;
      const licence = (await read_())!;
      expect(reads).toBeGreaterThan(1);
      expect(licence.allocations.reduce((sum, allocation) => sum + allocation.units, 0)).toBe(licence.allocated_units);
    }
  });
});

/**
 * Migration 033 on a ledger that has history: which units it marks as shipped, and which
 * ended claims it releases (their GPU UUIDs let go), as the ledger would have left them.
 * The claims and their release through the ledger are tested in
 * ledger/handlers/manifests-ownership.test.ts. The re-check's clauses for these rules (in
 * 034's ledger_violations) are tested last, on the rows the first test leaves.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { inRolledBack, manifestLinesBefore075 } from '../../test/support/rolled-back.ts';
import { bookListed, worldPerFile, type World } from '../../test/world.ts';
import { listMigrations } from './migrate.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const book = (serials: Parameters<typeof bookListed>[1]): Promise<string> => bookListed(world, serials);

describe('migration 033 on rows written before it', () => {
  it('marks as shipped the units a shipment that shipped lists, and releases the GPU UUIDs of claims that ended unshipped', async () => {
    const { run, actors } = world;
    const delivered = await book([{ serial: 'M33-SHIPPED', gpuUuid: 'GPU-33000000-0000-0000-0000-000000000001' }, 'M33-BACK']);
    await run('shipment.ship', { shipmentId: delivered }, actors.exporter);
    await run('shipment.clear', { shipmentId: delivered }, actors.mofcom);
    await run('shipment.deliver', { shipmentId: delivered }, actors.alpha);
    await run('units.return', { serials: ['M33-BACK'], reason: 'RMA' }, actors.alpha);
    // Returned, listed again with its GPU UUID, that booking cancelled: licensed, but it has shipped.
    const relisted = await book([{ serial: 'M33-BACK', gpuUuid: 'GPU-33000000-0000-0000-0000-000000000002' }, { serial: 'M33-CLAIM', gpuUuid: 'GPU-33000000-0000-0000-0000-000000000003' }]);
    await run('shipment.cancel', { shipmentId: relisted }, actors.exporter);
    await book([{ serial: 'M33-LIVE', gpuUuid: 'GPU-33000000-0000-0000-0000-000000000004' }]);
    const serials = ['M33-BACK', 'M33-CLAIM', 'M33-LIVE', 'M33-SHIPPED'];
    const rows = async (client: { query: typeof database.pool.query }) =>
      (await client.query(`SELECT serial, custody, gpu_uuid, ever_shipped FROM units WHERE serial = ANY($1) ORDER BY serial`, [serials])).rows;
    const asTheLedgerLeftThem = await rows(database.pool);
    expect(asTheLedgerLeftThem).toEqual([
      // Its GPU UUID was the cancelled booking's claim, let go since migration 037.
      { serial: 'M33-BACK', custody: 'licensed', gpu_uuid: null, ever_shipped: true },
      { serial: 'M33-CLAIM', custody: 'licensed', gpu_uuid: null, ever_shipped: false },
      { serial: 'M33-LIVE', custody: 'licensed', gpu_uuid: 'GPU-33000000-0000-0000-0000-000000000004', ever_shipped: false },
      { serial: 'M33-SHIPPED', custody: 'delivered', gpu_uuid: 'GPU-33000000-0000-0000-0000-000000000001', ever_shipped: true },
    ]);

    const migration = listMigrations().find((each) => each.version === 33)!;
    await inRolledBack(database.pool, async (client) => {
      // Back to the tables as 032 left them: no column, the ended claim still holding its GPU UUID.
      await client.query(`ALTER TABLE units DISABLE TRIGGER USER; UPDATE units SET gpu_uuid = 'GPU-33000000-0000-0000-0000-000000000003' WHERE serial = 'M33-CLAIM'; ALTER TABLE units ENABLE TRIGGER USER`);
      await client.query('ALTER TABLE units DROP COLUMN ever_shipped CASCADE'); // with the trigger whose WHEN names it, and the CHECK
      await client.query(`CREATE TRIGGER units_keep_identity BEFORE UPDATE ON units FOR EACH ROW
        WHEN (NEW.product_id IS DISTINCT FROM OLD.product_id OR (OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid) OR NEW.shipment_id IS DISTINCT FROM OLD.shipment_id)
        EXECUTE FUNCTION units_keep_identity()`);
      await client.query(manifestLinesBefore075); // the table this older migration reads
      await client.query(migration.sql);
      expect(await rows(client)).toEqual(asTheLedgerLeftThem);
      expect((await client.query(`SELECT * FROM ledger_violations()`)).rows).toEqual([]);
    });
  });

});

describe("ledger_violations() on units' claims (033's rules, 034's clauses), on the rows the test above leaves", () => {
  it('reports a unit marked against its shipments and an ended claim still holding a GPU UUID', async () => {
    await inRolledBack(database.pool, async (client) => {
      await client.query(`ALTER TABLE units DISABLE TRIGGER USER;
        UPDATE units SET gpu_uuid = 'GPU-33000000-0000-0000-0000-000000000003' WHERE serial = 'M33-CLAIM';
        UPDATE units SET ever_shipped = false, gpu_uuid = 'GPU-33000000-0000-0000-0000-000000000002' WHERE serial = 'M33-BACK';
        UPDATE units SET ever_shipped = true WHERE serial = 'M33-LIVE';
        ALTER TABLE units ENABLE TRIGGER USER`);
      const found = (await client.query(`SELECT subject, detail FROM ledger_violations() WHERE invariant = 'invariant-4' ORDER BY subject, detail`)).rows;
      // M33-BACK, unmarked, is also a claim that ended holding its GPU UUID.
      expect(found).toEqual([
        { subject: 'M33-BACK', detail: 'the unit is marked as never shipped, but a shipment that lists it has shipped' },
        { subject: 'M33-BACK', detail: expect.stringMatching(/^the unit never shipped and its shipment S-\d+ is cancelled, but it still holds GPU UUID GPU-33000000-0000-0000-0000-000000000002$/) },
        { subject: 'M33-CLAIM', detail: expect.stringMatching(/^the unit never shipped and its shipment S-\d+ is cancelled, but it still holds GPU UUID GPU-33000000-0000-0000-0000-000000000003$/) },
        { subject: 'M33-LIVE', detail: 'the unit is marked as shipped, but no shipment that lists it has shipped' },
      ]);
    });
  });
});

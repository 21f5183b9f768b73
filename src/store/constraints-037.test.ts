/**
 * Migration 037 in the database: which GPU UUIDs it marks as shipped on rows written before
 * it, the rules it holds (a shipped GPU UUID never changes; one that never shipped is let go
 * when its booking ends; a GPU UUID is nvidia-smi's form, in lower case), and the re-check's
 * clauses for them. The ledger's side is in ledger/handlers/gpu-uuid-claims.test.ts. Each
 * test works on the rows the first one leaves, in transactions rolled back.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal, inRolledBack, manifestLinesBefore075 } from '../../test/support/rolled-back.ts';
import { bookListed, worldPerFile, type World } from '../../test/world.ts';
import { listMigrations } from './migrate.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const uuid = (n: number) => `GPU-37000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

const book = (serials: Parameters<typeof bookListed>[1]): Promise<string> => bookListed(world, serials);

const serials = ['M37-BACK-ENDED', 'M37-BACK-LIVE', 'M37-CLAIM', 'M37-DEAD', 'M37-NONE', 'M37-SHIPPED', 'M37-X-LIVE'];
let cancelled = '';
let live = '';

describe('migration 037 on rows written before it', () => {
  it('marks the GPU UUIDs of units that shipped as shipped, in a live booking too, and no others', async () => {
    const { run, actors } = world;
    const delivered = await book([{ serial: 'M37-SHIPPED', gpuUuid: uuid(1) }, { serial: 'M37-DEAD', gpuUuid: uuid(2) }, 'M37-BACK-ENDED', 'M37-BACK-LIVE', 'M37-NONE', { serial: 'M37-X-LIVE', gpuUuid: uuid(6) }]);
    await run('shipment.ship', { shipmentId: delivered }, actors.exporter);
    await run('shipment.clear', { shipmentId: delivered }, actors.mofcom);
    await run('shipment.deliver', { shipmentId: delivered }, actors.alpha);
    await run('units.decommission', { serials: ['M37-DEAD'], reason: 'end of life' }, actors.alpha);
    await run('units.return', { serials: ['M37-BACK-ENDED', 'M37-BACK-LIVE', 'M37-X-LIVE'], reason: 'RMA' }, actors.alpha);
    // Returned units listed again with GPU UUIDs they did not ship with (one booking ended, one
    // lives), and one that shipped with its GPU UUID, listed again in the live booking.
    cancelled = await book([{ serial: 'M37-BACK-ENDED', gpuUuid: uuid(3) }]);
    await run('shipment.cancel', { shipmentId: cancelled }, actors.exporter);
    live = await book([{ serial: 'M37-BACK-LIVE', gpuUuid: uuid(4) }, { serial: 'M37-CLAIM', gpuUuid: uuid(5) }, 'M37-X-LIVE']);
    const rows = async (client: { query: typeof database.pool.query }) =>
      (await client.query(`SELECT serial, custody, gpu_uuid, gpu_uuid_shipped FROM units WHERE serial = ANY($1) ORDER BY serial`, [serials])).rows;
    expect(await rows(database.pool)).toEqual([
      { serial: 'M37-BACK-ENDED', custody: 'licensed', gpu_uuid: null, gpu_uuid_shipped: false },
      { serial: 'M37-BACK-LIVE', custody: 'licensed', gpu_uuid: uuid(4), gpu_uuid_shipped: false },
      { serial: 'M37-CLAIM', custody: 'licensed', gpu_uuid: uuid(5), gpu_uuid_shipped: false },
      { serial: 'M37-DEAD', custody: 'decommissioned', gpu_uuid: uuid(2), gpu_uuid_shipped: true },
      { serial: 'M37-NONE', custody: 'delivered', gpu_uuid: null, gpu_uuid_shipped: false },
      { serial: 'M37-SHIPPED', custody: 'delivered', gpu_uuid: uuid(1), gpu_uuid_shipped: true },
      { serial: 'M37-X-LIVE', custody: 'licensed', gpu_uuid: uuid(6), gpu_uuid_shipped: true },
    ]);

    const migration = listMigrations().find((each) => each.version === 37)!;
    await inRolledBack(database.pool, async (client) => {
      // Back to the tables as 036 left them: no column, 033's trigger, and the ended booking's
      // GPU UUID still on its returned unit, as 033's ledger left it.
      await client.query(`ALTER TABLE units DISABLE TRIGGER USER; UPDATE units SET gpu_uuid = '${uuid(3)}' WHERE serial = 'M37-BACK-ENDED'; ALTER TABLE units ENABLE TRIGGER USER`);
      await client.query('ALTER TABLE units DROP COLUMN gpu_uuid_shipped CASCADE'); // with the trigger whose WHEN names it, and the CHECKs
      await client.query(`CREATE TRIGGER units_keep_identity BEFORE UPDATE ON units FOR EACH ROW
        WHEN (NEW.product_id IS DISTINCT FROM OLD.product_id OR (OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid)
              OR NEW.shipment_id IS DISTINCT FROM OLD.shipment_id OR (OLD.ever_shipped AND NOT NEW.ever_shipped))
        EXECUTE FUNCTION units_keep_identity()`);
      await client.query(manifestLinesBefore075); // the table this older migration reads
      await client.query(migration.sql);
      // The decommissioned unit too, which 022's trigger would not let an UPDATE touch; the
      // returned units keep their GPU UUIDs, their bookings ended or live (nothing stored says
      // they did not ship with them, and M37-X-LIVE did); the live booking's claim on a unit
      // that never shipped waits for it to ship or end.
      expect(await rows(client)).toEqual([
        { serial: 'M37-BACK-ENDED', custody: 'licensed', gpu_uuid: uuid(3), gpu_uuid_shipped: true },
        { serial: 'M37-BACK-LIVE', custody: 'licensed', gpu_uuid: uuid(4), gpu_uuid_shipped: true },
        { serial: 'M37-CLAIM', custody: 'licensed', gpu_uuid: uuid(5), gpu_uuid_shipped: false },
        { serial: 'M37-DEAD', custody: 'decommissioned', gpu_uuid: uuid(2), gpu_uuid_shipped: true },
        { serial: 'M37-NONE', custody: 'delivered', gpu_uuid: null, gpu_uuid_shipped: false },
        { serial: 'M37-SHIPPED', custody: 'delivered', gpu_uuid: uuid(1), gpu_uuid_shipped: true },
        { serial: 'M37-X-LIVE', custody: 'licensed', gpu_uuid: uuid(6), gpu_uuid_shipped: true },
      ]);
      expect((await client.query(`SELECT * FROM ledger_violations()`)).rows).toEqual([]);
      // The live booking's end lets go of its claim, and of nothing a unit shipped with.
      await client.query('SAVEPOINT released');
      await expect(client.query(`UPDATE units SET gpu_uuid = NULL WHERE serial = 'M37-X-LIVE'`)).rejects.toThrow(`unit M37-X-LIVE has GPU UUID ${uuid(6)}; it cannot change`);
      await client.query('ROLLBACK TO SAVEPOINT released');
      // And 022's trigger is on again.
      await expect(client.query(`UPDATE units SET updated_seq = updated_seq WHERE serial = 'M37-DEAD'`)).rejects.toThrow(/a decommissioned or lost unit never changes again/);
    });
  });
});

describe('the database’s rules for GPU UUIDs (037)', () => {
  const update = (set: string, serial: string) => firstRefusal(database.pool, [`UPDATE units SET ${set} WHERE serial = $1`, [serial]]);

  it('keeps a shipped GPU UUID and its mark, and sets the mark only by shipping', async () => {
    expect(await update(`gpu_uuid = '${uuid(9)}'`, 'M37-SHIPPED')).toEqual({ code: '23514', message: `unit M37-SHIPPED has GPU UUID ${uuid(1)}; it cannot change` });
    expect(await update('gpu_uuid_shipped = false', 'M37-SHIPPED')).toEqual({ code: '23514', message: `unit M37-SHIPPED shipped with GPU UUID ${uuid(1)}; that stays so` });
    expect(await update('gpu_uuid_shipped = true', 'M37-BACK-LIVE')).toEqual({ code: '23514', message: `unit M37-BACK-LIVE is licensed; its GPU UUID ${uuid(4)} becomes fixed only by shipping` });
    // A live booking's GPU UUID is its claim: it stays while the booking lasts.
    expect(await update('gpu_uuid = NULL', 'M37-CLAIM')).toEqual({ code: '23514', message: `unit M37-CLAIM has GPU UUID ${uuid(5)}; it cannot change` });
  });

  it('lets go of a GPU UUID that never shipped, on a unit that shipped before, once its booking ended', async () => {
    const claimed = `ALTER TABLE units DISABLE TRIGGER USER; UPDATE units SET gpu_uuid = '${uuid(3)}' WHERE serial = 'M37-BACK-ENDED'; ALTER TABLE units ENABLE TRIGGER USER`;
    expect(await firstRefusal(database.pool, [claimed], [`UPDATE units SET gpu_uuid = NULL WHERE serial = 'M37-BACK-ENDED'`])).toBeUndefined();
    // Let go, not changed in place: another GPU UUID comes only with a listing.
    expect(await firstRefusal(database.pool, [claimed], [`UPDATE units SET gpu_uuid = '${uuid(8)}' WHERE serial = 'M37-BACK-ENDED'`]))
      .toEqual({ code: '23514', message: `unit M37-BACK-ENDED has GPU UUID ${uuid(3)}; it cannot change` });
  });

  it('holds the mark to its GPU UUID and custody: a shipped GPU UUID is there; one that never shipped is on a unit still licensed', async () => {
    expect(await update(`gpu_uuid = '${uuid(7)}'`, 'M37-NONE')).toEqual({ code: '23514', message: expect.stringMatching(/violates check constraint "units_gpu_uuid_claim"/) });
    expect(await firstRefusal(database.pool, [
      `INSERT INTO units (serial, product_id, recipient_org_id, custody, shipment_id, updated_seq, ever_shipped, gpu_uuid_shipped) VALUES ('M37-NEW', $1, $2, 'licensed', $3, 1, false, true)`,
      [world.productId, world.actors.alpha.orgId, live],
    ])).toEqual({ code: '23514', message: expect.stringMatching(/violates check constraint "units_gpu_uuid_shipped"/) });
  });

  it('refuses a GPU UUID written new that is not nvidia-smi’s form in lower case', async () => {
    const form = (value: string) => `unit M37-BACK-ENDED has GPU UUID ${value}; a GPU UUID is GPU- and 32 hex digits as nvidia-smi prints them, GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, in lower case`;
    for (const value of ['GPU-zzzz', 'GPU---------', 'GPU-123456781234-1234-1234-123456789abc', 'GPU-12345678-1234-1234-1234-123456789abc0', 'GPU-1234567-81234-1234-1234-123456789abc', 'gpu-12345678-1234-1234-1234-123456789abc']) {
      expect(await update(`gpu_uuid = '${value}'`, 'M37-BACK-ENDED'), value).toEqual({ code: '23514', message: value.startsWith('gpu') ? expect.any(String) : form(value) });
    }
    expect(await update(`gpu_uuid = 'GPU-ABCDEF12-1234-1234-1234-123456789abc'`, 'M37-BACK-ENDED')).toEqual({
      code: '23514', message: 'unit M37-BACK-ENDED has GPU UUID GPU-ABCDEF12-1234-1234-1234-123456789abc; a GPU UUID is stored as GPU- and lower-case hex (GPU-abcdef12-1234-1234-1234-123456789abc)',
    });
    expect(await update(`gpu_uuid = '${uuid(11)}'`, 'M37-BACK-ENDED')).toBeUndefined();
    // Inserted: judged the same way.
    expect(await firstRefusal(database.pool, [
      `INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, updated_seq) VALUES ('M37-NEW', 'GPU-0000', $1, $2, 'licensed', $3, 1)`,
      [world.productId, world.actors.alpha.orgId, live],
    ])).toEqual({ code: '23514', message: 'unit M37-NEW has GPU UUID GPU-0000; a GPU UUID is GPU- and 32 hex digits as nvidia-smi prints them, GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, in lower case' });
  });
});

describe('ledger_violations() on GPU UUIDs (037’s clauses)', () => {
  it('reports a GPU UUID that never shipped left on a unit whose booking ended, and one not of nvidia-smi’s form (in either case)', async () => {
    await inRolledBack(database.pool, async (client) => {
      await client.query(`ALTER TABLE units DISABLE TRIGGER USER;
        UPDATE units SET gpu_uuid = '${uuid(3)}' WHERE serial = 'M37-BACK-ENDED';
        UPDATE units SET gpu_uuid = 'GPU-1234' WHERE serial = 'M37-CLAIM';
        UPDATE units SET gpu_uuid = upper(gpu_uuid) WHERE serial = 'M37-BACK-LIVE';
        ALTER TABLE units ENABLE TRIGGER USER`);
      // Upper-case hex, as a unit listed before 025 may keep, is no violation: only the form is.
      expect((await client.query(`SELECT invariant, subject, detail FROM ledger_violations() ORDER BY subject`)).rows).toEqual([
        { invariant: 'invariant-4', subject: 'M37-BACK-ENDED', detail: `its GPU UUID ${uuid(3)} never shipped and its shipment ${cancelled} is cancelled, but the unit still holds it` },
        { invariant: 'gpu-uuid-form', subject: 'M37-CLAIM', detail: 'GPU UUID GPU-1234 is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)' },
      ]);
    });
  });
});

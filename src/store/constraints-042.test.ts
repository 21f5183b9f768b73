/**
 * Migration 042 in the database: a GPU UUID that a release before 037 accepted (GPU- and 8 to
 * 60 hex digits and hyphens) is recorded with its unit, spelling and all, and the re-check's
 * gpu-uuid-form clause passes a unit that still holds exactly that spelling, so `chipledger
 * check` is clean after an upgrade; a malformed GPU UUID written since (037's triggers off) is
 * still reported, on a recorded unit too. The record itself never changes. The first test
 * takes this file's database back to 040 with such rows and upgrades it as an operator's
 * would be; the others work on the rows it leaves.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { runCheck } from '../../test/support/check-command.ts';
import { firstRefusal, inRolledBack } from '../../test/support/rolled-back.ts';
import { bookListed, worldPerFile, type World } from '../../test/world.ts';
import { listMigrations } from './migrate.ts';
import type { PoolClient } from './pool.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const uuid = (n: number) => `GPU-41000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** Spellings the releases before 037 accepted (^GPU-[0-9a-fA-F-]{8,60}$), as the upgrade review found them. */
const short = 'GPU-0123abcd';
const groups = 'GPU-89ab-cdef-0123';
const claimed = 'GPU-4567CDEF';

const book = (serials: Parameters<typeof bookListed>[1]): Promise<string> => bookListed(world, serials);

/** `chipledger check` on this file's database. */
const check = () => runCheck(database.url);

const migration = (version: number) => listMigrations().find((each) => each.version === version)!;

async function formViolations(client: Pick<PoolClient, 'query'>): Promise<Array<{ subject: string; detail: string }>> {
  return (await client.query(`SELECT subject, detail FROM ledger_violations() WHERE invariant = 'gpu-uuid-form' ORDER BY subject`)).rows;
}

const notOfForm = (value: string) => `GPU UUID ${value} is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)`;

/** Writes GPU UUIDs straight into units, past 037's triggers, as a release before 037 (or a hand with the triggers off) would. */
async function writeAround037(client: Pick<PoolClient, 'query'>, spellings: Record<string, string | null>): Promise<void> {
  await client.query('ALTER TABLE units DISABLE TRIGGER USER');
  for (const [serial, value] of Object.entries(spellings)) await client.query('UPDATE units SET gpu_uuid = $1 WHERE serial = $2', [value, serial]);
  await client.query('ALTER TABLE units ENABLE TRIGGER USER');
}

let live = '';

describe('an upgrade from a release before 037', () => {
  it('records the GPU UUIDs that release accepted, and check is clean after it', async () => {
    const { run, actors } = world;
    const shipped = await book([{ serial: 'M41-SHORT', gpuUuid: uuid(1) }, { serial: 'M41-GROUPS', gpuUuid: uuid(2) }, { serial: 'M41-UPPER', gpuUuid: uuid(3) }, { serial: 'M41-FINE', gpuUuid: uuid(4) }]);
    await run('shipment.ship', { shipmentId: shipped }, actors.exporter);
    live = await book([{ serial: 'M41-CLAIM', gpuUuid: uuid(5) }]);

    // The database as 040 left it after an upgrade from before 037: units listed then keep
    // spellings 037 refuses, shipped (fixed for good) and a live booking's claim alike, and
    // upper-case hex, which 025 let units listed before it keep. Then 042 undone: its table,
    // its function, 041's part of the re-check for the form and its row in schema_migrations.
    await writeAround037(database.pool, { 'M41-SHORT': short, 'M41-GROUPS': groups, 'M41-UPPER': uuid(3).toUpperCase(), 'M41-CLAIM': claimed });
    const part = /CREATE FUNCTION ledger_check_gpu_uuid_form\(\)[^]*?\n\$\$;/.exec(migration(41).sql)?.[0];
    expect(part).toBeDefined();
    await database.pool.query('DROP TABLE units_gpu_uuid_legacy; DROP FUNCTION units_gpu_uuid_legacy_fixed()');
    await database.pool.query(part!.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION'));
    await database.pool.query('DELETE FROM schema_migrations WHERE version = 42');
    // The finding: before 042, each is a violation that nothing can clear.
    expect(await formViolations(database.pool)).toEqual([
      { subject: 'M41-CLAIM', detail: notOfForm(claimed) },
      { subject: 'M41-GROUPS', detail: notOfForm(groups) },
      { subject: 'M41-SHORT', detail: notOfForm(short) },
    ]);

    const { code, lines } = await check();
    expect({ code, lines }).toEqual({ code: 0, lines: [
      expect.stringMatching(/^Every invariant holds: no violations \(\d+ events in database /),
      '3 units keep GPU UUIDs in the spelling a release before migration 037 accepted (recorded by migration 042, not a violation).',
    ] });
    expect((await database.pool.query('SELECT version FROM schema_migrations WHERE version = 42')).rows).toEqual([{ version: 42 }]);
    // Only the spellings not of the form, in either case; not upper-case hex, which is of it.
    expect((await database.pool.query('SELECT serial, gpu_uuid FROM units_gpu_uuid_legacy ORDER BY serial')).rows).toEqual([
      { serial: 'M41-CLAIM', gpu_uuid: claimed },
      { serial: 'M41-GROUPS', gpu_uuid: groups },
      { serial: 'M41-SHORT', gpu_uuid: short },
    ]);
  });
});

describe('ledger_violations() on GPU UUIDs since 042', () => {
  it('reports a malformed GPU UUID written since, on a unit not recorded or in another spelling than the recorded one', async () => {
    await inRolledBack(database.pool, async (client) => {
      await writeAround037(client, { 'M41-FINE': 'GPU-feedface', 'M41-SHORT': short.toUpperCase(), 'M41-CLAIM': groups.replace('89ab', '89ac') });
      // M41-GROUPS keeps its spelling: still passed.
      expect(await formViolations(client)).toEqual([
        { subject: 'M41-CLAIM', detail: notOfForm('GPU-89ac-cdef-0123') },
        { subject: 'M41-FINE', detail: notOfForm('GPU-feedface') },
        { subject: 'M41-SHORT', detail: notOfForm('GPU-0123ABCD') },
      ]);
    });
  });

  it('makes check exit 1 on a malformed GPU UUID written after 042 with the triggers off', async () => {
    await writeAround037(database.pool, { 'M41-FINE': 'GPU-feedface' });
    try {
      const { code, lines } = await check();
      expect(code).toBe(1);
      expect(lines[0]).toMatch(/^1 invariant violation\(s\) /);
      expect(lines.join('\n')).toMatch(/gpu-uuid-form +M41-FINE +GPU UUID GPU-feedface is not of the form/);
    } finally {
      await writeAround037(database.pool, { 'M41-FINE': uuid(4) });
    }
    expect((await check()).code).toBe(0);
  });

  it('lets the ledger go on with a recorded GPU UUID: a live booking’s claim is let go when it is cancelled', async () => {
    await world.run('shipment.cancel', { shipmentId: live }, world.actors.exporter);
    expect((await database.pool.query(`SELECT gpu_uuid FROM units WHERE serial = 'M41-CLAIM'`)).rows).toEqual([{ gpu_uuid: null }]);
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('the record of GPU UUIDs spelt before 037 (042)', () => {
  it('is never added to, changed or emptied', async () => {
    const refused = (operation: string) => ({ code: '23001', message: `units_gpu_uuid_legacy lists the GPU UUIDs migration 042 found written before 037; it never changes (${operation} refused)` });
    expect(await firstRefusal(database.pool, [`INSERT INTO units_gpu_uuid_legacy (serial, gpu_uuid) VALUES ('M41-FINE', 'GPU-feedface')`])).toEqual(refused('INSERT'));
    expect(await firstRefusal(database.pool, [`UPDATE units_gpu_uuid_legacy SET gpu_uuid = 'GPU-feedface' WHERE serial = 'M41-SHORT'`])).toEqual(refused('UPDATE'));
    expect(await firstRefusal(database.pool, [`DELETE FROM units_gpu_uuid_legacy WHERE serial = 'M41-SHORT'`])).toEqual(refused('DELETE'));
    expect(await firstRefusal(database.pool, ['TRUNCATE units_gpu_uuid_legacy'])).toEqual(refused('TRUNCATE'));
  });
});

/**
 * The re-check's part event-columns (migration 057): an event's row (kind, actor, subject, time,
 * seq) says what its canonical bytes say. Each case rewrites one event's row by hand, as only
 * the tables' owner can (the trigger that keeps an event's columns, 028, switched off), in a
 * transaction always rolled back; before 057 the re-check found nothing in any of them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import type { PoolClient } from './pool.ts';
import { ledgerViolations } from './violations.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

let shipmentId: string;
/** The shipment.book event of shipmentId, as its row holds it. */
let booked: { seq: number; actor: string; at: Date };

beforeAll(async () => {
  const { run, actors, productId, allocations } = world;
  shipmentId = String((await run('shipment.book', {
    exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units: 2, deadline: '2026-03-01T00:00:00Z',
  }, actors.exporter)).shipmentId);
  const { rows } = await database.pool.query<{ seq: string; actor: string; at: string }>("SELECT seq, actor, at FROM events WHERE kind = 'shipment.book' AND subject_id = $1", [shipmentId]);
  booked = { seq: Number(rows[0]!.seq), actor: rows[0]!.actor, at: new Date(rows[0]!.at) };
});

/** The event-columns violations after `change` (SQL on the booking's event, triggers kept off for it), rolled back after. */
async function afterChange(change: string): Promise<Array<{ subject: string; detail: string }>> {
  return inRolledBack(database.pool, async (client: PoolClient) => {
    await client.query('ALTER TABLE events DISABLE TRIGGER events_keep_columns');
    await client.query(`${change} WHERE seq = $1`, [booked.seq]);
    return (await ledgerViolations(client)).filter((row) => row.invariant === 'event-columns').map(({ subject, detail }) => ({ subject, detail }));
  });
}

const at = (date: Date) => date.toISOString();

describe('the re-check’s part event-columns (057)', () => {
  it('finds nothing on the ledger’s own events', async () => {
    expect((await ledgerViolations(database.pool)).filter((row) => row.invariant === 'event-columns')).toEqual([]);
  });

  it.each([
    ['its kind', "UPDATE events SET kind = 'shipment.cancel'", 'shipment.cancel', () => booked.actor, () => shipmentId, () => at(booked.at)],
    ['its actor', "UPDATE events SET actor = 'TOK-1'", 'shipment.book', () => 'TOK-1', () => shipmentId, () => at(booked.at)],
    // A record's creation names it after its own seq (053's constraint): another such name.
    ['its subject', "UPDATE events SET subject_id = 'L-' || seq", 'shipment.book', () => booked.actor, () => `L-${booked.seq}`, () => at(booked.at)],
    ['its time', "UPDATE events SET at = at + interval '1 day'", 'shipment.book', () => booked.actor, () => shipmentId, () => at(new Date(booked.at.getTime() + 86_400_000))],
  ])('names an event whose row changed %s', async (_what, change, kind, actor, subject, time) => {
    expect(await afterChange(change)).toEqual([{
      subject: `event ${booked.seq}`,
      detail: `its row says ${kind} by ${actor()} of ${subject()} at ${time()}, but its canonical bytes (its leaf in the log) say shipment.book by ${booked.actor} of ${shipmentId} at ${at(booked.at)}, as event ${booked.seq}`,
    }]);
  });

  it('names an event whose bytes are not an event’s JSON, and still checks the others', async () => {
    const found = await inRolledBack(database.pool, async (client) => {
      await client.query('ALTER TABLE events DISABLE TRIGGER events_keep_columns');
      await client.query(`UPDATE events SET canonical = '\\xff' WHERE seq = $1`, [booked.seq]);
      await client.query(`UPDATE events SET kind = 'token.revoke' WHERE seq = $1`, [booked.seq - 1]);
      return (await ledgerViolations(client)).filter((row) => row.invariant === 'event-columns');
    });
    expect(found.map((row) => row.subject)).toEqual([`event ${booked.seq - 1}`, `event ${booked.seq}`]);
    expect(found[1]!.detail).toMatch(/^its canonical bytes are not an event's JSON \(invalid byte sequence for encoding "UTF8": 0xff\), so its row cannot be held to them$/);
  });
});

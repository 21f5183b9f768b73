/**
 * Migration 053 in the database: the subject index leaves out the events that make the record
 * they are about, and a check holds what lets a history find them by seq instead: such an
 * event's subject ends in its seq. Writes here run in transactions rolled back.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { listEvents, recordMakingKinds, seqInSubject } from './event-queries.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

/** The kinds quoted in an SQL text's `kind NOT IN (…)` or `kind IN (…)`, in order. */
function kindsIn(sql: string): string[] {
  const list = /kind (?:NOT )?IN \(([^)]*)\)/.exec(sql) ?? /kind <> ALL \(\(?ARRAY\[([^\]]*)\]/.exec(sql);
  expect(list, sql).not.toBeNull();
  return [...list![1]!.matchAll(/'([^']+)'/g)].map((match) => match[1]!);
}

async function eventAt(seq: number, kind: string, subject: string | null): Promise<{ code: string; message: string } | undefined> {
  return firstRefusal(database.pool, [`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical) VALUES ($1, now(), $2, 'system', $3, '{}', '\\x7b7d'::bytea)`, [seq, kind, subject]]);
}

describe('the subject index without the events that make records (053)', () => {
  it('holds the same kinds in its predicate, its check, the history query and the re-check of 045', async () => {
    const { rows: [index] } = await database.pool.query<{ definition: string }>(`SELECT indexdef AS definition FROM pg_indexes WHERE indexname = 'events_subject'`);
    const { rows: [check] } = await database.pool.query<{ definition: string }>(`SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conname = 'events_creation_subject_carries_seq'`);
    const { rows: [part] } = await database.pool.query<{ definition: string }>(`SELECT pg_get_functiondef('ledger_check_event_rows'::regproc) AS definition`);
    const expected = [...recordMakingKinds].sort();
    expect(index!.definition).toMatch(/\(subject_id, seq\) WHERE/);
    expect(kindsIn(index!.definition).sort()).toEqual(expected);
    expect(kindsIn(check!.definition).sort()).toEqual(expected);
    expect(kindsIn(part!.definition.slice(part!.definition.indexOf('making AS'))).sort()).toEqual(expected);
  });

  it('refuses an event that makes a record whose subject does not end in its seq, and takes every other', async () => {
    const { rows: [head] } = await database.pool.query<{ size: string }>('SELECT size::text FROM log_head');
    const seq = Number(head!.size) + 10;
    for (const kind of recordMakingKinds) {
      expect(await eventAt(seq, kind, `X-${seq}`), kind).toBeUndefined();
      const refused = await eventAt(seq, kind, `X-${seq + 1}`);
      expect(refused?.code, kind).toBe('23514');
      expect(refused?.message).toMatch(/events_creation_subject_carries_seq/);
      // Leading zeros, no '-' and a seq in the middle are not the seq the history looks up.
      for (const subject of [`X-0${seq}`, `X${seq}`, `${seq}`, `X-${seq}-A`]) expect((await eventAt(seq, kind, subject))?.code, `${kind} ${subject}`).toBe('23514');
      expect(await eventAt(seq, kind, `A-B-${seq}`), kind).toBeUndefined();
    }
    // An event about a record made before it names any subject; one with none passes too.
    for (const subject of ['X-1', 'anything', null]) expect(await eventAt(seq, 'shipment.ship', subject)).toBeUndefined();
    expect(await eventAt(seq, 'site.register', null)).toBeUndefined();
  });

  it('lists a record’s history with the event that made it, read by its seq, and the later ones by the index', async () => {
    const booking = await world.run('shipment.book', { exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-03-01T00:00:00Z' }, world.actors.exporter);
    const shipmentId = String(booking.shipmentId);
    await world.run('shipment.cancel', { shipmentId }, world.actors.exporter);
    const made = seqInSubject(shipmentId)!;
    const history = await listEvents(database.pool, { orgId: null, allocations: 'related' }, { after: null, limit: 10 }, { subjectId: shipmentId });
    expect(history.rows.map((row) => [row.seq, row.kind])).toEqual([[made, 'shipment.book'], [made + 1, 'shipment.cancel']]);
    // A page after the booking's seq leaves it out: it is not read again.
    const after = await listEvents(database.pool, { orgId: null, allocations: 'related' }, { after: made, limit: 10 }, { subjectId: shipmentId });
    expect(after.rows.map((row) => row.kind)).toEqual(['shipment.cancel']);
  });
});

describe('seqInSubject', () => {
  it('reads the seq as the check does: the digits after the last "-", with no leading zero, up to the largest seq', () => {
    expect(seqInSubject('SHP-1234')).toBe(1234);
    expect(seqInSubject('SITE-0')).toBe(0);
    expect(seqInSubject('A-B-7')).toBe(7);
    expect(seqInSubject(`SHP-${Number.MAX_SAFE_INTEGER}`)).toBe(Number.MAX_SAFE_INTEGER);
    for (const subject of ['42', 'SHP-', 'SHP-012', 'SHP-12a', 'SHP-1e3', 'SHP-+1', `SHP-${Number.MAX_SAFE_INTEGER + 1}`, 'SHP-99999999999999999', 'SN12345', '']) expect(seqInSubject(subject), subject).toBeNull();
  });
});

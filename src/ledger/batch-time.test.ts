/**
 * A batch's time never goes back (migration 031, batch-time.ts batchTime): a clock stepped
 * back, or a second process whose clock lags, dates its events and judges validity at the
 * newest committed event's time, and the database refuses any batch that would go back.
 */
import { describe, expect, it } from 'vitest';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import { licencePair } from '../../test/support/licence-pair.ts';
import { ManualClock } from '../core/clock.ts';
import { limits } from '../core/limits.ts';
import { eventTimeBackCode } from '../store/head-lock.ts';
import { listMigrations } from '../store/migrate.ts';
import { createPool } from '../store/pool.ts';
import { Ledger, type Answer } from './ledger.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, db) => { world = made; database = db; });

interface Pair { exportAllocationId: string; importAllocationId: string }

/** An export and an import licence valid until `validTo`, issued now, with an allocation to alpha on each. */
async function pair(validTo: string): Promise<Pair> {
  const { exportAllocationId, importAllocationId } = await licencePair(world, { validTo, exportUnits: 50, importUnits: 50 });
  return { exportAllocationId, importAllocationId };
}

const book = (ledger: Ledger, on: Pair): Promise<Answer> => ledger.submit('shipment.book', {
  ...on, productId: world.productId, units: 1, deadline: '2026-12-01T00:00:00Z',
}, world.actors.exporter);

/** An accepted command with one event and no time rule of its own. */
const registerSite = async (ledger: Ledger, name: string): Promise<number> => Number(expectOk(await ledger.submit('site.register', {
  name, province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10,
}, world.actors.alpha)).seq);

const refusal = (answer: Answer) => (answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule });

async function eventAt(seq: number): Promise<string> {
  return (await database.pool.query<{ at: string }>('SELECT at FROM events WHERE seq = $1', [seq])).rows[0]!.at;
}

/** Events dated before the event before them, in seq order: none, ever. */
async function eventsGoingBack(): Promise<Array<{ seq: number; at: string; before: string }>> {
  return (await database.pool.query(`SELECT seq::int, at, before FROM (SELECT seq, at, lag(at) OVER (ORDER BY seq) AS before FROM events) e WHERE at < before`)).rows;
}

describe('a batch is dated no earlier than the newest committed event', () => {
  it('a clock stepped back dates the batch at the newest event and judges licence validity then', async () => {
    world.clock.set('2026-06-01T12:00:00Z');
    const on = await pair('2026-06-01T12:00:05Z');
    world.clock.set('2026-06-01T12:00:10Z');
    const late = await registerSite(world.ledger, 'DC-1');
    // Stepped back to before the licences' end: the booking is judged at 12:00:10, not 12:00:01.
    world.clock.set('2026-06-01T12:00:01Z');
    expect(refusal(await book(world.ledger, on))).toEqual({ code: 'licence_not_valid', rule: 'licence-validity' });
    const ahead = world.ledger.sequencer.stats.aheadBatches;
    const next = await registerSite(world.ledger, 'DC-2');
    expect(world.ledger.sequencer.stats.aheadBatches).toBe(ahead + 1); // sent ahead, dated from the cached head
    expect({ late: await eventAt(late), next: await eventAt(next) }).toEqual({ late: '2026-06-01T12:00:10.000Z', next: '2026-06-01T12:00:10.000Z' });
    // The clock catching up again dates batches by it.
    world.clock.set('2026-06-01T12:00:11Z');
    expect(await eventAt(await registerSite(world.ledger, 'DC-3'))).toBe('2026-06-01T12:00:11.000Z');
    expect(await eventsGoingBack()).toEqual([]);
    expect(await world.ledger.violations()).toEqual([]);
  });

  it('two processes with clocks 5 s apart: the lagging one dates its events no earlier and refuses a booking past the licence end', async () => {
    world.clock.set('2026-06-30T23:59:00Z');
    const on = await pair('2026-07-01T00:00:00Z');
    const poolB = createPool({ url: database.url, connectionsMax: 4, applicationName: 'chipledger-test-b' });
    const ledgerB = await Ledger.open({ logSealingKey: testSealingKey, pool: poolB, clock: new ManualClock('2026-06-30T23:59:57Z') });
    try {
      world.clock.set('2026-07-01T00:00:02Z');
      expect(refusal(await book(world.ledger, on))).toEqual({ code: 'licence_not_valid', rule: 'licence-validity' });
      const fromA = await registerSite(world.ledger, 'DC-A');
      // B's clock reads 23:59:57, before the licences' end; the log already holds 00:00:02.
      expect(refusal(await book(ledgerB, on))).toEqual({ code: 'licence_not_valid', rule: 'licence-validity' });
      const fromB = await registerSite(ledgerB, 'DC-B');
      expect({ fromA: await eventAt(fromA), fromB: await eventAt(fromB) }).toEqual({ fromA: '2026-07-01T00:00:02.000Z', fromB: '2026-07-01T00:00:02.000Z' });
    } finally {
      await ledgerB.close();
      await poolB.end();
    }
    expect(await eventsGoingBack()).toEqual([]);
    expect(await world.ledger.violations()).toEqual([]);
  });
});

describe('a clock far behind the ledger', () => {
  it('is refused unavailable, writing nothing, rather than dating batches at a time it does not read', async () => {
    world.clock.set('2026-08-01T12:00:00Z');
    await registerSite(world.ledger, 'DC-far-1');
    const size = Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size);
    // Within the bound: drift, absorbed.
    world.clock.set(new Date(Date.parse('2026-08-01T12:00:00Z') - limits.clockBehindLedgerMsMax).toISOString());
    expect(await eventAt(await registerSite(world.ledger, 'DC-far-2'))).toBe('2026-08-01T12:00:00.000Z');
    // Past it: refused, with both times, and nothing written (sent ahead or the classic way).
    world.clock.set(new Date(Date.parse('2026-08-01T12:00:00Z') - limits.clockBehindLedgerMsMax - 1_000).toISOString());
    const answer = await world.ledger.submit('site.register', { name: 'DC-far-3', province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10 }, world.actors.alpha);
    expect(refusal(answer)).toEqual({ code: 'unavailable', rule: 'clock-behind-ledger' });
    expect(answer.ok ? '' : answer.error.message).toMatch(/newest event is dated 2026-08-01T12:00:00\.000Z, 301 s ahead of this server's clock/);
    expect(Number((await database.pool.query('SELECT size FROM log_head')).rows[0].size)).toBe(size + 1);
    // The clock put right: writing again.
    world.clock.set('2026-08-01T12:00:01Z');
    expect(await eventAt(await registerSite(world.ledger, 'DC-far-4'))).toBe('2026-08-01T12:00:01.000Z');
  });
});

describe('the database refuses event times going back (migration 031)', () => {
  const event = (seq: string, at: string) => `INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
    VALUES (${seq}, ${at}, 'site.register', 'TOK-raw', NULL, '{}', '\\x7b7d'::bytea)`;

  /** Runs `sql` under the head lock and rolls back; the error it raised, or what log_head holds after it. */
  async function underLock(sql: string): Promise<{ code: string; message: string } | { size: number; at: string }> {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN; SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE');
      const head = await client.query(`${sql}; SELECT size::int, at FROM log_head`).then(
        (results) => (results as unknown as Array<{ rows: Array<{ size: number; at: string }> }>).at(-1)!.rows[0]!,
        (error: { code: string; message: string }) => ({ code: error.code, message: error.message }),
      );
      return head;
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }

  it('refuses a batch with an event dated before log_head.at, and one whose events go back within it', async () => {
    const { size, at } = (await database.pool.query<{ size: number; at: string }>('SELECT size::int, at FROM log_head')).rows[0]!;
    const before = await underLock(`${event('(SELECT size FROM log_head)', "(SELECT at - interval '1 millisecond' FROM log_head)")}; UPDATE log_head SET size = size + 1`);
    expect(before).toEqual({ code: eventTimeBackCode, message: expect.stringMatching(new RegExp(`^event times never go back: event ${size} is dated .* before .*at size ${size}\\)$`)) });
    const within = await underLock(`${event('(SELECT size FROM log_head)', "(SELECT at + interval '2 seconds' FROM log_head)")};
      ${event('(SELECT size + 1 FROM log_head)', "(SELECT at + interval '1 second' FROM log_head)")}; UPDATE log_head SET size = size + 2`);
    expect(within).toEqual({ code: eventTimeBackCode, message: expect.stringContaining(`event ${size + 1} is dated`) });
    // Dated at or after the head's time, the batch goes in and the head takes its newest time.
    const later = new Date(Date.parse(at) + 1_000).toISOString();
    expect(await underLock(`${event('(SELECT size FROM log_head)', `'${later}'`)}; UPDATE log_head SET size = size + 1`)).toEqual({ size: size + 1, at: later });
  });

  it('takes and refuses batches whose events share one time as before, and still names the first event of a batch that goes back (migration 054)', async () => {
    const { size, at } = (await database.pool.query<{ size: number; at: string }>('SELECT size::int, at FROM log_head')).rows[0]!;
    const batch = (...times: string[]) => `${times.map((time, offset) => event(`(SELECT size + ${offset} FROM log_head)`, time)).join('; ')}; UPDATE log_head SET size = size + ${times.length}`;
    const head = "(SELECT at FROM log_head)";
    // All of one time (the ledger's batches): before the head's, refused at the first event.
    const earlier = "(SELECT at - interval '1 second' FROM log_head)";
    expect(await underLock(batch(earlier, earlier, earlier))).toEqual({ code: eventTimeBackCode, message: expect.stringMatching(new RegExp(`^event times never go back: event ${size} is dated `)) });
    // At the head's time, or after it, taken.
    expect(await underLock(batch(head, head, head))).toEqual({ size: size + 3, at: new Date(at).toISOString() });
    // Times that differ and rise are taken; the head takes the newest.
    const plus = (seconds: number) => `(SELECT at + interval '${seconds} seconds' FROM log_head)`;
    expect(await underLock(batch(plus(1), plus(1), plus(2), plus(3)))).toEqual({ size: size + 4, at: new Date(Date.parse(at) + 3_000).toISOString() });
    // One that goes back after others of one time is named.
    expect(await underLock(batch(plus(2), plus(2), plus(1), plus(3)))).toEqual({ code: eventTimeBackCode, message: expect.stringContaining(`event ${size + 2} is dated`) });
  });

  it('refuses a head that counts events its update cannot see: written after it, or in the same statement (migration 052)', async () => {
    const { size } = (await database.pool.query<{ size: number }>('SELECT size::int FROM log_head')).rows[0]!;
    const unseen = expect.stringMatching(new RegExp(`^log_head would count events ${size} to ${size} but this statement sees 0 of them: write a batch's events before the head's update`));
    expect(await underLock(`UPDATE log_head SET size = size + 1; ${event('(SELECT size - 1 FROM log_head)', "'2001-01-01T00:00:00Z'")}`)).toEqual({ code: eventTimeBackCode, message: unseen });
    // The ledger benchmark's baseline wrote its events so, and 4,112 went back in time unseen.
    const together = `WITH event AS (${event('(SELECT size FROM log_head)', "'2001-01-01T00:00:00Z'")}) UPDATE log_head SET size = size + 1`;
    expect(await underLock(together)).toEqual({ code: eventTimeBackCode, message: unseen });
  });

  it('refuses log_head.at going back, or moving without a batch of events', async () => {
    expect(await underLock("UPDATE log_head SET at = at - interval '1 millisecond'")).toEqual({ code: eventTimeBackCode, message: expect.stringMatching(/^event times never go back: log_head.at would go from .* back to /) });
    expect(await underLock("UPDATE log_head SET at = at + interval '1 second'")).toEqual({ code: eventTimeBackCode, message: expect.stringMatching(/moves only with a batch's events/) });
  });

  it('starts log_head.at at the newest event of a ledger migrated with events, rounded up to the millisecond', async () => {
    const migration = listMigrations().find((candidate) => candidate.version === 31)!;
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN; DROP FUNCTION log_head_event_times_rise() CASCADE; ALTER TABLE log_head DROP COLUMN at');
      // The newest event by time need not be the last by seq: events could go back before 031.
      await client.query(event('(SELECT size + 5 FROM log_head)', "'2030-01-01T00:00:00.000001Z'"));
      await client.query(migration.sql);
      expect((await client.query<{ at: string }>('SELECT at FROM log_head')).rows[0]!.at).toBe('2030-01-01T00:00:00.001Z');
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('reports, in ledger_violations(), an event dated before the one before it, however it got there', async () => {
    const client = await database.pool.connect();
    try {
      // The head's trigger off (a restore, an operator's hand): nothing refused the event.
      await client.query('BEGIN; SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE; ALTER TABLE log_head DISABLE TRIGGER log_head_event_times_rise');
      const size = (await client.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size;
      await client.query(`${event(size, "'2001-01-01T00:00:00Z'")}; UPDATE log_head SET size = size + 1 WHERE id = 1`);
      const found = (await client.query<{ invariant: string; subject: string; detail: string }>("SELECT * FROM ledger_violations() WHERE invariant = 'event-times'")).rows;
      expect(found).toEqual([{ invariant: 'event-times', subject: `event ${size}`, detail: expect.stringMatching(/^dated 2001-01-01 .*, before event \d+ at /) }]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

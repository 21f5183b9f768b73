/**
 * event_subjects (migration 038): the backfill gives events written before it the rows the
 * ledger now writes, and a record's history reads both arms (events.subject_id and
 * event_subjects) by index, among thousands of events.
 */
import { describe, expect, it } from 'vitest';
import { listMigrations } from './migrate.ts';
import * as read from './read-queries.ts';
import type { Pool } from './pool.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';
import type { TestDatabase } from '../../test/database.ts';

let api: ApiWorld;
let database: TestDatabase;

apiWorldPerFile((made, db) => {
  api = made;
  database = db;
});

type Row = { subject_id: string; seq: number };

async function newSite(name: string): Promise<string> {
  return String((await api.world.run('site.register', { name, province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 100 }, api.world.actors.alpha)).siteId);
}

/** Every kind of unit event with further subjects: a move, a decommission, a return and a loss, across sites and shipments. */
async function unitEvents(): Promise<{ sites: [string, string, string]; shipments: [string, string] }> {
  const { world } = api;
  const [a, b, c] = [await newSite('Backfill A'), await newSite('Backfill B'), await newSite('Backfill C')];
  const one = await api.shipment('own', 'delivered', 4);
  const other = await api.shipment('own', 'delivered', 3);
  const alpha = world.actors.alpha;
  await world.run('units.deploy', { siteId: a, serials: [...one.serials.slice(0, 3), other.serials[0]!] }, alpha);
  await world.run('units.deploy', { siteId: b, serials: [one.serials[3]!, other.serials[1]!] }, alpha);
  await world.run('units.deploy', { siteId: c, serials: [one.serials[0]!, one.serials[3]!] }, alpha); // from A and B
  await world.run('units.decommission', { serials: [one.serials[1]!, other.serials[1]!], reason: 'end of life' }, alpha); // two shipments, A and B
  await world.run('units.return', { serials: [one.serials[2]!, other.serials[0]!], reason: 'RMA' }, alpha); // two shipments, from A
  await world.run('units.report_lost', { serials: [one.serials[0]!, one.serials[3]!, other.serials[2]!], reason: 'audit' }, alpha); // from C and never deployed
  return { sites: [a, b, c], shipments: [one.id, other.id] };
}

async function allRows(reader: Pick<Pool, 'query'>): Promise<Row[]> {
  return (await reader.query('SELECT subject_id, seq::int FROM event_subjects ORDER BY seq, subject_id')).rows as Row[];
}

/** The rows of unit events, the only ones 038 fills in (the allocation events' are 040's, event-subjects-040.test.ts). */
async function unitRows(reader: Pick<Pool, 'query'>): Promise<Row[]> {
  return (await reader.query(`SELECT s.subject_id, s.seq::int FROM event_subjects s JOIN events e ON e.seq = s.seq
    WHERE e.kind IN ('units.deploy', 'units.decommission', 'units.report_lost', 'units.return') ORDER BY s.seq, s.subject_id`)).rows as Row[];
}

describe('migration 038', () => {
  it('gives the events written before it the further subjects the ledger writes now, from their effects', async () => {
    const { sites: [a, b, c], shipments: [one, other] } = await unitEvents();
    const written = await unitRows(database.pool);
    // The last event of each kind: the move, and the sites' events of the return and the loss.
    const lastOf = async (kind: string) => (await database.pool.query<{ seq: number }>('SELECT max(seq)::int AS seq FROM events WHERE kind = $1', [kind])).rows[0]!.seq;
    const [move, decommission, returned, lost] = [await lastOf('units.deploy'), await lastOf('units.decommission'), await lastOf('units.return'), await lastOf('units.report_lost')];
    // What the ledger wrote: the move names A and B (its subject is C); the decommission both
    // shipments and A and B (no subject); the return both shipments on its first event and
    // its one site on the second (whose subject that site is); the loss both shipments and,
    // on its sites' event, none (C, its one site, is that event's subject).
    const expected: Row[] = [
      { subject_id: a, seq: move }, { subject_id: b, seq: move },
      { subject_id: one, seq: decommission }, { subject_id: other, seq: decommission }, { subject_id: a, seq: decommission }, { subject_id: b, seq: decommission },
      { subject_id: one, seq: returned - 1 }, { subject_id: other, seq: returned - 1 },
      { subject_id: one, seq: lost - 1 }, { subject_id: other, seq: lost - 1 },
    ];
    const key = (row: Row) => `${row.seq} ${row.subject_id}`;
    expect(written.map(key).sort()).toEqual(expected.map(key).sort());
    expect((await database.pool.query('SELECT subject_id FROM events WHERE seq = $1', [returned])).rows[0].subject_id).toBe(a);
    expect((await database.pool.query('SELECT subject_id FROM events WHERE seq = $1', [lost])).rows[0].subject_id).toBe(c);

    // The same events as 037 left them: the table gone (the events are what 037's ledger
    // wrote; it wrote nothing else of these), then 038 run on them.
    const migration = listMigrations().find((found) => found.version === 38)!;
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('DROP TABLE event_subjects');
      await client.query(migration.sql);
      expect(await allRows(client)).toEqual(written);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    expect(await api.world.ledger.violations()).toEqual([]);
  });

  it('reads a history by index on both arms among thousands of events, and pages it without gaps or repeats', async () => {
    const { world } = api;
    const site = await newSite('Plan A');
    const elsewhere = await newSite('Plan B');
    const { serials } = await api.shipment('own', 'delivered', 4);
    await world.run('units.deploy', { siteId: site, serials }, world.actors.alpha);
    for (const serial of serials) await world.run('units.deploy', { siteId: elsewhere, serials: [serial] }, world.actors.alpha);
    // Thousands of events besides, each with a subject of its own and a further subject
    // (written as the ledger writes rows, append only).
    const answers = await Promise.all(Array.from({ length: 3_000 }, (_, index) => world.ledger.submit('site.register', {
      name: `Plan filler ${index}`, province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 10,
    }, world.actors.beta)));
    expect(answers.every((answer) => answer.ok)).toBe(true);
    await database.pool.query(`INSERT INTO event_subjects (subject_id, seq) SELECT 'FILLER-' || e.seq, e.seq FROM events e WHERE e.kind = 'site.register' AND e.subject_id <> $1`, [site]);
    await database.pool.query('ANALYZE events; ANALYZE event_subjects');

    const truth = (await database.pool.query<{ seq: number }>(
      'SELECT seq::int FROM events WHERE subject_id = $1 UNION SELECT seq::int FROM event_subjects WHERE subject_id = $1 ORDER BY seq', [site],
    )).rows.map((row) => row.seq);
    expect(truth).toHaveLength(6); // registered, deployed, four moves away

    for (const viewer of [{ orgId: null, allocations: 'related' }, { orgId: world.actors.alpha.orgId, allocations: 'received' }] as const) {
      const sent: Array<{ text: string; values: unknown[] }> = [];
      const spy = { query: (text: string, values: unknown[]) => (sent.push({ text, values }), database.pool.query(text, values)) } as unknown as Pool;
      const seqs: number[] = [];
      let after: number | null = null;
      do {
        const page: read.Page<read.EventRow, number> = await read.listEvents(spy, viewer, { after, limit: 4 }, { subjectId: site });
        seqs.push(...page.rows.map((row) => Number(row.seq)));
        after = page.nextAfter;
      } while (after !== null);
      expect(seqs, `${viewer.orgId ?? 'an authority'} paging ${site}`).toEqual(truth);
      // Beta reads none of them, through either arm.
      expect((await read.listEvents(database.pool, { orgId: world.actors.beta.orgId, allocations: 'received' }, { after: null, limit: 10 }, { subjectId: site })).rows).toEqual([]);

      // The history's statements (a tenant's page of a site first asks whether the site is its own).
      const histories = sent.filter(({ text }) => text.includes('event_subjects'));
      expect(histories.length).toBeGreaterThan(0);
      for (const { text, values } of histories) {
        const plan = (await database.pool.query(`EXPLAIN (FORMAT JSON) ${text}`, values)).rows[0]['QUERY PLAN'][0].Plan;
        const scans = nodes(plan).filter((node) => node['Relation Name'] === 'events' || node['Relation Name'] === 'event_subjects' || node['Index Name'] !== undefined);
        const described = JSON.stringify(scans.map((node) => [node['Node Type'], node['Relation Name'], node['Index Name']]));
        expect(scans.filter((node) => node['Node Type'] === 'Seq Scan'), described).toEqual([]);
        expect(scans.some((node) => node['Index Name'] === 'events_subject'), described).toBe(true);
        expect(scans.some((node) => node['Index Name'] === 'event_subjects_pkey'), described).toBe(true);
      }
    }
  });
});

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

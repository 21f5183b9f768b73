/**
 * A page of one record's history reads at most limits.historySeqsScannedMax of its seqs
 * (store/event-queries.ts eventsOfSubject): a viewer that reads none of a longer history gets
 * an empty page with a cursor, not the whole history read for nothing, and paging on reaches
 * the end; every viewer gets what it reads of the history, each event once, in seq order.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import { listEvents, seqInSubject } from './event-queries.ts';
import type { Pool } from './pool.ts';
import type { Viewer } from './visibility.ts';

let world: World;
let database: TestDatabase;

worldPerFile((made, db) => {
  world = made;
  database = db;
});

const budget = limits.historySeqsScannedMax;
/** Resizes of alpha's export allocation, each followed by two of beta's: alpha's history is longer than a page reads. */
const resizes = budget + 50;
const fillerEvents = 30_000;

beforeAll(async () => {
  const { ledger, actors, allocations } = world;
  // Submitted at once, so the sequencer commits them in a few batches, in submission order;
  // the sizes alternate so that each resize changes its allocation.
  const answers = await Promise.all(Array.from({ length: resizes }, (_, index) => [
    ledger.submit('allocation.resize', { allocationId: allocations.alphaExport, units: 400 + (index % 2) }, actors.bis),
    ledger.submit('allocation.resize', { allocationId: allocations.betaExport, units: 300 }, actors.bis),
    ledger.submit('allocation.resize', { allocationId: allocations.betaExport, units: 301 }, actors.bis),
  ]).flat());
  expect(answers.filter((answer) => !answer.ok)).toEqual([]);
  // Other records' events, so that these histories are a small part of the log, as they are
  // in a real one: PostgreSQL then reads them by index, as it would there.
  const fillers = await Promise.all(Array.from({ length: fillerEvents }, (_, index) => ledger.submit('site.register', {
    name: `Filler ${index}`, province: 'Gansu', city: 'Qingyang', latitude: 35.7, longitude: 107.6, capacityUnits: 10,
  }, actors.beta)));
  expect(fillers.filter((answer) => !answer.ok)).toEqual([]);
  await database.pool.query('VACUUM ANALYZE events, event_subjects, event_reader_sets');
}, 120_000);

/** The record's history, by both arms, in seq order: and of it what `orgId` reads, by events.org_ids (every reader), not by reader sets. */
async function history(subjectId: string, orgId: string | null = null): Promise<number[]> {
  const { rows } = await database.pool.query<{ seq: number }>(
    `SELECT h.seq::int FROM (SELECT seq FROM events WHERE subject_id = $1 UNION SELECT seq FROM event_subjects WHERE subject_id = $1) h
     JOIN events e ON e.seq = h.seq WHERE $2::text IS NULL OR $2::text = ANY (e.org_ids) ORDER BY h.seq`, [subjectId, orgId]);
  return rows.map((row) => row.seq);
}

/** Every page of the record's history as `viewer` reads it, with each page's rows and cursor. */
async function allPages(viewer: Viewer, subjectId: string, limit: number, pool: Pool = database.pool): Promise<Array<{ seqs: number[]; nextAfter: number | null }>> {
  const pages: Array<{ seqs: number[]; nextAfter: number | null }> = [];
  let after: number | null = null;
  do {
    const page = await listEvents(pool, viewer, { after, limit }, { subjectId });
    pages.push({ seqs: page.rows.map((row) => Number(row.seq)), nextAfter: page.nextAfter });
    if (page.nextAfter !== null) expect(page.nextAfter, 'a cursor moves on').toBeGreaterThan(after ?? -1);
    after = page.nextAfter;
    expect(pages.length, 'pages end').toBeLessThan(100);
  } while (after !== null);
  return pages;
}

const recipient = (orgId: string): Viewer => ({ orgId, allocations: 'received' });

describe('a record history page', () => {
  it('reads at most the bound of a history the viewer reads none of: an empty page with a cursor, and paging on reaches the end', async () => {
    const subject = world.allocations.alphaExport;
    const all = await history(subject);
    expect(all.length).toBeGreaterThan(budget);
    expect(await history(subject, world.actors.beta.orgId)).toEqual([]);

    const beta = recipient(world.actors.beta.orgId);
    const first = await listEvents(database.pool, beta, { after: null, limit: 100 }, { subjectId: subject });
    expect(first.rows).toEqual([]);
    // Where the reading stopped: the last of the seqs it read.
    expect(first.nextAfter).toBe(all[budget - 1]);
    const second = await listEvents(database.pool, beta, { after: first.nextAfter, limit: 100 }, { subjectId: subject });
    expect(second).toEqual({ rows: [], nextAfter: null });
  });

  it('probes the reader sets at most the bound times a page, and reads the history from the cursor on by (subject_id, seq)', async () => {
    const subject = world.allocations.alphaExport;
    const sent: Array<{ text: string; values: unknown[] }> = [];
    const spy = { query: (text: string, values: unknown[]) => (sent.push({ text, values }), database.pool.query(text, values)) } as unknown as Pool;
    await allPages(recipient(world.actors.beta.orgId), subject, 100, spy);
    expect(sent).toHaveLength(2);
    // The plan of each: the history read by index from the cursor on (the second page's
    // condition holds its seq), in seq order, and no more of it than the bound; a probe of
    // the reader sets for each seq read, no more.
    for (const [index, { text, values }] of sent.entries()) {
      const plan = nodes((await database.pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values)).rows[0]['QUERY PLAN'][0].Plan as PlanNode);
      const described = JSON.stringify(plan.map((node) => [node['Node Type'], node['Index Name'] ?? node['Relation Name'], node['Index Cond'], node['Actual Rows'], node['Actual Loops']]));
      const probes = plan.filter((node) => node['Relation Name'] === 'event_reader_sets');
      expect(probes.length, described).toBeGreaterThan(0);
      for (const probe of probes) expect(probe['Actual Loops'], described).toBeLessThanOrEqual(budget);
      const history = plan.filter((node) => node['Index Name'] === 'events_subject');
      expect(history, described).toHaveLength(1);
      expect(history[0]!['Actual Rows'], described).toBeLessThanOrEqual(budget);
      if (index === 1) expect(String(history[0]!['Index Cond']), described).toMatch(/seq >/);
      // The event that made the record (053), on the first page only: by the primary key.
      const made = plan.filter((node) => node['Index Name'] === 'events_pkey' && String(node['Index Cond']).includes(`seq = '${seqInSubject(subject)}'`));
      expect(made, described).toHaveLength(index === 0 ? 1 : 0);
      expect(plan.filter((node) => node['Node Type'] === 'Seq Scan'), described).toEqual([]);
    }
  });

  it('gives a viewer that reads all of a history every event once, in order, in full pages', async () => {
    const subject = world.allocations.alphaExport;
    const all = await history(subject);
    for (const viewer of [{ orgId: null, allocations: 'related' } as const, recipient(world.actors.alpha.orgId), { orgId: world.actors.exporter.orgId, allocations: 'related' } as const]) {
      expect(await history(subject, viewer.orgId)).toEqual(all);
      for (const limit of [100, limits.pageSizeMax]) {
        const pages = await allPages(viewer, subject, limit);
        expect(pages.flatMap((page) => page.seqs), `${viewer.orgId ?? 'an authority'} by ${limit}`).toEqual(all);
        for (const page of pages.slice(0, -1)) expect(page.seqs).toHaveLength(limit);
      }
    }
  });

  it('gives a viewer that reads part of a history what it reads, once and in order, across pages that may be short', async () => {
    // The export licence's history holds both allocations' events (040): alpha reads its own
    // (a third of them), beta its own (two thirds).
    const subject = world.exportLicenceId;
    const all = await history(subject);
    expect(all.length).toBeGreaterThan(3 * budget);
    for (const orgId of [world.actors.alpha.orgId, world.actors.beta.orgId]) {
      const truth = await history(subject, orgId);
      expect(truth.length).toBeGreaterThan(budget / 2);
      expect(truth.length).toBeLessThan(all.length);
      for (const limit of [100, limits.pageSizeMax]) {
        const pages = await allPages(recipient(orgId), subject, limit);
        expect(pages.flatMap((page) => page.seqs), `${orgId} by ${limit}`).toEqual(truth);
        for (const page of pages) expect(page.seqs.length).toBeLessThanOrEqual(limit);
      }
    }
    // A page of the largest size: alpha reads a third of the seqs the page reads, so it
    // stops short with the cursor where the reading stopped, then goes on from there; beta
    // reads two thirds, so its page fills first and ends at its last row.
    const window = all.slice(0, budget);
    const alphaFirst = await listEvents(database.pool, recipient(world.actors.alpha.orgId), { after: null, limit: limits.pageSizeMax }, { subjectId: subject });
    const alphaRead = (await history(subject, world.actors.alpha.orgId)).filter((seq) => seq <= window[budget - 1]!);
    expect(alphaRead.length).toBeLessThan(limits.pageSizeMax);
    expect(alphaFirst.rows.map((row) => Number(row.seq))).toEqual(alphaRead);
    expect(alphaFirst.nextAfter).toBe(window[budget - 1]);
    const betaFirst = await listEvents(database.pool, recipient(world.actors.beta.orgId), { after: null, limit: limits.pageSizeMax }, { subjectId: subject });
    expect(betaFirst.rows).toHaveLength(limits.pageSizeMax);
    expect(betaFirst.nextAfter).toBe(Number(betaFirst.rows.at(-1)!.seq));
  });
});

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

describe("another tenant's page of a site", () => {
  it('is empty at once, with no cursor, while its owner pages through it', async () => {
    // One of beta's filler sites, given a history longer than a page reads: 1,500 events that
    // name it as a further record, as deployment reports and moves there would.
    const site = (await database.pool.query<{ id: string }>(`SELECT id FROM sites WHERE org_id = $1 ORDER BY created_seq LIMIT 1`, [world.actors.beta.orgId])).rows[0]!.id;
    await database.pool.query(
      `INSERT INTO event_subjects (subject_id, seq) SELECT $1, seq FROM events WHERE kind = 'site.register' AND subject_id <> $1 ORDER BY seq LIMIT 1500 ON CONFLICT DO NOTHING`, [site]);
    const alpha = await allPages({ orgId: world.actors.alpha.orgId, allocations: 'received' }, site, 100);
    expect(alpha).toEqual([{ seqs: [], nextAfter: null }]);
    const beta = await allPages({ orgId: world.actors.beta.orgId, allocations: 'received' }, site, 500);
    expect(beta.flatMap((page) => page.seqs)).toEqual(await history(site, world.actors.beta.orgId));
    expect(beta.length).toBeGreaterThan(1);
  });
});

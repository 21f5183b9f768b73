/**
 * The events a viewer may read: the whole stream, one record's history, one event. Events are
 * read as stored (never replayed), and their readers (org_ids) cut to what the viewer may know.
 */
import { assert } from '../core/errors.ts';
import { keysetPage, pageOf, type Page, type PageRequest } from './pages.ts';
import type { Pool } from './pool.ts';
import { Statement, readsEvent, visible, type Viewer } from './visibility.ts';
import type { EventWrite } from './batch-writes.ts';

/** An event as stored: the same columns the batch writes; org_ids as the viewer may know them (eventAsSeenBy). */
export type EventRow = EventWrite;

export async function listEvents(pool: Pool, viewer: Viewer, page: PageRequest<number>, filter: { subjectId?: string } = {}): Promise<Page<EventRow, number>> {
  let events: Page<EventRow, number>;
  if (viewer.orgId !== null && filter.subjectId === undefined) {
    events = await eventsOfReader(pool, viewer.orgId, page);
  } else if (filter.subjectId !== undefined) {
    events = await eventsOfSubject(pool, viewer, filter.subjectId, page);
  } else {
    const statement = new Statement();
    events = await keysetPage(pool, statement, { from: 'events e', where: [visible.event(statement, viewer, 'e')], key: 'e.seq' }, page, (row: EventRow) => row.seq);
  }
  return { ...events, rows: events.rows.map((row) => eventAsSeenBy(viewer, row)) };
}

/**
 * A page of one record's history: the events whose subject it is (events_subject) and those
 * that list it among the further records they are about (event_subjects, migrations 038 and
 * 040: the sites units left, each shipment of an ending across several, the licence of an
 * allocation event), each an index read, then
 * joined to the events by seq and filtered by who reads them, as every event list is: a
 * record named in another tenant's event shows that tenant nothing. The ledger never lists a
 * record both ways (ledger/batch-apply.ts); UNION keeps a page free of repeats regardless.
 */
async function eventsOfSubject(pool: Pool, viewer: Viewer, subjectId: string, page: PageRequest<number>): Promise<Page<EventRow, number>> {
  const statement = new Statement();
  const subject = statement.add(subjectId);
  const after = page.after === null ? '' : ` AND seq > ${statement.add(page.after)}`;
  const text = `SELECT e.* FROM (
      SELECT seq FROM events WHERE subject_id = ${subject}${after}
      UNION SELECT seq FROM event_subjects WHERE subject_id = ${subject}${after}) history
    JOIN events e ON e.seq = history.seq
    WHERE ${visible.event(statement, viewer, 'e')}
    ORDER BY e.seq LIMIT ${statement.add(page.limit + 1)}`;
  return pageOf((await pool.query<EventRow>(text, statement.params)).rows, page.limit, (row) => row.seq);
}

/**
 * One event, if the viewer may read it: by its primary key, its readers checked against
 * events.org_ids, the per-event record the reader sets index (as findEventSerialLines).
 */
export async function findEvent(pool: Pool, viewer: Viewer, seq: number): Promise<EventRow | null> {
  const { rows } = await pool.query<EventRow>(`SELECT e.* FROM events e WHERE e.seq = $1 AND ${readsEvent('e', '$2')}`, [seq, viewer.orgId]);
  const row = rows[0];
  return row === undefined ? null : eventAsSeenBy(viewer, row);
}

/**
 * An event as its reader may see it. Its org_ids are every organisation that reads it, and
 * they tell more than the event's body: a licence's events are read by the recipients of its
 * allocations, also one an amendment dropped from the parties, so the list told the remaining
 * parties that the dropped recipient still holds an allocation there, which the licence
 * (allocations, totals) hides from them. Who else reads an event is the authorities' and
 * auditors' to know; a tenant reads only that it is a reader itself. The list is served, not
 * hashed (the canonical bytes are the leaf), so cutting it changes nothing a verifier checks.
 */
function eventAsSeenBy(viewer: Viewer, row: EventRow): EventRow {
  if (viewer.orgId === null) return row;
  assert(row.org_ids.includes(viewer.orgId), `event ${row.seq} was read for ${viewer.orgId}, which it does not name`);
  return { ...row, org_ids: [viewer.orgId] };
}

/**
 * A page of the events one organisation may read, found from its reader sets: the sets
 * that end after the cursor, in order, each unnested into its seqs. Sets never overlap, so
 * (last_seq, offset) order is seq order, and PostgreSQL sorts only within one set at a
 * time (an incremental sort over the primary key's order) and stops at the page's end.
 * Measured at 1,000,000 events (bench/experiments/event-reads.ts): 1–2 ms a page, deep in
 * the log or not, for a tenant that reads a quarter of the events or one in a thousand.
 */
async function eventsOfReader(pool: Pool, orgId: string, page: PageRequest<number>): Promise<Page<EventRow, number>> {
  const statement = new Statement();
  const org = statement.add(orgId);
  const cursor = page.after === null ? null : statement.add(page.after);
  const after = cursor === null ? '' : ` AND r.last_seq > ${cursor} AND r.first_seq + d.delta > ${cursor}`;
  const text = `SELECT e.* FROM (
      SELECT r.first_seq + d.delta AS seq FROM event_reader_sets r CROSS JOIN LATERAL unnest(r.offsets) AS d(delta)
      WHERE r.org_id = ${org}${after}
      ORDER BY r.last_seq, d.delta LIMIT ${statement.add(page.limit + 1)}) page
    JOIN events e ON e.seq = page.seq ORDER BY e.seq`;
  return pageOf((await pool.query<EventRow>(text, statement.params)).rows, page.limit, (row) => row.seq);
}

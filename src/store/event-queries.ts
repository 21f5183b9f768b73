/**
 * The events a viewer may read: the whole stream, one record's history, one event. Events are
 * read as stored (never replayed), and their readers (org_ids) cut to what the viewer may know.
 */
import { assert } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { keysetPage, measuredRows, pageOf, pageWithinBytes, withinBytes, type MeasuredRow, type Page, type PageRequest } from './pages.ts';
import type { Pool } from './pool.ts';
import { Statement, readsEvent, visible, type Viewer } from './visibility.ts';
import type { EventWrite } from './batch-writes.ts';

/** An event as stored: the same columns the batch writes; org_ids as the viewer may know them (eventAsSeenBy). */
export type EventRow = EventWrite;

/** An event's stored bytes, for a page's byte bound (limits.pageBytesMax): its entry, by far the most of it. */
const eventBytes = { expression: 'octet_length(q.canonical)', keyColumn: 'seq' };

export async function listEvents(pool: Pool, viewer: Viewer, page: PageRequest<number>, filter: { subjectId?: string } = {}): Promise<Page<EventRow, number>> {
  let events: Page<EventRow, number>;
  if (viewer.orgId !== null && filter.subjectId === undefined) {
    events = await eventsOfReader(pool, viewer.orgId, page);
  } else if (filter.subjectId !== undefined) {
    events = await eventsOfSubject(pool, viewer, filter.subjectId, page);
  } else {
    const statement = new Statement();
    events = await keysetPage(pool, statement, { from: 'events e', where: [visible.event(statement, viewer, 'e')], key: 'e.seq', rowBytes: eventBytes }, page, (row: EventRow) => row.seq);
  }
  return { ...events, rows: events.rows.map((row) => eventAsSeenBy(viewer, row)) };
}

/**
 * A page of one record's history: the events whose subject it is (events.subject_id) and those
 * that list it among the further records they are about (event_subjects, migrations 038 and
 * 040: the sites units left, each shipment of an ending across several, the licence of an
 * allocation event), both read by an index on (record, seq) in seq order (044), and the event
 * that made it, by its seq (053: the subject index leaves those out), merged, then
 * filtered by who reads them, as every event list is: a record named in another tenant's
 * event shows that tenant nothing. The ledger never lists a record both ways
 * (ledger/batch-apply.ts); UNION keeps a page free of repeats regardless.
 *
 * Any tenant may name any record, and each seq read costs a probe of its reader sets: one
 * that reads little or none of a long history would otherwise have every page read all of
 * it. So a page reads at most historySeqsScannedMax of the record's seqs (an index range, and
 * the probes stop as soon as the page is full): when those run out before the page is full,
 * it answers the events found among them, maybe none, with a cursor at the last seq read,
 * and the next page goes on from there. A short page is then not the last one; only a null
 * cursor says the history has ended. Such a cursor may be the seq of an event the caller
 * may not read: it tells the caller that the record has at least as many events as its pages
 * have read so far, and where in the log the last of them lies (a cursor is plain JSON,
 * server/queries.ts encodeCursor), whoever's record it is. The count of seqs read and the
 * page come from one statement, so from one snapshot. The count reads all of its seqs even
 * when the page fills first: an index-only range of at most the bound, about 1 ms.
 *
 * A site's history is the long one (every deployment report, move and decommission there),
 * and only its owner reads its events (ledger/handlers/units.ts: a site is named only in
 * events its recipient reads). So another tenant's page of a site is empty at once, with no
 * cursor: nothing of it is read, and no cursor tells where in the log its events lie. The
 * other records' histories are short (a licence's own commands and allocation events, a
 * shipment's steps), so a cursor past the bound is rare there.
 */
async function eventsOfSubject(pool: Pool, viewer: Viewer, subjectId: string, page: PageRequest<number>): Promise<Page<EventRow, number>> {
  if (viewer.orgId !== null && subjectId.startsWith(sitePrefix)) {
    const owned = await pool.query('SELECT 1 FROM sites WHERE id = $1 AND org_id = $2', [subjectId, viewer.orgId]);
    if (owned.rowCount === 0) return { rows: [], nextAfter: null };
  }
  const statement = new Statement();
  const subject = statement.add(subjectId);
  const after = page.after === null ? '' : ` AND seq > ${statement.add(page.after)}`;
  const bound = statement.add(limits.historySeqsScannedMax);
  // The event that made the record, if its id says which (053): by the primary key.
  const made = seqInSubject(subjectId);
  const making = made === null || (page.after !== null && made <= page.after) ? '' : `
      UNION (SELECT seq FROM events WHERE seq = ${statement.add(made)} AND subject_id = ${subject})`;
  const text = `WITH history AS MATERIALIZED (
      (SELECT seq FROM events WHERE subject_id = ${subject} AND ${laterEventKinds}${after} ORDER BY seq LIMIT ${bound})${making}
      UNION (SELECT seq FROM event_subjects WHERE subject_id = ${subject}${after} ORDER BY seq LIMIT ${bound})
      ORDER BY seq LIMIT ${bound}),
    found AS (SELECT h.seq FROM history h WHERE ${visible.event(statement, viewer, 'h')} ORDER BY h.seq LIMIT ${statement.add(page.limit + 1)})
    SELECT scanned.seqs AS history_seqs_scanned, scanned.last_seq AS history_last_seq_scanned, e.*
    FROM (SELECT count(*)::int AS seqs, max(seq) AS last_seq FROM history) scanned
      LEFT JOIN (found JOIN events e ON e.seq = found.seq) ON true
    ORDER BY e.seq`;
  const { rows: measured } = await pool.query<ScannedEventRow & MeasuredRow>(withinBytes(text, eventBytes.expression, eventBytes.keyColumn, statement), statement.params);
  const scanned = measured[0];
  assert(scanned !== undefined, 'a history page answered no row: the scan summary is always one');
  const { rows, cut } = measuredRows(measured);
  const events = rows.filter((row) => row.seq !== null).map(({ history_seqs_scanned: _seqs, history_last_seq_scanned: _last, ...event }) => event as EventRow);
  // Cut short by bytes: the next page goes on after the last event kept.
  if (cut) return { rows: events, nextAfter: events[events.length - 1]!.seq };
  const found = pageOf(events, page.limit, (row) => row.seq);
  if (found.nextAfter !== null || scanned.history_seqs_scanned < limits.historySeqsScannedMax) return found;
  // The seqs ran out before the page filled: what was read is done with, whatever it held.
  return { rows: found.rows, nextAfter: scanned.history_last_seq_scanned };
}

/**
 * The kinds of event that make the record they are about (045), whose id carries the event's
 * seq (ledger/handler.ts newId). The subject index leaves them out (migration 053, whose check
 * and index predicate hold the same list, constraints-053.test.ts): a history finds such an
 * event by its seq. The history's read of the index repeats the predicate word for word, so
 * PostgreSQL can use the partial index.
 */
export const recordMakingKinds = ['organisation.register', 'product.register', 'licence.create', 'allocation.create', 'shipment.book', 'site.register', 'token.create'] as const;
const laterEventKinds = `kind NOT IN (${recordMakingKinds.map((kind) => `'${kind}'`).join(', ')})`;

/**
 * The seq a subject's id ends with after a '-', as migration 053's check reads it: the seq of
 * the event that made the record, if one did. Null when the id does not end so, or in no seq
 * the log can hold.
 */
export function seqInSubject(subjectId: string): number | null {
  const found = /-(0|[1-9][0-9]{0,15})$/.exec(subjectId);
  if (found === null) return null;
  const seq = Number(found[1]);
  return Number.isSafeInteger(seq) ? seq : null;
}

/** The prefix of a site's id (ledger/handlers/units.ts, newId('SITE')). */
const sitePrefix = 'SITE-';

/** A row of eventsOfSubject: an event (all null when the seqs read held none the viewer reads) and what the page read. */
type ScannedEventRow = { [K in keyof EventRow]: EventRow[K] | null } & { history_seqs_scanned: number; history_last_seq_scanned: number | null };

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
  return pageWithinBytes((await pool.query<EventRow & MeasuredRow>(withinBytes(text, eventBytes.expression, eventBytes.keyColumn, statement), statement.params)).rows, page.limit, (row) => row.seq);
}

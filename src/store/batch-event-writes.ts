/**
 * A ledger batch's events as statements: the events, their serial lists and their further
 * subjects, inline in the batch's round trip when few and by COPY when many; and who may
 * read them, always inline. batch-writes.ts sends the events after the batch's rows, and
 * the readers in the batch's last round trip, with its tiles' head and COMMIT.
 */
import type { CopyColumn } from './copy-binary.ts';
import { readerSetsOf } from './reader-sets.ts';
import { bulkRowsMin, copy, inline, json, type Step } from './batch-steps.ts';
import type { EventWrite } from './batch-writes.ts';

/** The statements that write the batch's events and what goes with them but their readers, in order. */
export function eventSteps(events: EventWrite[]): Step[] {
  if (events.length === 0) return [];
  // Thousands of events as one JSON literal cost PostgreSQL far more than typed arrays do
  // (bench/tlog-append.ts: 150 µs against 15 µs an event): big batches send parameters.
  if (events.length >= bulkRowsMin) return [bulkEventStep(events), ...serialListSteps(events), ...moreSubjectSteps(events)];
  const rows = events.map(({ serial_lines: _lines, more_subject_ids: _subjects, ...event }) => ({ ...event, canonical: event.canonical.toString('hex') }));
  return [
    inline(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
      SELECT seq, at, kind, actor, subject_id, org_ids, decode(canonical, 'hex')
      FROM json_to_recordset(${json(rows)}) AS e(seq bigint, at timestamptz, kind text, actor text, subject_id text, org_ids text[], canonical text)`),
    ...serialListSteps(events),
    ...moreSubjectSteps(events),
  ];
}

/**
 * Who may read the batch's events: a reader set per organisation and batch (store/
 * reader-sets.ts), a row for each organisation named, of at most 2,048 offsets each, so
 * inline even for a big batch (a 2,048-event batch holds at most 2,048 offsets per row). By COPY they cost a round trip of their own after the events' COPY (0.9 ms of a
 * 2,048-leaf batch's 21 ms, bench/experiments/append-timeline.ts); inline they travel with
 * the batch's last statements.
 */
export function readerStep(events: EventWrite[]): Step | undefined {
  const readers = readerSetsOf(events);
  if (readers.length === 0) return undefined;
  return inline(`INSERT INTO event_reader_sets (org_id, first_seq, last_seq, offsets)
      SELECT org_id, first_seq, last_seq, offsets FROM json_to_recordset(${json(readers)}) AS r(org_id text, first_seq bigint, last_seq bigint, offsets int2[])`);
}

const moreSubjectColumns: CopyColumn[] = [{ name: 'subject_id', type: 'text' }, { name: 'seq', type: 'int8' }];

/**
 * The further subjects of the batch's events (event_subjects, migration 038), in the batch's
 * transaction with the events, so a history never lacks an event that committed. Only unit
 * events have any: a batch of bookings sends no statement for them.
 */
function moreSubjectSteps(events: EventWrite[]): Step[] {
  const rows = events.flatMap((event) => (event.more_subject_ids ?? []).map((subjectId) => ({ subject_id: subjectId, seq: event.seq })));
  if (rows.length === 0) return [];
  if (rows.length >= bulkRowsMin) return [copy('event_subjects', moreSubjectColumns, rows, (row) => [row.subject_id, row.seq], 48 * rows.length)];
  return [inline(`INSERT INTO event_subjects (subject_id, seq) SELECT subject_id, seq FROM json_to_recordset(${json(rows)}) AS s(subject_id text, seq bigint)`)];
}

const serialListColumns: CopyColumn[] = [{ name: 'seq', type: 'int8' }, { name: 'lines', type: 'text[]' }];

/** The serial lists of events that record one by digest: a manifest's 100,000 lines by COPY. */
function serialListSteps(events: EventWrite[]): Step[] {
  const listed = events.filter((event) => event.serial_lines !== undefined && event.serial_lines !== null);
  if (listed.length === 0) return [];
  const lines = listed.reduce((sum, event) => sum + event.serial_lines!.length, 0);
  if (lines >= bulkRowsMin) {
    const bytes = listed.reduce((sum, event) => sum + event.serial_lines!.reduce((length, line) => length + line.length + 4, 32), 0);
    return [copy('event_serials', serialListColumns, listed, (event) => [event.seq, event.serial_lines!], bytes)];
  }
  const rows = listed.map((event) => ({ seq: event.seq, lines: event.serial_lines }));
  return [inline(`INSERT INTO event_serials (seq, lines) SELECT seq, lines FROM json_to_recordset(${json(rows)}) AS s(seq bigint, lines text[])`)];
}

const eventColumns: CopyColumn[] = [
  { name: 'seq', type: 'int8' }, { name: 'at', type: 'timestamptz' }, { name: 'kind', type: 'text' }, { name: 'actor', type: 'text' },
  { name: 'subject_id', type: 'text' }, { name: 'org_ids', type: 'text[]' }, { name: 'canonical', type: 'bytea' },
];

/** Many events go by COPY (store/copy-binary.ts): for 2,048 of them, p50 31 ms against 50 ms with unnest. */
function bulkEventStep(events: EventWrite[]): Step {
  const bytes = events.reduce((sum, event) => sum + event.canonical.length + 120, 0);
  return copy('events', eventColumns, events, (event) => [event.seq, event.at, event.kind, event.actor, event.subject_id, event.org_ids, event.canonical], bytes);
}

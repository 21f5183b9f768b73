/**
 * Who may read a batch's events, as event_reader_sets rows (migration 012): per organisation,
 * a run of seqs and the offsets in it of the events that organisation reads. One row per
 * organisation and batch instead of one per event and organisation: for 2,048 events the
 * rows per event cost PostgreSQL 3.6–5.9 ms of a 24–29 ms write, a row per batch about 1
 * (bench/experiments/event-parts.ts).
 */

/** Offsets are int2: a run spans at most this many seqs after its first (the table's CHECK). */
export const readerSetSpanMax = 32_767;
/** At most this many offsets in a row (about 4 KiB), so it stays inline and uncompressed (the table's CHECK). */
export const readerSetOffsetsMax = 2_048;

export interface ReaderSetRow {
  org_id: string;
  first_seq: number;
  last_seq: number;
  /** seq − first_seq of each event the organisation may read, ascending; the first is 0. */
  offsets: number[];
}

/**
 * The rows for events in ascending seq order (a batch's events). An organisation named
 * twice on one event reads it once. A new row starts when the next event would pass either
 * bound. The rows come in no particular order.
 */
export function readerSetsOf(events: ReadonlyArray<{ seq: number; org_ids: readonly string[] }>): ReaderSetRow[] {
  const done: ReaderSetRow[] = [];
  const open = new Map<string, ReaderSetRow>();
  let previous = -1;
  for (const event of events) {
    if (!(event.seq > previous)) throw new Error(`assertion failed: reader sets need events in ascending seq order; ${event.seq} came after ${previous}`);
    previous = event.seq;
    for (const orgId of event.org_ids) {
      const row = open.get(orgId);
      if (row !== undefined && row.last_seq === event.seq) continue; // named twice on this event
      if (row !== undefined && row.offsets.length < readerSetOffsetsMax && event.seq - row.first_seq <= readerSetSpanMax) {
        row.offsets.push(event.seq - row.first_seq);
        row.last_seq = event.seq;
        continue;
      }
      if (row !== undefined) done.push(row);
      open.set(orgId, { org_id: orgId, first_seq: event.seq, last_seq: event.seq, offsets: [0] });
    }
  }
  done.push(...open.values());
  return done;
}

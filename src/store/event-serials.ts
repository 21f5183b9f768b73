/**
 * The serial lists events record by digest (migration 017): read back for one event, as
 * the caller may read that event.
 */
import type { Pool } from './pool.ts';
import { readsEvent, type Viewer } from './visibility.ts';

/**
 * The lines an event's serial digest covers, sorted; null when the event does not exist,
 * names no serials, or is not the viewer's to read. One event by its primary key: its
 * readers are checked against events.org_ids, the per-event record of who may read it
 * (the reader sets index the same thing for pages).
 */
export async function findEventSerialLines(pool: Pool, viewer: Viewer, seq: number): Promise<string[] | null> {
  const { rows } = await pool.query<{ lines: string[] }>(
    `SELECT s.lines FROM event_serials s JOIN events e ON e.seq = s.seq
     WHERE s.seq = $1 AND ${readsEvent('e', '$2')}`,
    [seq, viewer.orgId],
  );
  return rows[0]?.lines ?? null;
}

/**
 * The baseline: the same bookings written the way a typical application would, one
 * transaction per booking on a pool of connections, row locks taken in a fixed order:
 *
 *   BEGIN
 *   SELECT both allocations (with their licences) ORDER BY id FOR UPDATE   -- lock, read
 *   (check availability and licence status in JavaScript)
 *   UPDATE both allocations' reserved_units
 *   SELECT size, at FROM log_head FOR UPDATE                               -- gapless seq, time
 *   INSERT the shipment (its id carries the seq), the event with its RFC 8785 bytes and
 *     its readers (one statement)
 *   UPDATE log_head                                  -- its trigger checks the event's time
 *   COMMIT
 *
 * log_head is locked as late as possible (the kindest choice for the baseline), but a
 * gapless sequence still means every booking holds it through its COMMIT and fsync. The
 * shipment goes in under it: its id is SHP-<seq>, as the ledger's ids are (migration 053
 * refuses a booking event whose subject does not end in its seq).
 */
import canonicalize from 'canonicalize';
import type { Pool, PoolClient } from '../src/store/pool.ts';
import type { BenchWorld, Booking } from './ledger-world.ts';

interface Locked {
  id: string;
  units: number;
  reserved_units: number;
  shipped_units: number;
  recipient_org_id: string;
  status: string;
  direction: string;
  holder_org_id: string;
  valid_from: string;
  valid_to: string;
  product_ids: string[];
  origin: string;
  destination: string;
}

const lockSql = `SELECT a.id, a.units, a.reserved_units, a.shipped_units, a.recipient_org_id,
       l.status, l.direction, l.holder_org_id, l.valid_from, l.valid_to, l.product_ids, l.origin, l.destination
  FROM allocations a JOIN licences l ON l.id = a.licence_id
  WHERE a.id IN ($1, $2) ORDER BY a.id FOR UPDATE OF a`;

/** In the event's statement, whose parameters it shares: $1 the seq, $4 the shipment's id. */
const insertShipmentSql = `INSERT INTO shipments (id, exporter_org_id, recipient_org_id, product_id, origin, destination,
  export_allocation_id, import_allocation_id, units, status, booked_at, deadline, serial_count, demo, created_seq, updated_seq)
  VALUES ($4, $14, $7, $8, 'US', 'CN', $9, $10, $11, 'booked', $12, $13, 0, false, $1, $1)`;

export type BaselineResult = { ok: true } | { ok: false; reason: string };

/** Books one shipment in its own transaction; refusals roll back and say why. */
export async function bookBaseline(pool: Pool, world: BenchWorld, booking: Booking, deadline: string): Promise<BaselineResult> {
  const pair = world.pairs[booking.pair]!;
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const locked = (await client.query<Locked>(lockSql, [pair.exportAllocationId, pair.importAllocationId])).rows;
    const at = new Date().toISOString();
    const refusal = checkBooking(locked, world, booking, at);
    if (refusal !== null) {
      await client.query('ROLLBACK');
      return { ok: false, reason: refusal };
    }
    await client.query('UPDATE allocations SET reserved_units = reserved_units + $1 WHERE id IN ($2, $3)', [booking.units, pair.exportAllocationId, pair.importAllocationId]);
    await appendBooking(client, world, booking, pair, at, deadline);
    await client.query('COMMIT');
    return { ok: true };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

function checkBooking(locked: Locked[], world: BenchWorld, booking: Booking, at: string): string | null {
  if (locked.length !== 2) return 'allocation not found';
  for (const row of locked) {
    if (row.status !== 'issued') return `licence is ${row.status}`;
    if (at < row.valid_from || at >= row.valid_to) return 'licence not valid now';
    if (!row.product_ids.includes(world.productId)) return 'licence does not cover the product';
    if (row.direction === 'export' && row.holder_org_id !== world.exporterOrgId) return 'not the exporter of this licence';
    const available = row.units - row.reserved_units - row.shipped_units;
    if (booking.units > available) return `allocation ${row.id} has ${available} units available; ${booking.units} requested`;
  }
  return null;
}

/** The shipment, its event and the head, under the head's lock: the shipment's id and created_seq are the event's seq. */
async function appendBooking(client: PoolClient, world: BenchWorld, booking: Booking, pair: BenchWorld['pairs'][number], at: string, deadline: string): Promise<void> {
  // Dated no earlier than the head's time (the newest event's, to the millisecond): transactions
  // that took their time before this lock commit in another order, and the head refuses an
  // event dated before the one before it (migrations 031, 052). The locked row is read as the
  // writer before us left it.
  const head = (await client.query<{ size: string; at_ms: string }>('SELECT size, extract(epoch FROM at) * 1000 AS at_ms FROM log_head WHERE id = 1 FOR UPDATE')).rows[0]!;
  const seq = Number(head.size);
  const shipmentId = `SHP-${seq}`;
  // The shipment is booked at its event's time, as the ledger books one (the re-check compares
  // the two since migration 055: a booking that waited here was dated earlier than its event).
  const eventAt = new Date(Math.max(Date.parse(at), Number(head.at_ms))).toISOString();
  const body = {
    seq, at: eventAt, kind: 'shipment.book',
    actor: { id: world.exporter.id, org: world.exporter.orgId, role: world.exporter.role },
    subject: shipmentId,
    input: { exportAllocationId: pair.exportAllocationId, importAllocationId: pair.importAllocationId, productId: world.productId, units: booking.units, deadline, demo: false },
    effects: { shipmentId, recipientId: pair.recipientOrgId, origin: 'US', destination: 'CN' },
  };
  const canonical = Buffer.from(canonicalize(body)!, 'utf8');
  // Two round trips for the rest, since the lock is held until COMMIT: the shipment, its
  // event and who may read it (a reader set per organisation, as the ledger writes for a
  // one-event batch); then the head, in a statement of its own, whose trigger checks the
  // event's time (it cannot see an event written in its own statement).
  await client.query(
    `WITH event AS (INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical) VALUES ($1, $2, 'shipment.book', $3, $4, $5, $6)),
          readers AS (INSERT INTO event_reader_sets (org_id, first_seq, last_seq, offsets) SELECT DISTINCT org, $1::bigint, $1::bigint, '{0}'::int2[] FROM unnest($5::text[]) AS org)
     ${insertShipmentSql}`,
    [seq, eventAt, world.exporter.id, shipmentId, [world.exporterOrgId, pair.recipientOrgId], canonical,
      pair.recipientOrgId, world.productId, pair.exportAllocationId, pair.importAllocationId, booking.units, eventAt, deadline, world.exporterOrgId],
  );
  await client.query('UPDATE log_head SET size = $1 WHERE id = 1', [seq + 1]);
}

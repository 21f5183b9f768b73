/**
 * Writing around the ledger, straight into the tables, to see what the database itself
 * refuses (src/store/constraints*.test.ts): statements run in a transaction that is always
 * rolled back, so each case starts from the same rows.
 */
import type { Pool, PoolClient } from '../../src/store/pool.ts';
import type { World } from '../world.ts';

export type Statement = [string, unknown[]?];

/**
 * Runs the statements in order, then checks deferred constraints, in a transaction that is
 * always rolled back; the first error any of them raised, or undefined.
 */
export async function firstRefusal(pool: Pool, ...statements: Statement[]): Promise<{ code: string; message: string } | undefined> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const [text, values] of statements) await client.query(text, values ?? []);
    await client.query('SET CONSTRAINTS ALL IMMEDIATE');
    return undefined;
  } catch (error) {
    return { code: (error as { code: string }).code, message: (error as Error).message };
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

/** Runs `work` on one connection in a transaction that is always rolled back; its result. */
export async function inRolledBack<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    return await work(client);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

/**
 * What the re-check's `part` names on the state as `change` leaves it, written as an owner with
 * every trigger off would write it, in a transaction that is always rolled back.
 */
export function partOnChangedState(pool: Pool, part: string, change: (client: PoolClient) => Promise<unknown>): Promise<Array<{ invariant: string; subject: string; detail: string }>> {
  return inRolledBack(pool, async (client) => {
    await client.query('SET LOCAL session_replication_role = replica');
    await change(client);
    await client.query('SET LOCAL session_replication_role = origin');
    return (await client.query<{ invariant: string; subject: string; detail: string }>(`SELECT invariant, subject, detail FROM ${part}() ORDER BY subject, detail`)).rows;
  });
}

const shipmentColumns = ['id', 'exporter_org_id', 'recipient_org_id', 'product_id', 'origin', 'destination', 'export_allocation_id', 'import_allocation_id', 'units', 'status', 'booked_at', 'deadline', 'created_seq', 'updated_seq'];

/**
 * One INSERT of well-formed booked shipment rows (the exporter to alpha, on the world's
 * allocations), each with its overrides; in the same statement, the units they book and ship
 * are counted on both their allocations, and the shipped units on their licences, as the ledger
 * counts them (migration 070 refuses a transaction whose counters and shipments disagree).
 */
export function insertShipments(world: World, rows: Array<Record<string, string>>, counted = true): [string, unknown[]] {
  const values = rows.flatMap((overrides) => {
    const row: Record<string, string> = {
      id: 'S-X', exporter_org_id: world.actors.exporter.orgId, recipient_org_id: world.actors.alpha.orgId, product_id: world.productId,
      origin: 'US', destination: 'CN', export_allocation_id: world.allocations.alphaExport, import_allocation_id: world.allocations.alphaImport,
      units: '1', status: 'booked', booked_at: '2026-02-02T00:00:00Z', deadline: '2026-03-01T00:00:00Z', created_seq: '999999', updated_seq: '999999', ...overrides,
    };
    return shipmentColumns.map((column) => row[column]);
  });
  const tuples = rows.map((_, row) => `(${shipmentColumns.map((_, column) => `$${row * shipmentColumns.length + column + 1}`).join(', ')})`);
  const insert = `INSERT INTO shipments (${shipmentColumns.join(', ')}) VALUES ${tuples.join(', ')}`;
  if (!counted) return [insert, values];
  return [`WITH booked AS (${insert} RETURNING export_allocation_id, import_allocation_id, units, status),
      d AS (SELECT x.allocation_id, sum(${reserving('booked.status', 'booked.units')}) AS reserved, sum(${shipping('booked.status', 'booked.units')}) AS shipped
            FROM booked CROSS JOIN LATERAL (VALUES (booked.export_allocation_id), (booked.import_allocation_id)) x(allocation_id) GROUP BY x.allocation_id)
    ${countedSql('d')}`, values];
}

/**
 * Shipment rows written without their units counted (a case about another rule, with more units
 * than the allocations hold): 070's notes of them off, for the transaction only.
 */
export const reservationsUnguarded: Statement[] = [
  ['ALTER TABLE shipments DISABLE TRIGGER shipments_note_reservations_insert'],
  ['ALTER TABLE shipments DISABLE TRIGGER shipments_note_reservations_update'],
];

/**
 * One statement that moves shipment `shipmentId` to `status` and keeps what it books and ships
 * counted, as the ledger does: on both its allocations, and the shipped units on their licences.
 */
export function statusInStep(shipmentId: string, status: string): Statement {
  return [`WITH b AS (SELECT id, export_allocation_id, import_allocation_id, units, status FROM shipments WHERE id = $1),
      moved AS (UPDATE shipments s SET status = $2::text FROM b WHERE s.id = b.id RETURNING s.id),
      d AS (SELECT x.allocation_id, sum(${reserving('$2::text', 'b.units')} - ${reserving('b.status', 'b.units')}) AS reserved, sum(${shipping('$2::text', 'b.units')} - ${shipping('b.status', 'b.units')}) AS shipped
            FROM b CROSS JOIN LATERAL (VALUES (b.export_allocation_id), (b.import_allocation_id)) x(allocation_id) GROUP BY x.allocation_id)
    ${countedSql('d')}`, [shipmentId, status]];
}

/** The units a shipment in `status` books (reserves), and those it has shipped. */
const reserving = (status: string, units: string) => `CASE WHEN ${status} = 'booked' THEN ${units} ELSE 0 END`;
const shipping = (status: string, units: string) => `CASE WHEN ${status} IN ('shipped', 'cleared', 'delivered', 'returned') THEN ${units} ELSE 0 END`;

/**
 * The tail of a statement whose CTE `deltas` (allocation_id, reserved, shipped) says what
 * changed: added to the allocations' counters, and the shipped units to their licences', as
 * the ledger counts them.
 */
function countedSql(deltas: string): string {
  return `, counted AS (UPDATE allocations a SET reserved_units = a.reserved_units + ${deltas}.reserved, shipped_units = a.shipped_units + ${deltas}.shipped
        FROM ${deltas} WHERE a.id = ${deltas}.allocation_id RETURNING a.licence_id, ${deltas}.shipped)
    UPDATE licences l SET shipped_units = l.shipped_units + c.shipped
    FROM (SELECT licence_id, sum(shipped) AS shipped FROM counted GROUP BY licence_id) c WHERE l.id = c.licence_id AND c.shipped <> 0`;
}

/**
 * The manifest lines as the table `shipment_serials` held them before migration 075, from
 * today's tables: one a listed serial (shipment_id, serial, live), live while its shipment is
 * under way.
 */
export const manifestLineRowsBefore075 = `SELECT u.shipment_id, u.serial, s.status IN ('booked', 'shipped', 'cleared') AS live FROM units u JOIN shipments s ON s.id = u.shipment_id
  UNION ALL SELECT m.shipment_id, m.serial, false FROM moved_manifest_lines m`;

/**
 * Those lines as a temporary view named as the table: an older migration replayed over today's
 * tables (constraints-033.test.ts and others) reads that table. Run it in the rolled-back
 * transaction before the migration's text; the view goes with the rollback.
 */
export const manifestLinesBefore075 = `CREATE TEMP VIEW shipment_serials AS ${manifestLineRowsBefore075}`;

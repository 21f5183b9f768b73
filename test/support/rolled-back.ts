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

/** One INSERT of well-formed booked shipment rows (the exporter to alpha, on the world's allocations), each with its overrides. */
export function insertShipments(world: World, rows: Array<Record<string, string>>): [string, unknown[]] {
  const values = rows.flatMap((overrides) => {
    const row: Record<string, string> = {
      id: 'S-X', exporter_org_id: world.actors.exporter.orgId, recipient_org_id: world.actors.alpha.orgId, product_id: world.productId,
      origin: 'US', destination: 'CN', export_allocation_id: world.allocations.alphaExport, import_allocation_id: world.allocations.alphaImport,
      units: '1', status: 'booked', booked_at: '2026-02-02T00:00:00Z', deadline: '2026-03-01T00:00:00Z', created_seq: '999999', updated_seq: '999999', ...overrides,
    };
    return shipmentColumns.map((column) => row[column]);
  });
  const tuples = rows.map((_, row) => `(${shipmentColumns.map((_, column) => `$${row * shipmentColumns.length + column + 1}`).join(', ')})`);
  return [`INSERT INTO shipments (${shipmentColumns.join(', ')}) VALUES ${tuples.join(', ')}`, values];
}

/**
 * The ledger's state tables as a batch writes them: each table's rows, key and columns,
 * parents first.
 *
 * They belong to the ledger's storage surface, one module a part: head-lock.ts opens a batch
 * (beginBatch, openAtHeadSql), batch-state.ts loads the rows it asks for (batch-keys.ts),
 * batch-writes.ts writes what it changed, idempotency-answers.ts stores an answer outside one.
 *
 * Rules of this surface:
 * - Everything here runs inside the caller's transaction, after beginBatch() (or the
 *   opening of a batch sent ahead, openAtHeadSql, which reads nothing back). The lock
 *   orders all ledger writers (also across processes), so every read here sees every
 *   batch committed before this one and none that commits after.
 * - writeBatchAndCommit writes parents before children, one statement per table, and sends
 *   them together: a batch of 2,000 bookings is two or three round trips.
 * - A crash at any point before COMMIT leaves nothing of the batch; after COMMIT, all of it.
 */
import type {
  AllocationRow, LicencePartyRow, LicenceRow, LicenceVersionRow, OrganisationRow, ProductRow,
  ShipmentRow, SiteRow, TokenRow, UnitRow,
} from '../ledger/rows.ts';

export interface TableRows {
  organisations: OrganisationRow[];
  tokens: TokenRow[];
  products: ProductRow[];
  licences: LicenceRow[];
  licence_parties: LicencePartyRow[];
  licence_versions: LicenceVersionRow[];
  allocations: AllocationRow[];
  sites: SiteRow[];
  shipments: ShipmentRow[];
  units: UnitRow[];
}

export type TableName = keyof TableRows;

export interface TableShape {
  key: string[];
  columns: string[];
  /** Insert-only tables refuse a second write of the same key: that would be a bug. */
  insertOnly?: boolean;
  /**
   * The only columns the ledger changes in a row that exists, where not every one: a batch
   * writes back just these. The database refuses a change to the others (migration 063), so
   * writing a whole row back would fail on a value that reads back otherwise than it was
   * stored (a coordinate read with fewer digits where a pooler dropped extra_float_digits), or
   * on a cached row the owner has since corrected by hand.
   */
  changing?: readonly string[];
}

/** Parents first: the order batch-writes.ts follows. */
export const tables: Record<TableName, TableShape> = {
  organisations: { key: ['id'], columns: ['id', 'name', 'name_romanised', 'country', 'roles', 'identifiers', 'address', 'kyc_verified_by', 'demo', 'created_seq'], changing: ['kyc_verified_by'] },
  tokens: { key: ['id'], columns: ['id', 'org_id', 'role', 'label', 'secret_hash', 'created_at', 'revoked_at'] },
  products: { key: ['id'], columns: ['id', 'model', 'vendor', 'parameters', 'eccn', 'registered_by', 'demo', 'created_seq'], insertOnly: true },
  licences: { key: ['id'], columns: ['id', 'version', 'reference', 'authority_org_id', 'direction', 'holder_org_id', 'product_ids', 'origin', 'destination', 'authorised_units', 'value_minor', 'currency', 'valid_from', 'valid_to', 'conditions', 'riders', 'status', 'allocated_units', 'shipped_units', 'demo', 'created_seq', 'updated_seq'] },
  licence_parties: { key: ['licence_id', 'org_id', 'role'], columns: ['licence_id', 'org_id', 'role'], insertOnly: true },
  licence_versions: { key: ['licence_id', 'version'], columns: ['licence_id', 'version', 'snapshot', 'seq'], insertOnly: true },
  allocations: { key: ['id'], columns: ['id', 'licence_id', 'recipient_org_id', 'units', 'period_start', 'period_end', 'reserved_units', 'shipped_units', 'demo', 'created_seq'] },
  sites: { key: ['id'], columns: ['id', 'org_id', 'name', 'province', 'city', 'country', 'latitude', 'longitude', 'capacity_units', 'deployed_units', 'demo', 'created_seq'], changing: ['deployed_units'] },
  shipments: { key: ['id'], columns: ['id', 'exporter_org_id', 'recipient_org_id', 'product_id', 'origin', 'destination', 'export_allocation_id', 'import_allocation_id', 'units', 'status', 'booked_at', 'deadline', 'reference', 'serial_count', 'demo', 'created_seq', 'updated_seq'] },
  units: { key: ['serial'], columns: ['serial', 'gpu_uuid', 'product_id', 'recipient_org_id', 'custody', 'shipment_id', 'site_id', 'updated_seq', 'ever_shipped', 'gpu_uuid_shipped'] },
};

export const tableOrder = Object.keys(tables) as TableName[];

/**
 * The ledger's storage surface: load the rows a batch needs, write what it changed.
 *
 * Rules of this surface:
 * - Everything here runs inside the caller's transaction, after beginBatch(). The lock
 *   orders all ledger writers (also across processes), so every read here sees every
 *   batch committed before this one and none that commits after.
 * - writeBatchAndCommit writes parents before children, one statement per table, and sends
 *   them together: a batch of 2,000 bookings is two or three round trips.
 * - A crash at any point before COMMIT leaves nothing of the batch; after COMMIT, all of it.
 */
import pg from 'pg';
import { prepared, type PoolClient } from './pool.ts';
import type { TileRow } from './tlog-tables.ts';
import type {
  AllocationRow, LicencePartyRow, LicenceRow, LicenceVersionRow, OrganisationRow, ProductRow,
  ShipmentRow, ShipmentSerialRow, SiteRow, TokenRow, UnitRow,
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
  shipment_serials: ShipmentSerialRow[];
  units: UnitRow[];
}

export type TableName = keyof TableRows;

interface TableShape {
  key: string[];
  columns: string[];
  /** Insert-only tables refuse a second write of the same key: that would be a bug. */
  insertOnly?: boolean;
}

/** Parents first: the order writeBatch follows. */
const tables: Record<TableName, TableShape> = {
  organisations: { key: ['id'], columns: ['id', 'name', 'name_romanised', 'country', 'roles', 'identifiers', 'address', 'kyc_verified', 'demo', 'created_seq'] },
  tokens: { key: ['id'], columns: ['id', 'org_id', 'role', 'label', 'secret_hash', 'created_at', 'revoked_at'] },
  products: { key: ['id'], columns: ['id', 'model', 'vendor', 'parameters', 'eccn', 'demo', 'created_seq'] },
  licences: { key: ['id'], columns: ['id', 'version', 'reference', 'authority_org_id', 'direction', 'holder_org_id', 'product_ids', 'origin', 'destination', 'authorised_units', 'value_minor', 'currency', 'valid_from', 'valid_to', 'conditions', 'riders', 'status', 'allocated_units', 'shipped_units', 'demo', 'created_seq', 'updated_seq'] },
  licence_parties: { key: ['licence_id', 'org_id', 'role'], columns: ['licence_id', 'org_id', 'role'], insertOnly: true },
  licence_versions: { key: ['licence_id', 'version'], columns: ['licence_id', 'version', 'snapshot', 'seq'], insertOnly: true },
  allocations: { key: ['id'], columns: ['id', 'licence_id', 'recipient_org_id', 'units', 'period_start', 'period_end', 'reserved_units', 'shipped_units', 'demo', 'created_seq'] },
  sites: { key: ['id'], columns: ['id', 'org_id', 'name', 'province', 'city', 'latitude', 'longitude', 'capacity_units', 'deployed_units', 'demo', 'created_seq'] },
  shipments: { key: ['id'], columns: ['id', 'exporter_org_id', 'recipient_org_id', 'product_id', 'origin', 'destination', 'export_allocation_id', 'import_allocation_id', 'units', 'status', 'booked_at', 'deadline', 'reference', 'serial_count', 'demo', 'created_seq', 'updated_seq'] },
  shipment_serials: { key: ['shipment_id', 'serial'], columns: ['shipment_id', 'serial', 'live'], insertOnly: true },
  units: { key: ['serial'], columns: ['serial', 'gpu_uuid', 'product_id', 'recipient_org_id', 'custody', 'shipment_id', 'site_id', 'updated_seq'] },
};

export const tableOrder = Object.keys(tables) as TableName[];

const upsertSql = new Map<TableName, string>(
  tableOrder.map((name) => {
    const shape = tables[name];
    const columns = shape.columns.join(', ');
    const updates = shape.columns.filter((column) => !shape.key.includes(column)).map((column) => `${column} = EXCLUDED.${column}`);
    const conflict = shape.insertOnly || updates.length === 0 ? '' : ` ON CONFLICT (${shape.key.join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
    return [name, `INSERT INTO ${name} (${columns}) SELECT ${columns} FROM json_populate_recordset(NULL::${name}, $1::json)${conflict}`];
  }),
);

export interface LogHead {
  /** Events so far: the next event's seq. */
  size: number;
  /** RFC 6962 root over those events, as the transparency log last wrote it. */
  root: Buffer;
}

/**
 * Manifests write up to 100,000 rows to two tables. Scalar arrays through unnest cost
 * about a third less than JSON for them (bench/experiments/manifest-sql.ts); small writes
 * keep the generic path.
 */
const bulkRowsMin = 256;

const bulkWriters: Partial<{ [T in TableName]: (rows: TableRows[T]) => Step }> = {
  shipment_serials: (rows) => ({
    text: 'INSERT INTO shipment_serials (shipment_id, serial, live) SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[])',
    values: [rows.map((row) => row.shipment_id), rows.map((row) => row.serial), rows.map((row) => row.live)],
  }),
  units: (rows) => ({
    text: `INSERT INTO units (serial, gpu_uuid, product_id, recipient_org_id, custody, shipment_id, site_id, updated_seq)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
       ON CONFLICT (serial) DO UPDATE SET gpu_uuid = EXCLUDED.gpu_uuid, product_id = EXCLUDED.product_id, recipient_org_id = EXCLUDED.recipient_org_id,
         custody = EXCLUDED.custody, shipment_id = EXCLUDED.shipment_id, site_id = EXCLUDED.site_id, updated_seq = EXCLUDED.updated_seq`,
    values: [
      rows.map((row) => row.serial), rows.map((row) => row.gpu_uuid), rows.map((row) => row.product_id), rows.map((row) => row.recipient_org_id),
      rows.map((row) => row.custody), rows.map((row) => row.shipment_id), rows.map((row) => row.site_id), rows.map((row) => row.updated_seq),
    ],
  }),
};

/**
 * Opens a batch's transaction and takes the ledger's global write lock, in one round trip.
 * The lock orders every writer, also across processes; statements after it see every
 * batch committed before.
 */
export async function beginBatch(client: PoolClient): Promise<LogHead> {
  const results = (await client.query('BEGIN; SELECT size, root FROM log_head WHERE id = 1 FOR UPDATE')) as unknown as Array<{ rows: LogHead[] }>;
  const row = results[1]?.rows[0];
  if (!row) throw new Error('log_head row is missing: the database was not migrated');
  return row;
}

export interface EventWrite {
  seq: number;
  at: string;
  kind: string;
  actor: string;
  subject_id: string | null;
  org_ids: string[];
  canonical: Buffer;
}

export interface IdempotencyWrite {
  scope: string;
  key: string;
  request_hash: Buffer;
  status: number;
  response: unknown;
  created_at: string;
}

/** Set-based changes to every unit of a shipment, which may be 100,000 rows nobody loaded. */
export interface CustodyChange {
  shipment_id: string;
  from: string;
  to: string;
  seq: number;
}

export interface BatchWrites {
  rows: Partial<TableRows>;
  /** Shipments that ended (delivered, cancelled, expired): their manifest rows stop being live. */
  endedShipments: string[];
  /** Applied after the row writes; the batch's loaded units already carry these changes. */
  custodyChanges: CustodyChange[];
  /** Licences whose named parties are rewritten (amendments): old rows go first. */
  replacedPartiesOf: string[];
  events: EventWrite[];
  idempotency: IdempotencyWrite[];
}

/**
 * Writes a batch and commits it, in as few round trips as the data allows: every step
 * whose data is small goes into one multi-statement text, with the values as escaped
 * literals (pg.escapeLiteral; JSON for rows, hex for bytes). Only bulk rows (manifests of
 * thousands of serials) travel as parameters, in statements of their own. Steps keep their
 * order: parents before children, freed serials before new manifest rows, custody changes
 * after the rows, and the head update and COMMIT last.
 *
 * Crash note: a failure in any statement aborts the transaction (the caller rolls back);
 * a connection lost during the final text leaves the outcome unknown until the next read.
 */
export async function writeBatchAndCommit(client: PoolClient, writes: BatchWrites, tiles: TileRow[], head: LogHead): Promise<void> {
  if (!Number.isSafeInteger(head.size) || head.root.length !== 32) throw new Error('assertion failed: a log head is a safe integer size and a 32-byte root');
  const steps: Step[] = [];
  if (writes.replacedPartiesOf.length > 0) {
    steps.push(inline(`DELETE FROM licence_parties WHERE licence_id IN (SELECT json_array_elements_text(${json(writes.replacedPartiesOf)}))`));
  }
  // Before new manifest rows go in: a serial freed in this batch may be listed again.
  if (writes.endedShipments.length > 0) {
    steps.push(inline(`UPDATE shipment_serials SET live = false WHERE live AND shipment_id IN (SELECT json_array_elements_text(${json(writes.endedShipments)}))`));
  }
  for (const name of tableOrder) {
    const rows = writes.rows[name];
    if (rows === undefined || rows.length === 0) continue;
    const bulk = bulkWriters[name];
    steps.push(bulk && rows.length >= bulkRowsMin ? bulk(rows as never) : inline(upsertSql.get(name)!.replace('$1', json(rows))));
  }
  for (const change of writes.custodyChanges) {
    steps.push(inline(`UPDATE units SET custody = ${pg.escapeLiteral(change.to)}, updated_seq = ${integer(change.seq)} WHERE shipment_id = ${pg.escapeLiteral(change.shipment_id)} AND custody = ${pg.escapeLiteral(change.from)}`));
  }
  steps.push(...eventSteps(writes.events));
  if (writes.idempotency.length > 0) steps.push(idempotencyStep(writes.idempotency));
  if (tiles.length > 0) steps.push(tileStep(tiles));
  steps.push(inline(`UPDATE log_head SET size = ${integer(head.size)}, root = ${bytes(head.root)} WHERE id = 1`), inline('COMMIT'));
  await runSteps(client, steps);
}

function eventSteps(events: EventWrite[]): Step[] {
  if (events.length === 0) return [];
  const readers = events.flatMap((event) => [...new Set(event.org_ids)].map((orgId) => ({ org_id: orgId, seq: event.seq })));
  // Thousands of events as one JSON literal cost PostgreSQL far more than typed arrays do
  // (bench/tlog-append.ts: 150 µs against 15 µs an event): big batches send parameters.
  if (events.length >= bulkRowsMin) return bulkEventSteps(events, readers);
  const rows = events.map((event) => ({ ...event, canonical: event.canonical.toString('hex') }));
  return [
    inline(`INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
      SELECT seq, at, kind, actor, subject_id, org_ids, decode(canonical, 'hex')
      FROM json_to_recordset(${json(rows)}) AS e(seq bigint, at timestamptz, kind text, actor text, subject_id text, org_ids text[], canonical text)`),
    ...(readers.length === 0 ? [] : [inline(`INSERT INTO event_readers (org_id, seq) SELECT org_id, seq FROM json_to_recordset(${json(readers)}) AS r(org_id text, seq bigint)`)]),
  ];
}

function bulkEventSteps(events: EventWrite[], readers: Array<{ org_id: string; seq: number }>): Step[] {
  return [
    {
      text: `INSERT INTO events (seq, at, kind, actor, subject_id, org_ids, canonical)
        SELECT seq, at, kind, actor, subject_id, string_to_array(org_ids, ' '), canonical
        FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[])
          AS e(seq, at, kind, actor, subject_id, org_ids, canonical)`,
      values: [
        events.map((event) => event.seq), events.map((event) => event.at), events.map((event) => event.kind), events.map((event) => event.actor),
        events.map((event) => event.subject_id), events.map((event) => event.org_ids.join(' ')), events.map((event) => event.canonical),
      ],
    },
    ...(readers.length === 0 ? [] : [{
      text: 'INSERT INTO event_readers (org_id, seq) SELECT * FROM unnest($1::text[], $2::bigint[])',
      values: [readers.map((reader) => reader.org_id), readers.map((reader) => reader.seq)],
    }]),
  ];
}

function idempotencyStep(entries: IdempotencyWrite[]): Step {
  const rows = entries.map((entry) => ({ ...entry, request_hash: entry.request_hash.toString('hex') }));
  return inline(`INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at)
    SELECT scope, key, decode(request_hash, 'hex'), status, response, created_at
    FROM json_to_recordset(${json(rows)}) AS i(scope text, key text, request_hash text, status int, response jsonb, created_at timestamptz)`);
}

function tileStep(tiles: TileRow[]): Step {
  const rows = tiles.map((tile) => ({ level: tile.level, index: tile.index, width: tile.width, hashes: tile.hashes.toString('hex') }));
  return inline(`INSERT INTO tlog_tiles (level, index, width, hashes)
    SELECT level, index, width, decode(hashes, 'hex') FROM json_to_recordset(${json(rows)}) AS t(level smallint, index bigint, width smallint, hashes text)
    ON CONFLICT (level, index) DO UPDATE SET width = EXCLUDED.width, hashes = EXCLUDED.hashes WHERE tlog_tiles.width < EXCLUDED.width`);
}

/** One statement: inline text (joined with its neighbours into one round trip), or parameterised. */
interface Step {
  text: string;
  values?: unknown[];
}

const inline = (text: string): Step => ({ text });

async function runSteps(client: PoolClient, steps: Step[]): Promise<void> {
  let pending: string[] = [];
  for (const step of steps) {
    if (step.values === undefined) {
      pending.push(step.text);
      continue;
    }
    if (pending.length > 0) await client.query(pending.join(';\n'));
    pending = [];
    await client.query(prepared(step.text, step.values));
  }
  if (pending.length > 0) await client.query(pending.join(';\n'));
}

/** A JSON value as an escaped SQL literal of type json. */
function json(value: unknown): string {
  return `${pg.escapeLiteral(JSON.stringify(value))}::json`;
}

function integer(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`assertion failed: ${value} is not a safe integer`);
  return String(value);
}

function bytes(value: Buffer): string {
  return `'\\x${value.toString('hex')}'::bytea`;
}

export interface StoredAnswer {
  scope: string;
  key: string;
  request_hash: Buffer;
  status: number;
  response: unknown;
}

export async function findIdempotencyAnswers(client: PoolClient, keys: Array<{ scope: string; key: string }>): Promise<StoredAnswer[]> {
  if (keys.length === 0) return [];
  const result = await client.query<StoredAnswer>(
    `SELECT i.scope, i.key, i.request_hash, i.status, i.response
     FROM idempotency_keys i JOIN unnest($1::text[], $2::text[]) AS k(scope, key) ON i.scope = k.scope AND i.key = k.key`,
    [keys.map((entry) => entry.scope), keys.map((entry) => entry.key)],
  );
  return result.rows;
}

/** What a batch asks to read; every list may be empty. */
export interface BatchKeys {
  organisations: Set<string>;
  products: Set<string>;
  tokens: Set<string>;
  licences: Set<string>;
  allocations: Set<string>;
  sites: Set<string>;
  shipments: Set<string>;
  serials: Set<string>;
  /** Sweeps: booked shipments and issued licences whose time ran out by this instant. */
  dueAt: string | null;
}

export function emptyKeys(): BatchKeys {
  return {
    organisations: new Set(), products: new Set(), tokens: new Set(), licences: new Set(), allocations: new Set(),
    sites: new Set(), shipments: new Set(), serials: new Set(), dueAt: null,
  };
}

export interface LoadedState {
  organisations: OrganisationRow[];
  products: ProductRow[];
  tokens: TokenRow[];
  licences: Array<LicenceRow & { parties: LicencePartyRow[] }>;
  allocations: AllocationRow[];
  sites: SiteRow[];
  shipments: ShipmentRow[];
  units: UnitRow[];
  liveSerials: ShipmentSerialRow[];
}

/** Sweeps take at most this many rows per batch; the next sweep takes the rest. */
const sweepRowsMax = 1_000;

/**
 * Loads what the keys name, then what those rows point to: shipments bring their
 * allocations, allocations their licences. Fixed order, at most a dozen statements.
 */
export async function loadBatchState(client: PoolClient, keys: BatchKeys): Promise<LoadedState> {
  const select = async <T>(sql: string, ids: Iterable<string>): Promise<T[]> => {
    const list = [...ids];
    if (list.length === 0) return [];
    return (await client.query(prepared(sql, [list]))).rows as T[];
  };
  if (keys.dueAt !== null) {
    const due = await client.query<{ id: string; kind: string }>(
      `(SELECT id, 'shipment' AS kind FROM shipments WHERE status = 'booked' AND deadline <= $1 ORDER BY deadline LIMIT ${sweepRowsMax})
       UNION ALL (SELECT id, 'licence' FROM licences WHERE status IN ('issued','suspended') AND valid_to <= $1 LIMIT ${sweepRowsMax})`,
      [keys.dueAt],
    );
    for (const row of due.rows) (row.kind === 'shipment' ? keys.shipments : keys.licences).add(row.id);
  }
  const shipments = await select<ShipmentRow>('SELECT * FROM shipments WHERE id = ANY($1)', keys.shipments);
  for (const shipment of shipments) {
    keys.allocations.add(shipment.export_allocation_id).add(shipment.import_allocation_id);
    keys.organisations.add(shipment.recipient_org_id).add(shipment.exporter_org_id);
  }
  const allocations = await select<AllocationRow>('SELECT * FROM allocations WHERE id = ANY($1)', keys.allocations);
  for (const allocation of allocations) {
    keys.licences.add(allocation.licence_id);
    keys.organisations.add(allocation.recipient_org_id);
  }
  const licences = await select<LicenceRow & { parties: LicencePartyRow[] }>(
    `SELECT l.*, coalesce((SELECT json_agg(json_build_object('licence_id', p.licence_id, 'org_id', p.org_id, 'role', p.role))
                           FROM licence_parties p WHERE p.licence_id = l.id), '[]'::json) AS parties
     FROM licences l WHERE l.id = ANY($1)`,
    keys.licences,
  );
  // One client runs one query at a time: these go in sequence.
  const serials = [...keys.serials];
  const organisations = await select<OrganisationRow>('SELECT * FROM organisations WHERE id = ANY($1)', keys.organisations);
  const products = await select<ProductRow>('SELECT * FROM products WHERE id = ANY($1)', keys.products);
  const tokens = await select<TokenRow>(`SELECT id, org_id, role, label, '\\x' || encode(secret_hash, 'hex') AS secret_hash, created_at, revoked_at FROM tokens WHERE id = ANY($1)`, keys.tokens);
  // JOIN unnest plans as a hash join: three times faster than = ANY for 100,000 serials.
  const units = await select<UnitRow>('SELECT u.* FROM units u JOIN unnest($1::text[]) AS k(serial) ON u.serial = k.serial', serials);
  const liveSerials = await select<ShipmentSerialRow>('SELECT s.* FROM shipment_serials s JOIN unnest($1::text[]) AS k(serial) ON s.serial = k.serial WHERE s.live', serials);
  // A unit's current site comes with it: moving or retiring it changes that site's count.
  for (const unit of units) if (unit.site_id !== null) keys.sites.add(unit.site_id);
  const sites = await select<SiteRow>('SELECT * FROM sites WHERE id = ANY($1)', keys.sites);
  return { organisations, products, tokens, licences, allocations, sites, shipments, units, liveSerials };
}

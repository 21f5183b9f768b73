/**
 * The ledger's storage surface: load the rows a batch needs, write what it changed.
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
import pg from 'pg';
import { limits } from '../core/limits.ts';
import { inTransaction, prepared, waitBoundsSql, type Pool, type PoolClient } from './pool.ts';
import type { IdempotencyWrite } from './batch-writes.ts';
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

export interface TableShape {
  key: string[];
  columns: string[];
  /** Insert-only tables refuse a second write of the same key: that would be a bug. */
  insertOnly?: boolean;
}

/** Parents first: the order batch-writes.ts follows. */
export const tables: Record<TableName, TableShape> = {
  organisations: { key: ['id'], columns: ['id', 'name', 'name_romanised', 'country', 'roles', 'identifiers', 'address', 'kyc_verified_by', 'demo', 'created_seq'] },
  tokens: { key: ['id'], columns: ['id', 'org_id', 'role', 'label', 'secret_hash', 'created_at', 'revoked_at'] },
  products: { key: ['id'], columns: ['id', 'model', 'vendor', 'parameters', 'eccn', 'registered_by', 'demo', 'created_seq'] },
  licences: { key: ['id'], columns: ['id', 'version', 'reference', 'authority_org_id', 'direction', 'holder_org_id', 'product_ids', 'origin', 'destination', 'authorised_units', 'value_minor', 'currency', 'valid_from', 'valid_to', 'conditions', 'riders', 'status', 'allocated_units', 'shipped_units', 'demo', 'created_seq', 'updated_seq'] },
  licence_parties: { key: ['licence_id', 'org_id', 'role'], columns: ['licence_id', 'org_id', 'role'], insertOnly: true },
  licence_versions: { key: ['licence_id', 'version'], columns: ['licence_id', 'version', 'snapshot', 'seq'], insertOnly: true },
  allocations: { key: ['id'], columns: ['id', 'licence_id', 'recipient_org_id', 'units', 'period_start', 'period_end', 'reserved_units', 'shipped_units', 'demo', 'created_seq'] },
  sites: { key: ['id'], columns: ['id', 'org_id', 'name', 'province', 'city', 'latitude', 'longitude', 'capacity_units', 'deployed_units', 'demo', 'created_seq'] },
  shipments: { key: ['id'], columns: ['id', 'exporter_org_id', 'recipient_org_id', 'product_id', 'origin', 'destination', 'export_allocation_id', 'import_allocation_id', 'units', 'status', 'booked_at', 'deadline', 'reference', 'serial_count', 'demo', 'created_seq', 'updated_seq'] },
  shipment_serials: { key: ['shipment_id', 'serial'], columns: ['shipment_id', 'serial', 'live'], insertOnly: true },
  units: { key: ['serial'], columns: ['serial', 'gpu_uuid', 'product_id', 'recipient_org_id', 'custody', 'shipment_id', 'site_id', 'updated_seq', 'ever_shipped', 'gpu_uuid_shipped'] },
};

export const tableOrder = Object.keys(tables) as TableName[];

export interface LogHead {
  /** Events so far: the next event's seq. */
  size: number;
  /** RFC 6962 root over those events, as the transparency log last wrote it. */
  root: Buffer;
}

/**
 * The head a batch is applied at: the log's, and the time of its newest event (log_head.at,
 * migration 031), before which no later event may be dated. The database keeps the time:
 * it moves with a batch's events only, so a head's size and root fix it.
 */
export interface BatchHead extends LogHead {
  /** ISO 8601, to the millisecond. */
  at: string;
}

/** SQLSTATE of log_head_event_times_rise (migration 031): a batch dated before the newest event, a bug of its writer's. */
export const eventTimeBackCode = 'CLH02';
/**
 * SQLSTATE of the same trigger (migration 047) when a batch is dated more than
 * limits.clockAheadOfDatabaseMsMax ahead of the database's clock: the writing server's clock
 * runs ahead. Its DETAIL is JSON: { batchAt, databaseAt, aheadMsMax }.
 */
export const clockAheadOfDatabaseCode = 'CLH03';

export interface StoredAnswer {
  scope: string;
  key: string;
  request_hash: Buffer;
  status: number;
  response: unknown;
}

/**
 * Opens a batch's transaction, takes the ledger's global write lock and finds the head (with
 * its time) and the answers stored under the batch's idempotency keys, in one round trip.
 * The lock orders every writer, also across processes; statements after it see every batch
 * committed before.
 * The keys travel as one JSON literal (pg.escapeLiteral), like the batch's writes.
 */
export async function beginBatch(client: PoolClient, keys: Array<{ scope: string; key: string }> = [], lockWaitMs: number = limits.headLockWaitMsMax): Promise<{ head: BatchHead; stored: StoredAnswer[] }> {
  const lookup = keys.length === 0 ? '' : `;
    SELECT i.scope, i.key, i.request_hash, i.status, i.response
    FROM idempotency_keys i JOIN json_to_recordset(${pg.escapeLiteral(JSON.stringify(keys.map(({ scope, key }) => ({ scope, key }))))}::json) AS k(scope text, key text)
      ON i.scope = k.scope AND i.key = k.key`;
  // The wait for the lock is bounded (in the same round trip): a writer that hangs holding
  // it gets our callers a 503 (lock_not_available, refusals.ts) instead of no answer at all.
  const results = (await client.query(`${beginHeadLocked}; ${headLockBoundsSql(lockWaitMs)}; SELECT size, root, at FROM log_head WHERE id = 1 FOR UPDATE${lookup}`)) as unknown as Array<{ rows: unknown[] }>;
  // The head's rows, then the stored answers' if the keys were looked up: the last results.
  const [headResult, storedResult] = keys.length === 0 ? [results.at(-1), undefined] : results.slice(-2);
  const head = headResult?.rows[0] as BatchHead | undefined;
  if (!head) throw new Error('log_head row is missing: the database was not migrated');
  return { head, stored: (storedResult?.rows ?? []) as StoredAnswer[] };
}

/**
 * How every transaction that takes the head lock opens. The lock orders the writers, and what
 * a transaction reads after it must be what the writer before it committed: READ COMMITTED
 * takes each statement's snapshot when the statement starts, so after the lock. Under the
 * session's default, were it repeatable read or serializable (default_transaction_isolation,
 * a database's or role's setting), the snapshot is the transaction's first, taken before the
 * lock: locking the head that another writer moved meanwhile then fails (40001, could not
 * serialize access), and with two servers a quarter of all writes were answered 503.
 */
const beginHeadLocked = 'BEGIN ISOLATION LEVEL READ COMMITTED';

/**
 * How long one statement of a ledger transaction may run: our own bound, not the role's or
 * the database's. A managed PostgreSQL often sets a short statement_timeout for every
 * session, and a 100,000-serial manifest's COPY (about a second here) would then fail on
 * every retry, each answered 503 "retry". A hundred times that COPY, still an end.
 */
export const ledgerStatementMsMax = 120_000;

/**
 * The bounds and settings of every transaction that takes the head lock, sent before it in
 * the same text (no round trip of their own):
 * - how long it waits for the lock (`lockWaitMs`), and how long it may then sit idle between
 *   statements while holding it (limits.headLockIdleMsMax). Past the second, PostgreSQL ends
 *   the session (SQLSTATE 25P03), which rolls the transaction back and frees the lock for the
 *   other writers: a writer frozen holding it (a GC pause, SIGSTOP, a partition) stops them
 *   only that long. Crash note: the frozen writer's batch is then gone whole; it finds its
 *   connection closed when it wakes and answers its callers 'unavailable' (refusals.ts), to
 *   retry with their keys.
 * - how long each statement may run (ledgerStatementMsMax).
 * - synchronous_commit at least 'local': a batch is answered once its COMMIT returns, and
 *   with synchronous_commit off (a database or role setting) that return comes before the
 *   WAL is on disk, so a PostgreSQL crash lost acknowledged commands and handed their ids
 *   out again. Raised only where it is off, as checkpoint signing does (tlog-tables.ts); a
 *   stronger setting (a synchronous standby) is the operator's and stays.
 */
function headLockBoundsSql(lockWaitMs: number): string {
  return `${waitBoundsSql(lockWaitMs, 'locks')}; SET LOCAL idle_in_transaction_session_timeout = ${limits.headLockIdleMsMax}; `
    + `SET LOCAL statement_timeout = ${ledgerStatementMsMax}; `
    + "SELECT set_config('synchronous_commit', 'local', true) WHERE current_setting('synchronous_commit') = 'off'";
}

/** A head about to be written into SQL text: a safe integer size and a 32-byte root, or a bug. */
export function assertLogHead(head: LogHead): void {
  if (!Number.isSafeInteger(head.size) || head.root.length !== 32) throw new Error('assertion failed: a log head is a safe integer size and a 32-byte root');
}

/** SQLSTATE of ledger_lock_expected_head (migration 021) when the head is not the expected one. */
export const headMovedCode = 'CLH01';

/**
 * The first statements of a batch sent ahead (ledger/batch-commit.ts, sendAhead): they open its
 * transaction and take the ledger's lock like beginBatch, but read nothing back. The batch
 * goes on only at the head it was applied at; at any other the function raises headMovedCode
 * and nothing of the batch runs. Its idempotency keys are not looked up: the batch inserts
 * each, so a key stored before fails it on the primary key instead. The head's time needs
 * no check of its own: it moves only with the head's size (migration 031).
 */
export function openAtHeadSql(head: LogHead, lockWaitMs: number = limits.headLockWaitMsMax): string {
  assertLogHead(head);
  return `${beginHeadLocked}; ${headLockBoundsSql(lockWaitMs)}; SELECT ledger_lock_expected_head(${head.size}, decode('${head.root.toString('hex')}', 'hex'))`;
}

/**
 * Stores one idempotency answer outside a batch, under the head lock as every batch writes
 * its answers: another process's batch holding the same key is then committed or gone,
 * never in flight. Returns undefined when this answer was stored, or the answer stored
 * before it under the key (read in its own statement, so that it sees that commit).
 */
export function rememberAnswer(pool: Pool, row: IdempotencyWrite, lockWaitMs: number = limits.headLockWaitMsMax): Promise<StoredAnswer | undefined> {
  return inTransaction(pool, beginHeadLocked, async (client) => {
    await client.query(`${headLockBoundsSql(lockWaitMs)}; SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE`);
    const inserted = await client.query(
      `INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (scope, key) DO NOTHING`,
      [row.scope, row.key, row.request_hash, row.status, JSON.stringify(row.response), row.created_at],
    );
    if (inserted.rowCount === 1) return undefined;
    return storedAnswer(client, row.scope, row.key);
  });
}

/**
 * The answer stored under a key, if any, by the table's primary key: read back by
 * rememberAnswer, and read on its own for a request refused before it is queued
 * (ledger/sequencer.ts answerRefusedAtOnce), which no batch looks up.
 */
export async function storedAnswer(db: Pool | PoolClient, scope: string, key: string): Promise<StoredAnswer | undefined> {
  return (await db.query<StoredAnswer>('SELECT scope, key, request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2', [scope, key])).rows[0];
}

/** What a batch asks to read; every list may be empty. */
export interface BatchKeys {
  organisations: Set<string>;
  /**
   * Organisations by identifier, each `kind=value` (organisationIdentifierKey): a
   * registration looks for the organisation that already holds its USCC, LEI or any other
   * identifier (migration 039). Loaded with the organisations by id; a row cache cannot
   * answer it (an organisation not cached may still hold the value).
   */
  organisationIdentifiers: Set<string>;
  products: Set<string>;
  /**
   * Products by model, as products_model_key compares them (=, the whole text): a
   * registration looks for the product that already holds its model. Loaded with the
   * products by id; a row cache cannot answer it (a model not cached may still be stored).
   */
  productModels: Set<string>;
  tokens: Set<string>;
  licences: Set<string>;
  /**
   * Licences by reference, each `authority=reference` (licenceReferenceKey): a licence's
   * creation looks for the licences its authority already gave that reference (migration 043:
   * compared as licence_reference_key spells them, trimmed, ASCII letters in lower case).
   * Loaded with the licences by id; a row cache cannot answer it (a licence not cached may
   * hold the reference).
   */
  licenceReferences: Set<string>;
  /**
   * Licences whose every allocation the batch reads: an amendment that shortens a validity
   * checks each tranche under it (ledger/handlers/licences.ts). Through allocations_licence;
   * a row cache cannot answer it (it does not know that it holds all of them).
   */
  allocationsOfLicences: Set<string>;
  allocations: Set<string>;
  sites: Set<string>;
  shipments: Set<string>;
  serials: Set<string>;
  /** Sweeps: what is due by this instant (loadDue): bookings past their deadline or under a lapsed licence, licences past their validity. */
  dueAt: string | null;
}

export function emptyKeys(): BatchKeys {
  return {
    organisations: new Set(), organisationIdentifiers: new Set(), products: new Set(), productModels: new Set(), tokens: new Set(), licences: new Set(),
    licenceReferences: new Set(), allocationsOfLicences: new Set(), allocations: new Set(), sites: new Set(), shipments: new Set(), serials: new Set(), dueAt: null,
  };
}

/**
 * An identifier as keys.organisationIdentifiers holds it. A kind has no '=' (ledger/schemas.ts:
 * lower-case letters and '_'), so the first '=' ends it; the value may hold any.
 */
export function organisationIdentifierKey(kind: string, value: string): string {
  return `${kind}=${value}`;
}

/** The keys as the containment tests organisationsByIdentifierSql runs over them: one object of one kind each. */
function identifierPairs(keys: Iterable<string>): Array<Record<string, string>> {
  return [...keys].map((key) => {
    const at = key.indexOf('=');
    return { [key.slice(0, at)]: key.slice(at + 1) };
  });
}

/**
 * Every organisation that holds one of the identifiers: one bitmap scan of the
 * organisations_identifiers GIN index (migration 039) per identifier, the same look-up the
 * database's trigger makes. An organisation holding two of them comes twice. Exported for
 * the test of its plan (store/constraints-039.test.ts).
 */
export const organisationsByIdentifierSql = `SELECT o.* FROM jsonb_array_elements($1::jsonb) AS k(pair)
  JOIN organisations o ON o.identifiers @> k.pair`;

/**
 * A reference as keys.licenceReferences holds it. An organisation id has no '=' (ledger/schemas.ts:
 * letters, digits, - and _), so the first '=' ends it; the reference may hold any.
 */
export function licenceReferenceKey(authorityId: string, reference: string): string {
  return `${authorityId}=${reference}`;
}

/**
 * The ids of the licences each authority gave each reference (keys.licenceReferences), in any
 * spelling that licence_reference_key (migration 043) folds to the same: one index scan of
 * licences_authority_reference per key, the look-up the database's trigger makes. LATERAL
 * with OFFSET 0, so that each key probes the index: joined plainly, the planner may hash every
 * licence's reference instead (it guesses 100 keys; a batch has a few). Exported for the test
 * of its plan (store/constraints-043.test.ts).
 */
export const licencesByReferenceSql = `SELECT l.id FROM json_to_recordset($1::json) AS k(authority text, reference text),
  LATERAL (SELECT id FROM licences WHERE authority_org_id = k.authority AND licence_reference_key(reference) = licence_reference_key(k.reference) OFFSET 0) l`;

function referencePairs(keys: Iterable<string>): Array<{ authority: string; reference: string }> {
  return [...keys].map((key) => {
    const at = key.indexOf('=');
    return { authority: key.slice(0, at), reference: key.slice(at + 1) };
  });
}

export interface LoadedState {
  organisations: OrganisationRow[];
  products: ProductRow[];
  tokens: TokenRow[];
  licences: Array<LicenceRow & { parties: LicencePartyRow[]; allocation_recipients: string[] }>;
  allocations: AllocationRow[];
  sites: SiteRow[];
  shipments: ShipmentRow[];
  units: UnitRow[];
  liveSerials: ShipmentSerialRow[];
}

/**
 * A text[] parameter written once and sent to several queries: node-postgres escapes every
 * element of an array parameter again for each query it is sent with (33 ms for a manifest's
 * 100,000 serials, against 16 ms to write the literal once). Serials (ledger/schemas.ts) hold
 * no quote or backslash, so each goes between quotes as it is; a list holding either is
 * left to node-postgres.
 */
class TextArrayParameter {
  constructor(readonly value: string | string[], readonly length: number) {}
}

function textArrayParameter(values: string[]): TextArrayParameter {
  const plain = values.every((value) => !value.includes('"') && !value.includes('\\'));
  return new TextArrayParameter(plain && values.length > 0 ? `{"${values.join('","')}"}` : values, values.length);
}

/** Sweeps take at most this many rows per batch; the next sweep takes the rest. */
const sweepRowsMax = 1_000;

/**
 * What a sweep (ledger/handlers/sweep.ts) expires, by the handler's own tests, into the
 * keys: booked shipments past their deadline; booked shipments under a licence no longer in
 * force (lapsedLicence: expired, revoked or surrendered, or past its validity); licences
 * past their validity that are still issued, suspended or exhausted. Each list at most
 * sweepRowsMax; the next sweep takes the rest.
 *
 * A tick with nothing due reads three indexes' empty ranges and a table of marks, whatever
 * the ledger's size (bench/experiments/sweep-due.ts): the sweep runs under the head lock
 * every few seconds, so every writer waits for it. The lapsed bookings are found from the
 * licences that may hold them, never from all allocations or shipments:
 * - licences marked when their status ended them (licence_lapses, migration 034: set by the
 *   status change itself, in its batch), and those past their validity not yet expired (the
 *   licences_expirable_valid_to index), which this same sweep expires, with their bookings;
 * - their allocations that hold reservations (a booked shipment reserves on both of its),
 *   licence by licence through allocations_licence (each OFFSET 0 keeps the planner from
 *   joining the licences to every reserving allocation instead, hashing all of them, as it
 *   did at 10,000 allocations; src/store/sweep-due.test.ts counts the rows read);
 * - the booked shipments of those allocations, from all booked shipments (shipments_due):
 *   live bookings, not history, and only in a tick that finds a lapsed licence still
 *   reserving, once per lapse (034 says why bookings pay for no index by allocation).
 * A mark whose licence's allocations reserve nothing is deleted here, in this batch: nothing
 * books under a licence that has lapsed (no step leaves revoked, surrendered or expired), so
 * it will never again hold a booking. The delete commits with the batch, which a sweep with
 * nothing due commits too (refused, with no event); with a batch that rolls back it rolls
 * back, and a later sweep deletes it. Two servers' sweeps take the head lock in turn, so the
 * second sees the first's expiries and deletes.
 * Exported for bench/experiments/sweep-due.ts; the ledger calls it through loadBatchState.
 */
export async function loadDue(client: PoolClient, keys: BatchKeys, dueAt: string): Promise<void> {
  const due = await client.query<{ id: string; kind: 'shipment' | 'licence' | 'allocation' }>(
    `WITH marked AS (SELECT licence_id FROM licence_lapses ORDER BY licence_id LIMIT ${sweepRowsMax}),
          past AS (SELECT id FROM licences WHERE status IN ('issued','suspended','exhausted') AND valid_to <= $1 ORDER BY valid_to LIMIT ${sweepRowsMax}),
          -- Runs whether or not the query reads it (PostgreSQL runs a WITH's DELETE once, whole).
          unmarked AS (DELETE FROM licence_lapses m USING marked
                      WHERE m.licence_id = marked.licence_id
                        AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.licence_id = m.licence_id AND a.reserved_units > 0 OFFSET 0))
     (SELECT id, 'shipment' AS kind FROM shipments WHERE status = 'booked' AND deadline <= $1 ORDER BY deadline LIMIT ${sweepRowsMax})
     UNION ALL (SELECT id, 'licence' FROM past)
     UNION ALL (SELECT a.id, 'allocation' FROM (SELECT licence_id FROM marked UNION ALL SELECT id FROM past) l,
                  LATERAL (SELECT id FROM allocations WHERE licence_id = l.licence_id AND reserved_units > 0 OFFSET 0) a
                LIMIT ${sweepRowsMax})`,
    [dueAt],
  );
  const lapsedAllocations: string[] = [];
  for (const row of due.rows) {
    if (row.kind === 'allocation') lapsedAllocations.push(row.id);
    else (row.kind === 'shipment' ? keys.shipments : keys.licences).add(row.id);
  }
  if (lapsedAllocations.length === 0) return;
  const lapsed = await client.query<{ id: string }>(
    `SELECT id FROM shipments WHERE status = 'booked' AND deadline > $1
       AND (export_allocation_id = ANY($2) OR import_allocation_id = ANY($2))
     ORDER BY deadline LIMIT ${sweepRowsMax}`,
    [dueAt, lapsedAllocations],
  );
  for (const row of lapsed.rows) keys.shipments.add(row.id);
}

/**
 * Loads what the keys name, then what those rows point to: units bring the shipment that
 * last held them, shipments their allocations, allocations their licences. Fixed order, at
 * most fifteen statements, each skipped when it has nothing to look up (most batches run a few). For a sweep (keys.dueAt) it first runs loadDue, which also
 * deletes spent lapse marks: this load writes, and the write commits or rolls back with the
 * batch.
 */
export async function loadBatchState(client: PoolClient, keys: BatchKeys): Promise<LoadedState> {
  const select = async <T>(sql: string, ids: Iterable<string> | TextArrayParameter): Promise<T[]> => {
    const list = ids instanceof TextArrayParameter ? ids : [...ids];
    if (list.length === 0) return [];
    return (await client.query(prepared(sql, [list instanceof TextArrayParameter ? list.value : list]))).rows as T[];
  };
  if (keys.dueAt !== null) await loadDue(client, keys, keys.dueAt);
  // 100,000 serials, as the tables grow (bench/experiments/serial-lookups.ts): by = ANY the
  // planner probes the primary key for each serial, 207–441 ms from 400,000 to 4,000,000
  // units. Joined to unnest, it read every unit instead (hash or merge join): 302, 689 and
  // 2,015 ms.
  const serials = textArrayParameter([...keys.serials]);
  const units = await select<UnitRow>('SELECT u.* FROM units u WHERE u.serial = ANY($1::text[])', serials);
  // A unit belongs to the exporter of the shipment that last held it: listing it again is
  // that exporter's alone (ledger/handlers/manifests.ts), so that shipment comes with it,
  // and with its allocations like any other (a sweep in the batch may expire it). Units
  // before shipments for that; the distinct ids are few, and new serials bring none.
  for (const unit of units) keys.shipments.add(unit.shipment_id);
  const shipments = await select<ShipmentRow>('SELECT * FROM shipments WHERE id = ANY($1)', keys.shipments);
  for (const shipment of shipments) {
    keys.allocations.add(shipment.export_allocation_id).add(shipment.import_allocation_id);
    keys.organisations.add(shipment.recipient_org_id).add(shipment.exporter_org_id);
  }
  // Every allocation of a licence an amendment shortens (allocations_licence), by id below with the rest.
  for (const row of await select<{ id: string }>('SELECT id FROM allocations WHERE licence_id = ANY($1)', keys.allocationsOfLicences)) keys.allocations.add(row.id);
  const allocations = await select<AllocationRow>('SELECT * FROM allocations WHERE id = ANY($1)', keys.allocations);
  for (const allocation of allocations) {
    keys.licences.add(allocation.licence_id);
    keys.organisations.add(allocation.recipient_org_id);
  }
  // The licences that hold a reference a creation asks for, then loaded by id with the rest.
  if (keys.licenceReferences.size > 0) {
    const holders = await client.query<{ id: string }>(prepared(licencesByReferenceSql, [JSON.stringify(referencePairs(keys.licenceReferences))]));
    for (const holder of holders.rows) keys.licences.add(holder.id);
  }
  // With each licence, the recipients of its allocations (by allocations_licence): readers
  // of its events beside its parties (ledger/state.ts LicenceWithParties).
  const licences = await select<LicenceRow & { parties: LicencePartyRow[]; allocation_recipients: string[] }>(
    `SELECT l.*, coalesce((SELECT json_agg(json_build_object('licence_id', p.licence_id, 'org_id', p.org_id, 'role', p.role))
                           FROM licence_parties p WHERE p.licence_id = l.id), '[]'::json) AS parties,
            coalesce((SELECT json_agg(DISTINCT a.recipient_org_id) FROM allocations a WHERE a.licence_id = l.id), '[]'::json) AS allocation_recipients
     FROM licences l WHERE l.id = ANY($1)`,
    keys.licences,
  );
  // One client runs one query at a time: these go in sequence. A token's organisation
  // comes with it: revoking a token is checked against that organisation's jurisdiction.
  // The \x before the hex written as an escape string (E''), which reads the same whatever
  // the session's standard_conforming_strings: a plain '\x' reads as 'x' with it off.
  const tokens = await select<TokenRow>(`SELECT id, org_id, role, label, E'\\\\x' || encode(secret_hash, 'hex') AS secret_hash, created_at, revoked_at FROM tokens WHERE id = ANY($1)`, keys.tokens);
  for (const token of tokens) keys.organisations.add(token.org_id);
  const organisations = await select<OrganisationRow>('SELECT * FROM organisations WHERE id = ANY($1)', keys.organisations);
  if (keys.organisationIdentifiers.size > 0) {
    const loadedIds = new Set(organisations.map((organisation) => organisation.id));
    const holders = await client.query<OrganisationRow>(prepared(organisationsByIdentifierSql, [JSON.stringify(identifierPairs(keys.organisationIdentifiers))]));
    for (const holder of holders.rows) {
      if (loadedIds.has(holder.id)) continue;
      loadedIds.add(holder.id);
      organisations.push(holder);
    }
  }
  const products = await select<ProductRow>('SELECT * FROM products WHERE id = ANY($1)', keys.products);
  // By model through products_model_key's hash index (migration 036); a product named both
  // ways comes once.
  const byId = new Set(products.map((product) => product.id));
  for (const product of await select<ProductRow>('SELECT * FROM products WHERE model = ANY($1)', keys.productModels)) {
    if (!byId.has(product.id)) products.push(product);
  }
  // Live manifest rows of 100,000 serials by a join to unnest: it hashes only the live rows
  // (those of shipments under way; a partial index holds them), 106 ms with none and 371 ms
  // with 1,000,000; = ANY takes 180–230 ms at either. Live rows are bounded by the units in
  // transit, and at the seed's scale (400,000 in all) the join is the quicker.
  // Only a serial with a unit row can be in a manifest: a manifest row and its unit are
  // written together (ledger/state.ts, ManifestListing), units are never deleted, and the
  // full re-check holds it (ledger_violations). So a manifest of new serials, the common
  // case, skips this look-up (74–106 ms for 100,000). Were a unit row missing all the same,
  // the unique index on live serials would still refuse a second live listing.
  const unitSerials = textArrayParameter(units.map((unit) => unit.serial));
  const liveSerials = await select<ShipmentSerialRow>('SELECT s.* FROM shipment_serials s JOIN unnest($1::text[]) AS k(serial) ON s.serial = k.serial WHERE s.live', unitSerials);
  // A unit's current site comes with it: moving or retiring it changes that site's count.
  for (const unit of units) if (unit.site_id !== null) keys.sites.add(unit.site_id);
  const sites = await select<SiteRow>('SELECT * FROM sites WHERE id = ANY($1)', keys.sites);
  return { organisations, products, tokens, licences, allocations, sites, shipments, units, liveSerials };
}

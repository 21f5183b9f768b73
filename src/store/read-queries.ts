/**
 * The read path: what the API lists and shows, straight from the state tables (never a
 * replay of the log).
 *
 * Rules of this surface:
 * - Tenant filtering happens here, in the WHERE clause of every statement, never after
 *   the rows came back (the predicates: store/visibility.ts): a row another tenant may not
 *   see is never read into the process.
 *   A detail query for an invisible row answers null, exactly like an unknown id.
 * - Pages are keyset pages: rows in a fixed order by a unique key (created_seq for
 *   ledger rows, which is also the number in their id; seq for events; serial text for
 *   units and manifests), the next page starts after the last key. Ids such as 'S-123'
 *   are never compared as text. A page asks for one row more than it returns, to know
 *   whether another page follows.
 * - Every statement is bounded by its LIMIT; nothing here reads a whole table into memory.
 * - Reads run outside the ledger's write lock: they see the last committed batch, whole.
 */
import { assert } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { EventWrite } from './batch-writes.ts';
import { inTransaction, type Pool, type PoolClient } from './pool.ts';
import { Statement, readsEvent, shipsUnder, unitReaders, visible, type Viewer } from './visibility.ts';
import type {
  AllocationRow, Custody, LicencePartyRow, LicenceRow, LicenceVersionRow, OrganisationRow, ProductRow, Role, ShipmentRow, SiteRow, UnitRow,
} from '../ledger/rows.ts';

export type { Viewer } from './visibility.ts';

export interface PageRequest<K> {
  /** The last key of the previous page; null starts at the beginning. */
  after: K | null;
  limit: number;
}

export interface Page<T, K> {
  rows: T[];
  /** The key to continue after; null on the last page. */
  nextAfter: K | null;
}

/** Rows embedded in a detail view stop here; the list endpoints page through the rest. */
export const embeddedRowsMax = 500;

/** A unit as a viewer reads it: updated_seq is null where its site is hidden (unitAsSeenBy). */
export type UnitView = Omit<UnitRow, 'updated_seq'> & { updated_seq: number | null; demo: boolean };
export type SerialView = { serial: string; live: boolean; gpu_uuid: string | null; custody: Custody | null; site_id: string | null; demo: boolean };
/** An event as stored: the same columns the batch writes; org_ids as the viewer may know them (eventAsSeenBy). */
export type EventRow = EventWrite;
/**
 * How far a licence's totals reach for this viewer (licenceTotals): 'licence' for a viewer
 * that sees every allocation of the licence, 'own_allocations' for one that sees only the
 * allocations made to it (a recipient), whose totals are sums over those.
 */
export type TotalsScope = 'licence' | 'own_allocations';
/** A licence as a viewer reads it: allocated_units and shipped_units are as far as totals_scope reaches. */
export type LicenceView = LicenceRow & { totals_scope: TotalsScope };
export type LicenceDetail = LicenceView & { parties: LicencePartyRow[]; allocations: AllocationRow[]; allocations_truncated: boolean };
export type UtilisationLicence = Pick<LicenceRow, 'id' | 'reference' | 'direction' | 'status' | 'holder_org_id' | 'authority_org_id' | 'authorised_units' | 'allocated_units' | 'shipped_units' | 'demo' | 'created_seq'> & {
  reserved_units: number;
  totals_scope: TotalsScope;
  allocations: AllocationRow[];
  allocations_truncated: boolean;
};

/** A pool, or one connection inside a snapshot (readSnapshot) for reads that must agree. */
type Reader = Pool | PoolClient;

/**
 * Runs reads that must see one committed state (a licence's totals and its allocations) on
 * one connection in a REPEATABLE READ, READ ONLY transaction: a batch committing between two
 * statements on the pool would make the answer disagree with itself.
 */
function readSnapshot<T>(pool: Pool, read: (reader: Reader) => Promise<T>): Promise<T> {
  return inTransaction(pool, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', read);
}

async function keysetPage<T, K extends number | string>(
  pool: Reader, statement: Statement, sql: { from: string; where: string[]; key: string; select?: string }, page: PageRequest<K>, keyOf: (row: T) => K,
): Promise<Page<T, K>> {
  const where = [...sql.where];
  if (page.after !== null) where.push(`${sql.key} > ${statement.add(page.after)}`);
  const text = `SELECT ${sql.select ?? '*'} FROM ${sql.from} WHERE ${where.join(' AND ')} ORDER BY ${sql.key} LIMIT ${statement.add(page.limit + 1)}`;
  return pageOf((await pool.query(text, statement.params)).rows as T[], page.limit, keyOf);
}

/** A page from up to limit + 1 rows in key order: the extra row says there is more. */
function pageOf<T, K>(rows: T[], limit: number, keyOf: (row: T) => K): Page<T, K> {
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return { rows, nextAfter: more && last !== undefined ? keyOf(last) : null };
}

const bySeq = (row: { created_seq: number }): number => row.created_seq;

export function listOrganisations(pool: Pool, viewer: Viewer, page: PageRequest<number>): Promise<Page<OrganisationRow, number>> {
  const statement = new Statement();
  return keysetPage<OrganisationRow, number>(pool, statement, { from: 'organisations o', where: [visible.organisation(statement, viewer, 'o')], key: 'o.created_seq' }, page, bySeq);
}

export function listProducts(pool: Pool, page: PageRequest<number>): Promise<Page<ProductRow, number>> {
  // The catalogue is public to every token: products carry no tenant data.
  return keysetPage<ProductRow, number>(pool, new Statement(), { from: 'products p', where: ['true'], key: 'p.created_seq' }, page, bySeq);
}

/** A licence's columns but its totals, which licenceTotals() gives per viewer. */
const licenceTermColumns = [
  'id', 'version', 'reference', 'authority_org_id', 'direction', 'holder_org_id', 'product_ids', 'origin', 'destination', 'authorised_units',
  'value_minor', 'currency', 'valid_from', 'valid_to', 'conditions', 'riders', 'status', 'demo', 'created_seq', 'updated_seq',
] as const satisfies ReadonlyArray<keyof LicenceRow>;
// A column added to LicenceRow fails the type check here until it is listed above (or is a total).
const licenceColumnsListed: Exclude<keyof LicenceRow, (typeof licenceTermColumns)[number] | 'allocated_units' | 'shipped_units'> extends never ? true : never = true;
void licenceColumnsListed;

/**
 * A licence's totals as the viewer may know them, as SQL expressions over the licence
 * `alias`. Tenants get sums over the allocations of the licence they see
 * (visible.allocation): a recipient sees only its own, even on a licence it holds, and the
 * licence-wide figures would give away the other recipients' allocations and shipments by
 * subtraction. Where a tenant sees every allocation (an exporter on a licence it holds or
 * supplies) the sums are the licence-wide figures, which the database holds equal to the
 * licence's columns (invariants 1 and 2); authorities and auditors read those columns.
 * The scope follows from who the viewer is, never from the rows, so that it cannot tell a
 * recipient whether other allocations exist.
 */
function licenceTotals(statement: Statement, viewer: Viewer, alias: string, totals: readonly LicenceTotal[]): string {
  const columns = totals.map((total) => `${licenceTotal(statement, viewer, alias, total)} AS ${total}`);
  const scope = viewer.orgId === null ? `'licence'` : totalsScope(statement, { ...viewer, orgId: viewer.orgId }, alias);
  return [...columns, `${scope} AS totals_scope`].join(', ');
}

type LicenceTotal = 'allocated_units' | 'reserved_units' | 'shipped_units';
/** The allocations' column that each total sums. */
const summedColumn: Record<LicenceTotal, string> = { allocated_units: 'units', reserved_units: 'reserved_units', shipped_units: 'shipped_units' };

function licenceTotal(statement: Statement, viewer: Viewer, alias: string, total: LicenceTotal): string {
  // The licence keeps allocated and shipped units itself; reserved units are only on its allocations.
  if (viewer.orgId === null && total !== 'reserved_units') return `${alias}.${total}`;
  const where = [`ta.licence_id = ${alias}.id`];
  if (viewer.orgId !== null) where.push(visible.allocation(statement, viewer, 'ta'));
  return `coalesce((SELECT sum(ta.${summedColumn[total]}) FROM allocations ta WHERE ${where.join(' AND ')}), 0)`;
}

/** Whether a tenant sees every allocation of the licence: where visible.allocation shows a 'related' viewer all of them. */
function totalsScope(statement: Statement, viewer: Viewer & { orgId: string }, alias: string): string {
  if (viewer.allocations === 'received') return `'own_allocations'`;
  const org = statement.add(viewer.orgId);
  return `CASE WHEN ${shipsUnder(alias, org)} THEN 'licence' ELSE 'own_allocations' END`;
}

/** A licence's columns with its totals as the viewer may know them (licenceTotals). */
function licenceViewColumns(statement: Statement, viewer: Viewer, alias: string): string {
  return [...licenceTermColumns.map((column) => `${alias}.${column}`), licenceTotals(statement, viewer, alias, ['allocated_units', 'shipped_units'])].join(', ');
}

export function listLicences(pool: Pool, viewer: Viewer, page: PageRequest<number>, filter: { status?: string } = {}): Promise<Page<LicenceView, number>> {
  const statement = new Statement();
  const where = [visible.licence(statement, viewer, 'l')];
  if (filter.status !== undefined) where.push(`l.status = ${statement.add(filter.status)}`);
  return keysetPage<LicenceView, number>(pool, statement, { select: licenceViewColumns(statement, viewer, 'l'), from: 'licences l', where, key: 'l.created_seq' }, page, bySeq);
}

export function findLicence(pool: Pool, viewer: Viewer, licenceId: string): Promise<LicenceDetail | null> {
  return readSnapshot(pool, (reader) => findLicenceIn(reader, viewer, licenceId));
}

async function findLicenceIn(pool: Reader, viewer: Viewer, licenceId: string): Promise<LicenceDetail | null> {
  const statement = new Statement();
  const id = statement.add(licenceId);
  const result = await pool.query<LicenceView & { parties: LicencePartyRow[] }>(
    `SELECT ${licenceViewColumns(statement, viewer, 'l')},
            coalesce((SELECT json_agg(json_build_object('licence_id', p.licence_id, 'org_id', p.org_id, 'role', p.role) ORDER BY p.org_id, p.role)
                      FROM licence_parties p WHERE p.licence_id = l.id), '[]'::json) AS parties
     FROM licences l WHERE l.id = ${id} AND ${visible.licence(statement, viewer, 'l')}`,
    statement.params,
  );
  const licence = result.rows[0];
  if (!licence) return null;
  const allocations = await listAllocations(pool, viewer, { after: null, limit: embeddedRowsMax }, { licenceId });
  return { ...licence, allocations: allocations.rows, allocations_truncated: allocations.nextAfter !== null };
}

export async function listLicenceVersions(pool: Pool, viewer: Viewer, licenceId: string, page: PageRequest<number>): Promise<Page<LicenceVersionRow, number> | null> {
  if (!(await isVisible(pool, 'licence', viewer, licenceId))) return null;
  const statement = new Statement();
  return keysetPage(pool, statement, { from: 'licence_versions v', where: [`v.licence_id = ${statement.add(licenceId)}`], key: 'v.version' }, page, (row) => row.version);
}

export function listAllocations(pool: Reader, viewer: Viewer, page: PageRequest<number>, filter: { licenceId?: string } = {}): Promise<Page<AllocationRow, number>> {
  const statement = new Statement();
  const where = [visible.allocation(statement, viewer, 'a')];
  if (filter.licenceId !== undefined) where.push(`a.licence_id = ${statement.add(filter.licenceId)}`);
  return keysetPage<AllocationRow, number>(pool, statement, { from: 'allocations a', where, key: 'a.created_seq' }, page, bySeq);
}

export async function findAllocation(pool: Pool, viewer: Viewer, allocationId: string): Promise<AllocationRow | null> {
  const statement = new Statement();
  const id = statement.add(allocationId);
  const result = await pool.query<AllocationRow>(`SELECT a.* FROM allocations a WHERE a.id = ${id} AND ${visible.allocation(statement, viewer, 'a')}`, statement.params);
  return result.rows[0] ?? null;
}

export function listShipments(pool: Pool, viewer: Viewer, page: PageRequest<number>, filter: { status?: string } = {}): Promise<Page<ShipmentRow, number>> {
  const statement = new Statement();
  const where = [visible.shipment(statement, viewer, 's')];
  if (filter.status !== undefined) where.push(`s.status = ${statement.add(filter.status)}`);
  return keysetPage<ShipmentRow, number>(pool, statement, { from: 'shipments s', where, key: 's.created_seq' }, page, bySeq);
}

export async function findShipment(pool: Pool, viewer: Viewer, shipmentId: string): Promise<ShipmentRow | null> {
  const statement = new Statement();
  const id = statement.add(shipmentId);
  const result = await pool.query<ShipmentRow>(`SELECT s.* FROM shipments s WHERE s.id = ${id} AND ${visible.shipment(statement, viewer, 's')}`, statement.params);
  return result.rows[0] ?? null;
}

/**
 * A shipment's manifest with each unit's custody now, while the unit is still this
 * shipment's (null fields once it has moved on); null when the shipment is not visible.
 */
export async function listShipmentSerials(pool: Pool, viewer: Viewer, shipmentId: string, page: PageRequest<string>): Promise<Page<SerialView, string> | null> {
  const shipment = await findShipment(pool, viewer, shipmentId);
  if (!shipment) return null;
  const statement = new Statement();
  const demo = statement.add(shipment.demo);
  // Where the units run is the recipient's to see (as unitAsSeenBy), not the exporter's.
  const seesSites = statement.add(seesSitesOf(viewer, shipment.recipient_org_id));
  return keysetPage(pool, statement, {
    select: `ss.serial, ss.live, u.gpu_uuid, u.custody, CASE WHEN ${seesSites}::boolean THEN u.site_id END AS site_id, ${demo}::boolean AS demo`,
    // A unit's state shows only while it is still this shipment's: listed again after a
    // cancellation or a return, it may have gone to another recipient, whose custody, site
    // and GPU UUID are not this shipment's parties' to see.
    from: 'shipment_serials ss LEFT JOIN units u ON u.serial = ss.serial AND u.shipment_id = ss.shipment_id',
    where: [`ss.shipment_id = ${statement.add(shipmentId)}`],
    key: 'ss.serial',
  }, page, (row: SerialView) => row.serial);
}

/**
 * A page of units. A tenant's page is the first rows of two ordered streams, each with its
 * own cursor and limit: the units it receives (by the (recipient, serial) index), and the
 * units of shipments it exported, other than those (only when it exported any). With the
 * two as one OR (visible.unit), PostgreSQL walked the units in serial order testing each:
 * 103 ms for the first page of a recipient with 100 of 400,000 units, against 1 ms for a
 * recipient with a third of them (bench/experiments/tenant-pages.ts).
 */
export async function listUnits(pool: Pool, viewer: Viewer, page: PageRequest<string>, filter: { siteId?: string; custody?: string } = {}): Promise<Page<UnitView, string>> {
  const statement = new Statement();
  const after = page.after === null ? null : statement.add(page.after);
  const siteId = filter.siteId === undefined ? null : statement.add(filter.siteId);
  const custody = filter.custody === undefined ? null : statement.add(filter.custody);
  const limit = statement.add(page.limit + 1);
  const conditions = (alias: string): string[] => [
    ...(after === null ? [] : [`${alias}.serial > ${after}`]),
    ...(siteId === null ? [] : [`${alias}.site_id = ${siteId}`]),
    ...(custody === null ? [] : [`${alias}.custody = ${custody}`]),
  ];
  const stream = (alias: string, where: string[]) =>
    `(SELECT ${alias}.*, ${alias}s.demo FROM units ${alias} JOIN shipments ${alias}s ON ${alias}s.id = ${alias}.shipment_id
      WHERE ${[...where, ...conditions(alias)].join(' AND ')} ORDER BY ${alias}.serial LIMIT ${limit})`;
  let text: string;
  if (viewer.orgId === null) {
    text = stream('u', ['true']);
  } else {
    const org = statement.add(viewer.orgId);
    const received = stream('r', [unitReaders.received('r', org)]);
    const exported = stream('x', [
      // Uncorrelated, so evaluated once: an organisation that exported nothing skips this stream.
      `EXISTS (SELECT 1 FROM shipments e WHERE e.exporter_org_id = ${org})`,
      unitReaders.exported('x', org),
      `NOT ${unitReaders.received('x', org)}`,
    ]);
    // A site filter reads only units received: an exporter does not see where another's units run.
    text = siteId === null ? `SELECT * FROM (${received} UNION ALL ${exported}) u ORDER BY u.serial LIMIT ${limit}` : received;
  }
  const rows = (await pool.query<UnitView>(text, statement.params)).rows.map((row) => unitAsSeenBy(viewer, row));
  return pageOf(rows, page.limit, (row) => row.serial);
}

/**
 * A unit as its reader may see it: where it is deployed is its recipient's to know (sites
 * answer everyone else 404), so an exporter reads it without its site, and without the seq of
 * its last change: that is often a deployment, a move or a decommission, events its recipient
 * alone reads, and grouping units by it split them by site (one deployment is one site) and
 * showed each move between sites.
 */
function unitAsSeenBy(viewer: Viewer, row: UnitView): UnitView {
  return seesSitesOf(viewer, row.recipient_org_id) ? row : { ...row, site_id: null, updated_seq: null };
}

/** Whether the viewer sees where a recipient's units are deployed: the recipient itself, authorities and auditors. */
function seesSitesOf(viewer: Viewer, recipientOrgId: string): boolean {
  return viewer.orgId === null || viewer.orgId === recipientOrgId;
}

export async function findUnit(pool: Pool, viewer: Viewer, serial: string): Promise<UnitView | null> {
  const statement = new Statement();
  const key = statement.add(serial);
  const result = await pool.query<UnitView>(
    `SELECT u.*, s.demo FROM units u JOIN shipments s ON s.id = u.shipment_id WHERE u.serial = ${key} AND ${visible.unit(statement, viewer, 'u')}`,
    statement.params,
  );
  const row = result.rows[0];
  return row === undefined ? null : unitAsSeenBy(viewer, row);
}

export function listSites(pool: Pool, viewer: Viewer, page: PageRequest<number>): Promise<Page<SiteRow, number>> {
  const statement = new Statement();
  return keysetPage<SiteRow, number>(pool, statement, { from: 'sites st', where: [visible.site(statement, viewer, 'st')], key: 'st.created_seq' }, page, bySeq);
}

export async function findSite(pool: Pool, viewer: Viewer, siteId: string): Promise<SiteRow | null> {
  const statement = new Statement();
  const id = statement.add(siteId);
  const result = await pool.query<SiteRow>(`SELECT st.* FROM sites st WHERE st.id = ${id} AND ${visible.site(statement, viewer, 'st')}`, statement.params);
  return result.rows[0] ?? null;
}

export async function listEvents(pool: Pool, viewer: Viewer, page: PageRequest<number>, filter: { subjectId?: string } = {}): Promise<Page<EventRow, number>> {
  let events: Page<EventRow, number>;
  if (viewer.orgId !== null && filter.subjectId === undefined) {
    events = await eventsOfReader(pool, viewer.orgId, page);
  } else if (filter.subjectId !== undefined) {
    events = await eventsOfSubject(pool, viewer, filter.subjectId, page);
  } else {
    const statement = new Statement();
    events = await keysetPage(pool, statement, { from: 'events e', where: [visible.event(statement, viewer, 'e')], key: 'e.seq' }, page, (row: EventRow) => row.seq);
  }
  return { ...events, rows: events.rows.map((row) => eventAsSeenBy(viewer, row)) };
}

/**
 * A page of one record's history: the events whose subject it is (events_subject) and those
 * that list it among the further records they are about (event_subjects, migration 038: the
 * sites units left, each shipment of an ending across several), each an index read, then
 * joined to the events by seq and filtered by who reads them, as every event list is: a
 * record named in another tenant's event shows that tenant nothing. The ledger never lists a
 * record both ways (ledger/batch-apply.ts); UNION keeps a page free of repeats regardless.
 */
async function eventsOfSubject(pool: Pool, viewer: Viewer, subjectId: string, page: PageRequest<number>): Promise<Page<EventRow, number>> {
  const statement = new Statement();
  const subject = statement.add(subjectId);
  const after = page.after === null ? '' : ` AND seq > ${statement.add(page.after)}`;
  const text = `SELECT e.* FROM (
      SELECT seq FROM events WHERE subject_id = ${subject}${after}
      UNION SELECT seq FROM event_subjects WHERE subject_id = ${subject}${after}) history
    JOIN events e ON e.seq = history.seq
    WHERE ${visible.event(statement, viewer, 'e')}
    ORDER BY e.seq LIMIT ${statement.add(page.limit + 1)}`;
  return pageOf((await pool.query<EventRow>(text, statement.params)).rows, page.limit, (row) => row.seq);
}

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
  return pageOf((await pool.query<EventRow>(text, statement.params)).rows, page.limit, (row) => row.seq);
}

/** How much one page of the utilisation report embeds: allocations per licence, and over all its licences. */
export interface UtilisationBounds {
  licenceAllocationsMax: number;
  pageAllocationsMax: number;
}

const utilisationBounds: UtilisationBounds = { licenceAllocationsMax: embeddedRowsMax, pageAllocationsMax: limits.utilisationPageAllocationsMax };

/**
 * Utilisation per licence (a page of visible licences) with the allocations the viewer
 * sees on each, at most licenceAllocationsMax per licence (allocations_truncated says there
 * are more); the licence's totals are as far as the viewer may know them (licenceTotals).
 * The page ends early, with a cursor to the next licence, where one more licence would take
 * the allocations it embeds past pageAllocationsMax.
 */
export function utilisation(pool: Pool, viewer: Viewer, page: PageRequest<number>, bounds: UtilisationBounds = utilisationBounds): Promise<Page<UtilisationLicence, number>> {
  assert(bounds.pageAllocationsMax >= bounds.licenceAllocationsMax, 'a utilisation page holds at least one licence\'s allocations');
  return readSnapshot(pool, (reader) => utilisationIn(reader, viewer, page, bounds));
}

/**
 * Three reads in one snapshot: the page's licences (ids only), their allocations up to the
 * page's bound, then the totals of the licences that fit. The totals are the costly part (a
 * tenant's are sums over the allocations it sees), so they are summed only for the licences
 * the page answers, which may be far fewer than the page's size.
 */
async function utilisationIn(pool: Reader, viewer: Viewer, page: PageRequest<number>, bounds: UtilisationBounds): Promise<Page<UtilisationLicence, number>> {
  const keys = new Statement();
  const licences = await keysetPage<{ id: string; created_seq: number }, number>(pool, keys, {
    select: 'l.id, l.created_seq', from: 'licences l', where: [visible.licence(keys, viewer, 'l')], key: 'l.created_seq',
  }, page, bySeq);
  if (licences.rows.length === 0) return { rows: [], nextAfter: licences.nextAfter };
  const allocations = await embeddedAllocations(pool, viewer, licences.rows.map((licence) => licence.id), bounds);
  const answered = licences.rows.slice(0, allocations.size);
  const statement = new Statement();
  const totals = (await pool.query<Omit<UtilisationLicence, 'allocations' | 'allocations_truncated'>>(
    `SELECT l.id, l.reference, l.direction, l.status, l.holder_org_id, l.authority_org_id, l.authorised_units, l.demo, l.created_seq,
            ${licenceTotals(statement, viewer, 'l', ['allocated_units', 'reserved_units', 'shipped_units'])}
     FROM licences l WHERE l.id = ANY(${statement.add(answered.map((licence) => licence.id))}::text[]) AND ${visible.licence(statement, viewer, 'l')}
     ORDER BY l.created_seq`,
    statement.params,
  )).rows;
  assert(totals.length === answered.length, 'the licences of a utilisation page are read again in the same snapshot');
  const rows = totals.map((licence) => ({ ...licence, ...allocations.get(licence.id)! }));
  return { rows, nextAfter: answered.length < licences.rows.length ? answered[answered.length - 1]!.created_seq : licences.nextAfter };
}

type EmbeddedAllocations = Pick<UtilisationLicence, 'allocations' | 'allocations_truncated'>;

/**
 * The allocations a utilisation page embeds, for the first of these licences (in order) whose
 * embedded allocations, each at most licenceAllocationsMax, sum to at most
 * pageAllocationsMax: a map in licence order, as long as the licences that fit. One read,
 * licence by licence in order, each licence's first allocations and one more (to tell that
 * there are more), up to the page's bound and one row more per licence. When that LIMIT cuts
 * the rows, the last licence read may have more rows than were read and the licences after
 * it none, so the page ends before that licence; it would not have fitted anyway, as the
 * LIMIT leaves room for every licence that fits, with its extra row.
 */
async function embeddedAllocations(pool: Reader, viewer: Viewer, licenceIds: string[], bounds: UtilisationBounds): Promise<Map<string, EmbeddedAllocations>> {
  const statement = new Statement();
  const rowsMax = bounds.pageAllocationsMax + licenceIds.length + 1;
  const rows = (await pool.query<AllocationRow>(
    `SELECT a.* FROM unnest(${statement.add(licenceIds)}::text[]) WITH ORDINALITY AS k(licence_id, ordinal)
     CROSS JOIN LATERAL (
       SELECT a.* FROM allocations a WHERE a.licence_id = k.licence_id AND ${visible.allocation(statement, viewer, 'a')}
       ORDER BY a.created_seq LIMIT ${statement.add(bounds.licenceAllocationsMax + 1)}) a
     ORDER BY k.ordinal, a.created_seq LIMIT ${statement.add(rowsMax)}`,
    statement.params,
  )).rows;
  const byLicence = new Map<string, AllocationRow[]>();
  for (const allocation of rows) {
    const list = byLicence.get(allocation.licence_id) ?? [];
    list.push(allocation);
    byLicence.set(allocation.licence_id, list);
  }
  const readUpTo = rows.length === rowsMax ? rows[rows.length - 1]!.licence_id : null;
  const fitting = new Map<string, EmbeddedAllocations>();
  let embedded = 0;
  for (const licenceId of licenceIds) {
    if (licenceId === readUpTo) break;
    const fetched = byLicence.get(licenceId) ?? [];
    const truncated = fetched.length > bounds.licenceAllocationsMax;
    const kept = truncated ? fetched.slice(0, bounds.licenceAllocationsMax) : fetched;
    if (embedded + kept.length > bounds.pageAllocationsMax) break;
    embedded += kept.length;
    fitting.set(licenceId, { allocations: kept, allocations_truncated: truncated });
  }
  // The first licence always fits (pageAllocationsMax >= licenceAllocationsMax), and its rows
  // are fewer than the LIMIT: every page moves the cursor on.
  assert(fitting.size > 0, 'a utilisation page holds at least its first licence');
  return fitting;
}

type Visible = 'licence' | 'shipment' | 'allocation' | 'site';
const tableOf: Record<Visible, string> = { licence: 'licences', shipment: 'shipments', allocation: 'allocations', site: 'sites' };

export async function isVisible(pool: Pool, what: Visible, viewer: Viewer, id: string): Promise<boolean> {
  const statement = new Statement();
  const key = statement.add(id);
  const result = await pool.query(`SELECT 1 FROM ${tableOf[what]} t WHERE t.id = ${key} AND ${visible[what](statement, viewer, 't')}`, statement.params);
  return result.rows.length > 0;
}

export interface TokenCredential {
  id: string;
  org_id: string;
  role: Role;
  secret_hash: Buffer;
  revoked_at: string | null;
}

/** A token's stored hash and binding, for the API's bearer check. */
export async function findTokenCredential(pool: Pool, tokenId: string): Promise<TokenCredential | null> {
  const result = await pool.query<TokenCredential>('SELECT id, org_id, role, secret_hash, revoked_at FROM tokens WHERE id = $1', [tokenId]);
  return result.rows[0] ?? null;
}

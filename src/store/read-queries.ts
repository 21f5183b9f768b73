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
 *
 * This file is the read path's surface and holds the reads of the state tables; the events'
 * reads (event-queries.ts), the utilisation report (utilisation.ts), a licence's totals per
 * viewer (licence-totals.ts) and keyset paging (pages.ts) have files of their own.
 */
import { limits } from '../core/limits.ts';
import { licenceTotals, type TotalsScope } from './licence-totals.ts';
import { bySeq, keysetPage, pageOf, readSnapshot, type Page, type PageRequest, type Reader } from './pages.ts';
import type { Pool } from './pool.ts';
import { Statement, unitReaders, visible, type Viewer } from './visibility.ts';
import type {
  AllocationRow, Custody, LicencePartyRow, LicenceRow, LicenceVersionRow, OrganisationRow, ProductRow, Role, ShipmentRow, SiteRow, UnitRow,
} from '../ledger/rows.ts';
import { liveShipmentStatuses } from '../ledger/rows.ts';

export type { Viewer } from './visibility.ts';
export type { Page, PageRequest } from './pages.ts';
export { findEvent, listEvents, type EventRow } from './event-queries.ts';
export { utilisation, type UtilisationBounds, type UtilisationLicence } from './utilisation.ts';
export type { TotalsScope } from './licence-totals.ts';

/** A unit as a viewer reads it: updated_seq is null where its site is hidden (unitAsSeenBy). */
export type UnitView = Omit<UnitRow, 'updated_seq'> & { updated_seq: number | null; demo: boolean };
export type SerialView = { serial: string; live: boolean; gpu_uuid: string | null; custody: Custody | null; site_id: string | null; demo: boolean };
/** A licence as a viewer reads it: allocated_units and shipped_units are as far as totals_scope reaches. */
export type LicenceView = LicenceRow & { totals_scope: TotalsScope };
export type LicenceDetail = LicenceView & { parties: LicencePartyRow[]; allocations: AllocationRow[]; allocations_truncated: boolean };

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

/** A licence's columns with its totals as the viewer may know them (licenceTotals). */
function licenceViewColumns(statement: Statement, viewer: Viewer, alias: string): string {
  return [...licenceTermColumns.map((column) => `${alias}.${column}`), licenceTotals(statement, viewer, alias, ['allocated_units', 'shipped_units'])].join(', ');
}

/** What makes a licence row long, as served: its conditions and riders, as text. */
const licenceTermBytes = { expression: 'octet_length(q.conditions::text) + octet_length(q.riders::text)', keyColumn: 'created_seq' };

export function listLicences(pool: Pool, viewer: Viewer, page: PageRequest<number>, filter: { status?: string } = {}): Promise<Page<LicenceView, number>> {
  const statement = new Statement();
  const where = [visible.licence(statement, viewer, 'l')];
  if (filter.status !== undefined) where.push(`l.status = ${statement.add(filter.status)}`);
  // A licence's conditions and riders may be long (its list holds every term, as a version does):
  // pages are bounded by their bytes too (limits.pageBytesMax).
  return keysetPage<LicenceView, number>(pool, statement, { select: licenceViewColumns(statement, viewer, 'l'), from: 'licences l', where, key: 'l.created_seq', rowBytes: licenceTermBytes }, page, bySeq);
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
  const allocations = await listAllocations(pool, viewer, { after: null, limit: limits.embeddedRowsMax }, { licenceId });
  return { ...licence, allocations: allocations.rows, allocations_truncated: allocations.nextAfter !== null };
}

export async function listLicenceVersions(pool: Pool, viewer: Viewer, licenceId: string, page: PageRequest<number>): Promise<Page<LicenceVersionRow, number> | null> {
  if (!(await isVisible(pool, 'licence', viewer, licenceId))) return null;
  const statement = new Statement();
  // A version holds every term of its licence: pages of them are bounded by bytes too (limits.pageBytesMax),
  // by its snapshot as text (terms compress well where they are stored, not where they are served).
  return keysetPage(pool, statement, { from: 'licence_versions v', where: [`v.licence_id = ${statement.add(licenceId)}`], key: 'v.version', rowBytes: { expression: 'octet_length(q.snapshot::text)', keyColumn: 'version' } }, page, (row) => row.version);
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
 * The manifest is the shipment's units and the lines of those that moved on (migration 075),
 * each in serial order by its own index (units_shipment, the lines' primary key), merged.
 */
export async function listShipmentSerials(pool: Pool, viewer: Viewer, shipmentId: string, page: PageRequest<string>): Promise<Page<SerialView, string> | null> {
  const shipment = await findShipment(pool, viewer, shipmentId);
  if (!shipment) return null;
  const statement = new Statement();
  const id = statement.add(shipmentId);
  const demo = statement.add(shipment.demo);
  // Where the units run is the recipient's to see (as unitAsSeenBy), not the exporter's.
  const seesSites = statement.add(seesSitesOf(viewer, shipment.recipient_org_id));
  return keysetPage(pool, statement, {
    // Whether the shipment is under way is read in the page's own statement, with its rows: a
    // delivery committed since findShipment would otherwise show units delivered but live.
    select: `ss.serial, ss.here AND (SELECT s.status FROM shipments s WHERE s.id = ${id}) = ANY(${statement.add(liveShipmentStatuses)}::text[]) AS live, ss.gpu_uuid, ss.custody, CASE WHEN ${seesSites}::boolean THEN ss.site_id END AS site_id, ${demo}::boolean AS demo`,
    // A unit's state shows only while it is still this shipment's: listed again after a
    // cancellation or a return, it may have gone to another recipient, whose custody, site
    // and GPU UUID are not this shipment's parties' to see.
    from: `(SELECT u.shipment_id, u.serial, true AS here, u.gpu_uuid, u.custody, u.site_id FROM units u
            UNION ALL SELECT m.shipment_id, m.serial, false, NULL, NULL, NULL FROM moved_manifest_lines m) ss`,
    where: [`ss.shipment_id = ${id}`],
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
  // The site filter reads units_site, (site_id, serial) over the deployed units (044), in the
  // page's order. The custody filter has no index of its own: it filters the units the page
  // walks (all units, or the tenant's), so a custody few units are in reads many to fill a
  // page (35 ms at 224,000 units). An index on custody would be written for every unit a
  // manifest inserts (100,000 at a time) and at every custody change: costs on the write
  // path, which does not yet meet its goal. The end states alone have one (units_end_states,
  // 010).
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
  } else if (siteId !== null) {
    const org = statement.add(viewer.orgId);
    // A site filter reads only units received: an exporter does not see where another's units
    // run. And only at a site of the tenant's own: a unit is deployed only at a site of its
    // recipient (020's trigger), so another's site holds none of its units and is answered
    // empty at once (an uncorrelated EXISTS, a one-time filter), not by walking that site's
    // units, or the tenant's, for none (40 ms at 224,000 units).
    text = stream('r', [`EXISTS (SELECT 1 FROM sites os WHERE os.id = ${siteId} AND os.org_id = ${org})`, unitReaders.received('r', org)]);
  } else {
    const org = statement.add(viewer.orgId);
    const received = stream('r', [unitReaders.received('r', org)]);
    const exported = stream('x', [
      // Uncorrelated, so evaluated once: an organisation that exported nothing skips this stream.
      `EXISTS (SELECT 1 FROM shipments e WHERE e.exporter_org_id = ${org})`,
      unitReaders.exported('x', org),
      `NOT ${unitReaders.received('x', org)}`,
    ]);
    text = `SELECT * FROM (${received} UNION ALL ${exported}) u ORDER BY u.serial LIMIT ${limit}`;
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

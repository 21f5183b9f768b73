/**
 * The utilisation report: a page of the licences a viewer sees, each with its totals as far as
 * the viewer may know them and the allocations it sees, bounded per licence and per page.
 */
import { assert } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { bySeq, keysetPage, readSnapshot, type Page, type PageRequest, type Reader } from './pages.ts';
import type { Pool } from './pool.ts';
import { licenceTotals, type TotalsScope } from './licence-totals.ts';
import { Statement, visible, type Viewer } from './visibility.ts';
import type { AllocationRow, LicenceRow } from '../ledger/rows.ts';

export type UtilisationLicence = Pick<LicenceRow, 'id' | 'reference' | 'direction' | 'status' | 'holder_org_id' | 'authority_org_id' | 'authorised_units' | 'allocated_units' | 'shipped_units' | 'demo' | 'created_seq'> & {
  reserved_units: number;
  totals_scope: TotalsScope;
  allocations: AllocationRow[];
  allocations_truncated: boolean;
};

/** How much one page of the utilisation report embeds: allocations per licence, and over all its licences. */
export interface UtilisationBounds {
  licenceAllocationsMax: number;
  pageAllocationsMax: number;
}

const utilisationBounds: UtilisationBounds = { licenceAllocationsMax: limits.embeddedRowsMax, pageAllocationsMax: limits.utilisationPageAllocationsMax };

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

/**
 * A licence's totals (allocated, reserved, shipped units) as SQL expressions, as far as a
 * viewer may know them: shared by the licence reads (store/read-queries.ts) and the
 * utilisation report (store/utilisation.ts).
 */
import { Statement, shipsUnder, visible, type Viewer } from './visibility.ts';

/**
 * How far a licence's totals reach for this viewer (licenceTotals): 'licence' for a viewer
 * that sees every allocation of the licence, 'own_allocations' for one that sees only the
 * allocations made to it (a recipient), whose totals are sums over those.
 */
export type TotalsScope = 'licence' | 'own_allocations';

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
export function licenceTotals(statement: Statement, viewer: Viewer, alias: string, totals: readonly LicenceTotal[]): string {
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

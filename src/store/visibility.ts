/**
 * Who may read which row: one SQL predicate per table, for the read path to put in the
 * WHERE clause of every statement (store/read-queries.ts), so that a row another tenant may
 * not see is never read into the process. The rules are the same as the readers each
 * event names (ledger/handlers: allocationOrgIds and the like); the route-by-route tenant
 * tests (server/matrix.test.ts) hold the two together.
 */

/** Who is reading. */
export interface Viewer {
  /** The reader's organisation; null reads every row (authorities and auditors). */
  orgId: string | null;
  /**
   * Which allocations a tenant sees: 'received' only those made to it (recipients: never
   * another recipient's, even on a licence it holds); 'related' also those under which it
   * ships (exporters: the export licences it holds, the import licences naming it as
   * supplier), as the allocation's events name their readers (allocationOrgIds).
   */
  allocations: 'received' | 'related';
}

/** Numbered parameters for one statement. */
export class Statement {
  readonly params: unknown[] = [];
  add(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
}

/**
 * Who sees a unit: the organisation that receives it, and the exporter of its shipment.
 * visible.unit joins the two with OR; listUnits reads them as two streams.
 */
export const unitReaders = {
  received: (alias: string, org: string): string => `${alias}.recipient_org_id = ${org}`,
  exported: (alias: string, org: string): string => `EXISTS (SELECT 1 FROM shipments vs WHERE vs.id = ${alias}.shipment_id AND vs.exporter_org_id = ${org})`,
};

/**
 * Whether the organisation ships under the licence: it holds it and it is an export licence,
 * or it is an import licence naming it as supplier. The SQL twin of allocationOrgIds
 * (ledger/handlers/allocations.ts): who reads an allocation's events reads the allocation.
 */
export function shipsUnder(licence: string, org: string): string {
  return `(${licence}.direction = 'export' AND ${licence}.holder_org_id = ${org}
    OR ${licence}.direction = 'import' AND EXISTS (SELECT 1 FROM licence_parties sp WHERE sp.licence_id = ${licence}.id AND sp.org_id = ${org} AND sp.role = 'supplier'))`;
}

// Visibility predicates, one per table. Each takes the statement (to add the org id as a
// parameter) and the alias of the table in the query.
export const visible = {
  licence(statement: Statement, viewer: Viewer, alias: string): string {
    if (viewer.orgId === null) return 'true';
    const org = statement.add(viewer.orgId);
    // A recipient keeps seeing a licence it has an allocation on after an amendment drops it
    // from the parties: its own allocation, and its report, still point there.
    return `(${alias}.holder_org_id = ${org} OR EXISTS (SELECT 1 FROM licence_parties vp WHERE vp.licence_id = ${alias}.id AND vp.org_id = ${org})
      OR EXISTS (SELECT 1 FROM allocations va WHERE va.licence_id = ${alias}.id AND va.recipient_org_id = ${org}))`;
  },
  allocation(statement: Statement, viewer: Viewer, alias: string): string {
    if (viewer.orgId === null) return 'true';
    const org = statement.add(viewer.orgId);
    if (viewer.allocations === 'received') return `${alias}.recipient_org_id = ${org}`;
    return `(${alias}.recipient_org_id = ${org} OR EXISTS (SELECT 1 FROM licences vl WHERE vl.id = ${alias}.licence_id AND ${shipsUnder('vl', org)}))`;
  },
  shipment(statement: Statement, viewer: Viewer, alias: string): string {
    if (viewer.orgId === null) return 'true';
    const org = statement.add(viewer.orgId);
    return `(${alias}.exporter_org_id = ${org} OR ${alias}.recipient_org_id = ${org})`;
  },
  unit(statement: Statement, viewer: Viewer, alias: string): string {
    if (viewer.orgId === null) return 'true';
    const org = statement.add(viewer.orgId);
    return `(${unitReaders.received(alias, org)} OR ${unitReaders.exported(alias, org)})`;
  },
  site(statement: Statement, viewer: Viewer, alias: string): string {
    if (viewer.orgId === null) return 'true';
    return `${alias}.org_id = ${statement.add(viewer.orgId)}`;
  },
  /**
   * One event at a time (a subject's few events): its seq must be among the offsets of the
   * one reader set of the viewer's organisation that can hold it, the first to end at or
   * after it (an organisation's sets never overlap; migration 012). LIMIT 1 keeps that a
   * single index probe. The offset is compared as bigint: that set may start far beyond
   * the event, and a cast to int2 would then fail instead of answering no. A page of a
   * tenant's whole stream starts from its sets instead (eventsOfReader).
   */
  event(statement: Statement, viewer: Viewer, alias: string): string {
    if (viewer.orgId === null) return 'true';
    return `EXISTS (SELECT 1 FROM (
      SELECT r.first_seq, r.offsets FROM event_reader_sets r
      WHERE r.org_id = ${statement.add(viewer.orgId)} AND r.last_seq >= ${alias}.seq ORDER BY r.last_seq LIMIT 1) r
      WHERE r.first_seq <= ${alias}.seq AND ${alias}.seq - r.first_seq = ANY (r.offsets))`;
  },
  /**
   * Its own organisation, and every one that a row it reads names, so that each can be looked
   * up: the holder, authority and parties of the licences visible.licence shows it (a recipient
   * an amendment dropped from the parties included), and the recipients of the allocations
   * visible.allocation shows it (an exporter reads those on the licences it ships under, also
   * one whose recipient an amendment dropped from the parties). A 'received' viewer's
   * allocations name only itself. Shipments and units name no one else: a shipment's exporter
   * holds the export licence its export allocation is on, and its recipient (the units' too)
   * is that allocation's recipient (ledger/handlers/shipments.ts), and a holder never changes.
   */
  organisation(statement: Statement, viewer: Viewer, alias: string): string {
    if (viewer.orgId === null) return 'true';
    const org = statement.add(viewer.orgId);
    const licences = `SELECT ol.id, ol.holder_org_id, ol.authority_org_id FROM licences ol
      WHERE ol.holder_org_id = ${org} OR EXISTS (SELECT 1 FROM licence_parties op WHERE op.licence_id = ol.id AND op.org_id = ${org})
        OR EXISTS (SELECT 1 FROM allocations oa WHERE oa.licence_id = ol.id AND oa.recipient_org_id = ${org})`;
    const named = `SELECT vl.holder_org_id FROM (${licences}) vl
      UNION SELECT vl.authority_org_id FROM (${licences}) vl
      UNION SELECT vp.org_id FROM licence_parties vp WHERE vp.licence_id IN (SELECT vl.id FROM (${licences}) vl)`;
    if (viewer.allocations === 'received') return `(${alias}.id = ${org} OR ${alias}.id IN (${named}))`;
    // visible.allocation's 'related' rule, driven from the licences rather than tested on each
    // allocation (the viewer's own allocations add only itself). Kept out of the UNION above,
    // which would sort every allocation the viewer reads to find their few recipients: 2 to 4
    // times slower at 200,000 allocations than the hashed IN.
    const recipients = `SELECT va.recipient_org_id FROM licences sl JOIN allocations va ON va.licence_id = sl.id WHERE ${shipsUnder('sl', org)}`;
    return `(${alias}.id = ${org} OR ${alias}.id IN (${named}) OR ${alias}.id IN (${recipients}))`;
  },
};

/**
 * Whether the viewer whose organisation is parameter `org` (NULL: one who reads every event)
 * reads one event, by events.org_ids: for one event at a time, by its primary key.
 */
export function readsEvent(alias: string, org: string): string {
  return `(${org}::text IS NULL OR ${org}::text = ANY (${alias}.org_ids))`;
}

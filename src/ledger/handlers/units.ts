/**
 * Sites and the units deployed at them (invariant 4: a unit is deployed at most at one
 * site, held by the single site column of its row).
 */
import { assert, DomainError } from '../../core/errors.ts';
import { unitNotFoundMessage } from '../../core/serial.ts';
import { newId, refuse, formatUnits, type CommandContext, type EventPart, type Handler } from '../handler.ts';
import type { Custody, SiteRow, UnitRow } from '../rows.ts';
import type { BatchKeys } from '../../store/batch-keys.ts';

export const siteRegister: Handler<'site.register'> = {
  kind: 'site.register',
  keys(_input, keys, actor) {
    keys.organisations.add(actor.orgId);
  },
  run(context, input) {
    const id = newId('SITE', context);
    const organisation = context.state.get('organisations', context.actor.orgId);
    assert(organisation !== undefined, `organisation ${context.actor.orgId} registers a site but the batch did not load it (keys name it)`);
    context.state.put('sites', {
      id,
      org_id: context.actor.orgId,
      name: input.name,
      province: input.province,
      city: input.city,
      // Absent, the organisation's own: what every site was before sites had a country (072).
      country: input.country ?? organisation.country,
      latitude: input.latitude,
      longitude: input.longitude,
      capacity_units: input.capacityUnits,
      deployed_units: 0,
      demo: input.demo,
      created_seq: context.seq,
    });
    return { subjectId: id, orgIds: [context.actor.orgId], effects: { siteId: id }, answer: { siteId: id } };
  },
};

function serialKeys(input: { serials: string[]; siteId?: string }, keys: BatchKeys): void {
  keys.serials.addAll(input.serials);
  if (input.siteId) keys.sites.add(input.siteId);
}

/** Units named by serial must exist and belong to the actor (or be visible to it). */
function ownUnits(context: CommandContext, serials: string[], mayAct: (unit: UnitRow) => boolean): UnitRow[] {
  const seen = new Set<string>();
  return serials.map((serial, index) => {
    if (seen.has(serial)) throw refuse.conflict('invariant-4', `serial ${serial} is listed twice (entry ${index + 1})`, { serial });
    seen.add(serial);
    const unit = context.state.get('units', serial);
    // Named the capitals where the serial has a lower-case letter: new serials are written in
    // capitals, and a unit made in lower case before is still found by its own spelling.
    if (!unit || !mayAct(unit)) throw new DomainError('not_found', unitNotFoundMessage(serial), { details: { unit: serial } });
    return unit;
  });
}

/**
 * How many of the units each key holds ({ 'S-81': 3 }, { 'SITE-41': 2 }); units whose key is
 * null are not counted. An event's effects name the shipments and sites a change touched this
 * way, so that a record's history shows the units that left it.
 */
function countBy(units: UnitRow[], keyOf: (unit: UnitRow) => string | null): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const unit of units) {
    const key = keyOf(unit);
    if (key !== null) counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** The one key of a count, or null when there are none or several: the subject of an event about them. */
function onlyKey(counts: Record<string, number>): string | null {
  const keys = Object.keys(counts);
  return keys.length === 1 ? keys[0]! : null;
}

/**
 * Every key of the counts but the event's subject, each once: the further records the event
 * is about (EventPart.moreSubjectIds). The subject is one record; an event about several
 * (units that left two sites, an ending across two shipments) is listed in each one's history
 * through these, where the subject alone (null, or the destination of a move) left them out.
 */
function moreSubjects(subjectId: string | null, ...counts: Array<Record<string, number>>): { moreSubjectIds?: string[] } {
  const ids = new Set(counts.flatMap((count) => Object.keys(count)));
  if (subjectId !== null) ids.delete(subjectId);
  return ids.size === 0 ? {} : { moreSubjectIds: [...ids] };
}

/** Keeps each site's deployed count in step as units arrive or leave. */
function adjustSite(context: CommandContext, siteId: string, delta: number): SiteRow {
  const site = context.state.get('sites', siteId)!;
  return context.state.update('sites', site, { deployed_units: site.deployed_units + delta });
}

/** The rule of a deployment at a site outside the country the unit was imported into. */
export const deploymentDestinationRule = 'deployment-destination';

/**
 * A unit runs only in the country its shipment was imported into, under the import licence
 * that covered it (the shipment's destination, which the licence names: invariant 3). A site
 * abroad, a Chinese company's data centre in another country say, would take it out of that
 * licence: a re-export, which needs a licence of its own, not a deployment report.
 */
function checkDestination(context: CommandContext, unit: UnitRow, site: SiteRow): void {
  const shipment = context.state.shipmentOfUnit(unit);
  if (shipment.destination === site.country) return;
  throw refuse.licence(deploymentDestinationRule, `unit ${unit.serial} was imported into ${shipment.destination} (shipment ${shipment.id}); site ${site.id} is in ${site.country}: a unit is deployed only in the country it was imported into (taking it abroad is a re-export, which needs a licence of its own)`, {
    serial: unit.serial, shipmentId: shipment.id, destination: shipment.destination, siteId: site.id, siteCountry: site.country,
  });
}

export const unitsDeploy: Handler<'units.deploy'> = {
  kind: 'units.deploy',
  keys(input, keys) {
    serialKeys(input, keys);
  },
  run(context, input) {
    const { state, actor } = context;
    const site = state.get('sites', input.siteId);
    if (!site || site.org_id !== actor.orgId) throw refuse.notFound('site', input.siteId);
    const units = ownUnits(context, input.serials, (unit) => unit.recipient_org_id === actor.orgId);
    let arriving = 0;
    for (const unit of units) {
      if (unit.site_id === site.id) throw refuse.conflict('unit-custody', `unit ${unit.serial} is already deployed at site ${site.id}`, { serial: unit.serial });
      if (unit.custody !== 'delivered' && unit.custody !== 'deployed') {
        throw refuse.conflict('unit-custody', `unit ${unit.serial} is ${unit.custody}; only delivered or deployed units can be deployed`, { serial: unit.serial, custody: unit.custody });
      }
      checkDestination(context, unit, site);
      arriving += 1;
    }
    if (site.deployed_units + arriving > site.capacity_units) {
      throw refuse.units('site-capacity', `site ${site.id} has room for ${formatUnits(site.capacity_units - site.deployed_units)} more unit${site.capacity_units - site.deployed_units === 1 ? '' : 's'}; ${formatUnits(arriving)} reported`, { siteId: site.id, roomUnits: site.capacity_units - site.deployed_units, requestedUnits: arriving });
    }
    // The sites units left, as the rows were before this command moved them: the event names
    // them, so each site's history shows its count going down (read by the recipient only).
    const movedFrom = countBy(units, (unit) => unit.site_id);
    for (const unit of units) {
      if (unit.site_id !== null) adjustSite(context, unit.site_id, -1);
      state.update('units', unit, { custody: 'deployed', site_id: site.id, updated_seq: context.seq });
    }
    adjustSite(context, site.id, arriving);
    const moved = Object.values(movedFrom).reduce((sum, count) => sum + count, 0);
    return {
      subjectId: site.id,
      // The sites units left: each one's history shows its count going down.
      ...moreSubjects(site.id, movedFrom),
      orgIds: [actor.orgId],
      effects: { deployed: units.length, moved, movedFrom },
      answer: { siteId: site.id, deployed: units.length, moved },
    };
  },
};

/**
 * The exporter of the units' shipments, for an ending it reads: one only. Every reader of an
 * event may fetch its serial list (GET /v1/events/<seq>/serials), so an event read by two
 * exporters would give each the other's serials; a recipient reports each exporter's units
 * apart (it knows whose shipments they came in).
 */
function soleExporter(context: CommandContext, units: UnitRow[], to: Custody): string {
  const byExporter = new Map<string, UnitRow>();
  for (const unit of units) {
    const shipment = context.state.shipmentOfUnit(unit);
    if (!byExporter.has(shipment.exporter_org_id)) byExporter.set(shipment.exporter_org_id, unit);
  }
  if (byExporter.size > 1) {
    const named = [...byExporter].map(([exporter, unit]) => `serial ${unit.serial} came in shipment ${unit.shipment_id} from ${exporter}`);
    throw refuse.conflict('unit-exporter', `couldn't report units ${to}: they came from ${byExporter.size} exporters (${named.join('; ')}); each exporter reads the report of its own units, so report each exporter's units apart`, { exporters: [...byExporter.keys()] });
  }
  return [...byExporter.keys()][0]!;
}

/**
 * A unit leaves use: decommissioned, reported lost or returned. The event's subject is the
 * units' shipment when they share one (so the shipment's history shows them), and its effects
 * count them by shipment (`shipments`) and by the site each left (`fromSites`, {} when none
 * was deployed). Where it is deployed is the recipient's to know, not the exporter's (read
 * model: store/read-queries.ts unitAsSeenBy), so an ending the exporter also reads (a return,
 * a loss: units it may list again, or must account for) is two events: the first, read by
 * the recipient and the exporter, without sites; a second, read by the recipient only, with
 * them and without the input (its serial list is the first event's), whose subject is the
 * site when all left one (only when some unit was at a site). Each event names the records
 * its subject leaves out as further subjects (moreSubjects), so that it is in the history of
 * every shipment it counts and of every site it counts.
 */
function ending<K extends 'units.decommission' | 'units.report_lost' | 'units.return'>(kind: K, to: Custody, from: readonly Custody[], exporterReads: boolean): Handler<K> {
  return {
    kind,
    keys(input, keys) {
      serialKeys(input, keys);
    },
    run(context, input) {
      const { actor } = context;
      const units = ownUnits(context, input.serials, (unit) => unit.recipient_org_id === actor.orgId);
      for (const unit of units) {
        if (!from.includes(unit.custody)) {
          throw refuse.conflict('unit-custody', `unit ${unit.serial} is ${unit.custody}; only ${from.length === 1 ? from[0] : `${from.slice(0, -1).join(', ')} or ${from.at(-1)}`} units can be ${to}`, { serial: unit.serial, custody: unit.custody });
        }
      }
      const exporter = exporterReads ? soleExporter(context, units, to) : null;
      // As the rows were before this command: the shipments the units came in, the sites they left.
      const shipments = countBy(units, (unit) => unit.shipment_id);
      const fromSites = countBy(units, (unit) => unit.site_id);
      for (const unit of units) {
        if (unit.site_id !== null) adjustSite(context, unit.site_id, -1);
        context.state.update('units', unit, { custody: to, site_id: null, updated_seq: context.seq });
      }
      const answer = { count: units.length, custody: to };
      const subjectId = onlyKey(shipments);
      // ownUnits took only the actor's units: they have one recipient, the actor. Its one
      // event is in the history of every shipment and every site the units left.
      if (exporter === null) return { subjectId, ...moreSubjects(subjectId, shipments, fromSites), orgIds: [actor.orgId], effects: { count: units.length, shipments, fromSites }, answer };
      // The serial list is the first event's (the recipient reads it too): not stored twice.
      // The sites are the second event's only: the exporter reads the first, and a site's
      // history must not list it, or the exporter would learn where its units ran by asking
      // for a site's history (read-queries.ts listEvents filters by reader, not by record).
      const sitesSubject = onlyKey(fromSites);
      const sites: EventPart[] = Object.keys(fromSites).length === 0 ? [] : [{ subjectId: sitesSubject, ...moreSubjects(sitesSubject, fromSites), orgIds: [actor.orgId], effects: { fromSites }, withoutInput: true }];
      return { subjectId, ...moreSubjects(subjectId, shipments), orgIds: [...new Set([actor.orgId, exporter])], effects: { count: units.length, shipments }, answer, moreEvents: sites };
    },
  };
}

/** Decommissioning is the recipient's own record: read by the recipient only. */
export const unitsDecommission = ending('units.decommission', 'decommissioned', ['delivered', 'deployed'], false);
/** A unit lost, in transit or after, is one its exporter answers for: the exporter reads the report. */
export const unitsReportLost = ending('units.report_lost', 'lost', ['in_transit', 'delivered', 'deployed'], true);
/** Returned units go back to the exporter's side: they may be listed in a new shipment, and the exporter reads the report. */
export const unitsReturn = ending('units.return', 'returned', ['delivered', 'deployed'], true);

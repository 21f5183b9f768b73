/**
 * Sites and the units deployed at them (invariant 4: a unit is deployed at most at one
 * site, held by the single site column of its row).
 */
import { newId, refuse, formatUnits, type CommandContext, type Handler } from '../handler.ts';
import type { Custody, SiteRow, UnitRow } from '../rows.ts';
import type { BatchKeys } from '../../store/ledger-tables.ts';

export const siteRegister: Handler<'site.register'> = {
  kind: 'site.register',
  keys(_input, keys, actor) {
    keys.organisations.add(actor.orgId);
  },
  run(context, input) {
    const id = newId('SITE', context);
    context.state.put('sites', {
      id,
      org_id: context.actor.orgId,
      name: input.name,
      province: input.province,
      city: input.city,
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
  for (const serial of input.serials) keys.serials.add(serial);
  if (input.siteId) keys.sites.add(input.siteId);
}

/** Units named by serial must exist and belong to the actor (or be visible to it). */
function ownUnits(context: CommandContext, serials: string[], mayAct: (unit: UnitRow) => boolean): UnitRow[] {
  const seen = new Set<string>();
  return serials.map((serial, index) => {
    if (seen.has(serial)) throw refuse.conflict('invariant-4', `serial ${serial} is listed twice (entry ${index + 1})`, { serial });
    seen.add(serial);
    const unit = context.state.get('units', serial);
    if (!unit || !mayAct(unit)) throw refuse.notFound('unit', serial);
    return unit;
  });
}

/** Keeps each site's deployed count in step as units arrive or leave. */
function adjustSite(context: CommandContext, siteId: string, delta: number): SiteRow {
  const site = context.state.get('sites', siteId)!;
  return context.state.update('sites', site, { deployed_units: site.deployed_units + delta });
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
      arriving += 1;
    }
    if (site.deployed_units + arriving > site.capacity_units) {
      throw refuse.units('site-capacity', `site ${site.id} has room for ${formatUnits(site.capacity_units - site.deployed_units)} more units; ${formatUnits(arriving)} reported`, { siteId: site.id, roomUnits: site.capacity_units - site.deployed_units, requestedUnits: arriving });
    }
    const moved: string[] = [];
    for (const unit of units) {
      if (unit.site_id !== null) {
        adjustSite(context, unit.site_id, -1);
        moved.push(unit.serial);
      }
      state.update('units', unit, { custody: 'deployed', site_id: site.id, updated_seq: context.seq });
    }
    adjustSite(context, site.id, arriving);
    return {
      subjectId: site.id,
      orgIds: [actor.orgId],
      effects: { deployed: units.length, moved: moved.length },
      answer: { siteId: site.id, deployed: units.length, moved: moved.length },
    };
  },
};

function ending<K extends 'units.decommission' | 'units.report_lost' | 'units.return'>(kind: K, to: Custody, from: readonly Custody[]): Handler<K> {
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
          throw refuse.conflict('unit-custody', `unit ${unit.serial} is ${unit.custody}; only ${from.join(', ')} units can be ${to}`, { serial: unit.serial, custody: unit.custody });
        }
      }
      for (const unit of units) {
        if (unit.site_id !== null) adjustSite(context, unit.site_id, -1);
        context.state.update('units', unit, { custody: to, site_id: null, updated_seq: context.seq });
      }
      const orgIds = [...new Set(units.map((unit) => unit.recipient_org_id))];
      return { subjectId: null, orgIds, effects: { count: units.length }, answer: { count: units.length, custody: to } };
    },
  };
}

export const unitsDecommission = ending('units.decommission', 'decommissioned', ['delivered', 'deployed']);
export const unitsReportLost = ending('units.report_lost', 'lost', ['in_transit', 'delivered', 'deployed']);
/** Returned units go back to the exporter's side: they may be listed in a new shipment. */
export const unitsReturn = ending('units.return', 'returned', ['delivered', 'deployed']);

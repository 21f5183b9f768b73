/**
 * The timed sweep: booked shipments past their deadline expire (their reservation is
 * released) and licences past their validity expire. Servers submit it every few
 * seconds; it is an ordinary command, so it is logged and ordered like any other, and
 * a sweep that finds nothing due is refused, writing nothing.
 */
import { refuse, type Handler } from '../handler.ts';

/** The rule of a sweep that found nothing to expire (and so wrote nothing). */
export const nothingDueRule = 'sweep-nothing-due';
import { expireLicence, licenceOrgIds } from './licences.ts';
import { applyStep, expireStep } from './shipments.ts';

export const ledgerSweep: Handler<'ledger.sweep'> = {
  kind: 'ledger.sweep',
  keys(_input, keys) {
    keys.dueAt = new Date().toISOString(); // replaced by the batch time in the sequencer
  },
  run(context) {
    const { state, at } = context;
    const expiredShipments: string[] = [];
    const expiredLicences: string[] = [];
    const orgIds = new Set<string>();
    for (const shipment of [...state.all('shipments')]) {
      if (shipment.status !== 'booked' || shipment.deadline > at) continue;
      applyStep(context, shipment, expireStep);
      expiredShipments.push(shipment.id);
      orgIds.add(shipment.exporter_org_id).add(shipment.recipient_org_id);
    }
    for (const licence of [...state.all('licences')]) {
      if ((licence.status !== 'issued' && licence.status !== 'suspended') || licence.valid_to > at) continue;
      expireLicence(context, licence);
      expiredLicences.push(licence.id);
      for (const orgId of licenceOrgIds(licence)) orgIds.add(orgId);
    }
    // Nothing due is not a change: no event, so a sweep every few seconds leaves the log quiet.
    if (expiredShipments.length === 0 && expiredLicences.length === 0) throw refuse.conflict(nothingDueRule, 'nothing is due: no booking is past its deadline and no licence past its validity');
    return {
      subjectId: null,
      orgIds: [...orgIds],
      effects: { expiredShipments, expiredLicences },
      answer: { expiredShipments, expiredLicences },
    };
  },
};

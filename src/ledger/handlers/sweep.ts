/**
 * The timed sweep: booked shipments past their deadline expire (their reservation is
 * released), and so do booked shipments under a licence no longer in force (lapsedLicence);
 * licences past their validity expire. Servers submit it every few
 * seconds; it is an ordinary command, so it is logged and ordered like any other, and
 * a sweep that finds nothing due is refused, writing nothing.
 *
 * One sweep expires records of many tenants, so it writes one event per expired record,
 * each read only by that record's parties: a recipient must not learn from the log that
 * another recipient's booking expired. Only the caller (the system or an authority admin)
 * gets the whole lists, in the answer.
 *
 * An event's `at` is when the sweep ran, which may be long after the record fell due (the
 * servers down for a week, say); so each expiry records the instant that made it due as
 * dueAt: a booking's deadline, or the validTo of the licence whose validity ended it (of an
 * expired licence too: the calendar ended it). A booking that a revocation or a surrender
 * ended has none: that licence's own event dates it, and its reason names the licence.
 */
import { assert } from '../../core/errors.ts';
import { refuse, type CommandContext, type EventPart, type Handler } from '../handler.ts';
import type { LicenceStatus } from '../rows.ts';
import { expireLicence, licenceOrgIds } from './licences.ts';
import { lapsedLicence } from './shipment-checks.ts';
import { applyStep, expireStep } from './shipments.ts';

/** The rule of a sweep that found nothing to expire (and so wrote nothing). */
export const nothingDueRule = 'sweep-nothing-due';

/** Licences the sweep expires once their validity has ended; every status that may still be in force. */
const expirableStatuses: readonly LicenceStatus[] = ['issued', 'suspended', 'exhausted'];

export const ledgerSweep: Handler<'ledger.sweep'> = {
  kind: 'ledger.sweep',
  keys(_input, keys) {
    keys.dueAt = new Date().toISOString(); // replaced by the batch time in the sequencer
  },
  run(context) {
    const { state, at } = context;
    const expiredShipments: string[] = [];
    const expiredLicences: string[] = [];
    const parts: EventPart[] = [];
    // The sequencer gives the parts consecutive seqs from context.seq, in order: each
    // record's updated_seq names the event that expired it.
    const partContext = (): CommandContext => ({ ...context, seq: context.seq + parts.length });
    for (const shipment of [...state.all('shipments')]) {
      if (shipment.status !== 'booked') continue;
      // Past its deadline, a booking expires as it always has; before it, only under a
      // licence no longer in force, and its event says which (reason).
      const lapse = shipment.deadline <= at ? null : lapsedLicence(state, shipment, at);
      if (shipment.deadline > at && lapse === null) continue;
      const dueAt = lapse === null ? shipment.deadline : lapse.dueAt;
      const step = applyStep(partContext(), shipment, expireStep);
      assert(step.moreEvents === undefined, 'releasing a reservation changes no licence status');
      parts.push({
        subjectId: step.subjectId, orgIds: step.orgIds,
        effects: { shipmentId: shipment.id, ...step.effects, ...(lapse === null ? {} : { reason: lapse.reason }), ...(dueAt === null ? {} : { dueAt }) },
      });
      expiredShipments.push(shipment.id);
    }
    for (const licence of [...state.all('licences')]) {
      if (!expirableStatuses.includes(licence.status) || licence.valid_to > at) continue;
      const from = licence.status;
      expireLicence(partContext(), licence);
      parts.push({ subjectId: licence.id, orgIds: licenceOrgIds(licence), effects: { licenceId: licence.id, from, to: 'expired', dueAt: licence.valid_to } });
      expiredLicences.push(licence.id);
    }
    // Nothing due is not a change: no event, so a sweep every few seconds leaves the log quiet.
    const [first, ...more] = parts;
    if (!first) throw refuse.conflict(nothingDueRule, 'nothing is due: no booking is past its deadline or under a licence no longer in force, and no licence is past its validity');
    return { ...first, moreEvents: more, answer: { expiredShipments, expiredLicences } };
  },
};

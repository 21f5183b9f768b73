/**
 * The timed sweep: booked shipments past their deadline expire (their reservation is
 * released), and so do booked shipments under a licence no longer in force (licenceLapses);
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
 * expired licence too: the calendar ended it), whichever came first (bookingDue). A booking
 * that a revocation or a surrender ended before its deadline has none: that licence's own
 * event dates it, and its reason names the licence.
 */
import { assert } from '../../core/errors.ts';
import { refuse, type CommandContext, type EventPart, type Handler } from '../handler.ts';
import type { LicenceStatus, ShipmentRow } from '../rows.ts';
import { expireLicence, licenceOrgIds } from './licences.ts';
import { licenceLapses, type Lapse } from './shipment-checks.ts';
import { applyStep, expireStep } from './shipments.ts';

/** The rule of a sweep that found nothing to expire (and so wrote nothing). */
export const nothingDueRule = 'sweep-nothing-due';

/** Licences the sweep expires once their validity has ended; every status that may still be in force. */
const expirableStatuses: readonly LicenceStatus[] = ['issued', 'suspended', 'exhausted'];

/**
 * When a booking the sweep expires fell due, and why, if not for its deadline: the earliest of
 * its deadline and the instants its licences lapsed (licenceLapses: a validTo each), so that a
 * booking whose licence was cut short to before its deadline, swept after both, is dated by the
 * licence's end and says so (reason), not by a deadline it could never have shipped by. A
 * lapse of no known instant (a revocation or a surrender, which its own event dates) decides
 * only while the deadline is ahead and no lapse is dated; past the deadline, the deadline is
 * the instant the booking is known to have been due by.
 */
function bookingDue(shipment: ShipmentRow, lapses: readonly Lapse[], at: string): { dueAt: string | null; reason: string | null } {
  const dated = lapses.filter((lapse) => lapse.dueAt !== null).sort((one, other) => (one.dueAt! < other.dueAt! ? -1 : 1))[0];
  const first = dated ?? lapses[0];
  if (first === undefined) return { dueAt: shipment.deadline, reason: null };
  const lapsedFirst = shipment.deadline > at || (first.dueAt !== null && first.dueAt < shipment.deadline);
  return lapsedFirst ? { dueAt: first.dueAt, reason: first.reason } : { dueAt: shipment.deadline, reason: null };
}

const inCreationOrder = (one: { created_seq: number }, other: { created_seq: number }): number => one.created_seq - other.created_seq;

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
    // In the order the records were made, not the order the batch loaded them in (which the
    // database's plan and the row cache decide): the log's order, and with it each record's
    // updated_seq, follows from the ledger's state alone, as a replay of the log
    // (ledger/replay) makes it again. Only what is due is sorted: a tick that finds nothing
    // (most of them) sorts nothing, whatever the row cache holds. Expiring a booking changes no
    // licence's status, so what is due is known before the first expires.
    const due: Array<{ shipment: ShipmentRow; lapses: Lapse[] }> = [];
    for (const shipment of state.all('shipments')) {
      if (shipment.status !== 'booked') continue;
      const lapses = licenceLapses(state, shipment, at);
      if (shipment.deadline <= at || lapses.length > 0) due.push({ shipment, lapses });
    }
    due.sort((one, other) => inCreationOrder(one.shipment, other.shipment));
    for (const { shipment, lapses } of due) {
      const { dueAt, reason } = bookingDue(shipment, lapses, at);
      const step = applyStep(partContext(), shipment, expireStep);
      assert(step.moreEvents === undefined, 'releasing a reservation changes no licence status');
      parts.push({
        subjectId: step.subjectId, orgIds: step.orgIds,
        effects: { shipmentId: shipment.id, ...step.effects, ...(reason === null ? {} : { reason }), ...(dueAt === null ? {} : { dueAt }) },
      });
      expiredShipments.push(shipment.id);
    }
    const pastValidity = [...state.all('licences')].filter((licence) => expirableStatuses.includes(licence.status) && licence.valid_to <= at).sort(inCreationOrder);
    for (const licence of pastValidity) {
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

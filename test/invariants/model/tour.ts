/**
 * The tour: a hand-written walk that must reach every path in tourReaches, the rare ones
 * included. It runs on its own, apart from the random runs.
 */
import { book, dayMs, hourMs, templateSerials, type Command, type Step } from './commands.ts';

const mainExport = { direction: 'export', licencePick: 1, wrongAuthority: false } as const;
/** A booking of one unit by the second exporter, to beta, listing the given serials. */
const secondBooks = (serials: string[]): Extract<Command, { kind: 'book' }> => ({ ...book(1, 1, { given: serials }, 20 * dayMs), by: 1 });
/**
 * A hand-written tour that walks every path once (book, attach, ship, clear, deliver,
 * deploy, move, decommission, suspend, reinstate, expire, cancel, allocate, resize,
 * replay; a licence used up and one outlived; cancel and attach refused on a shipped
 * shipment). It runs on its own: the random runs must reach the paths without it.
 *
 * Allocation picks count from the newest: for alpha, pick 1 is its allocation on the large
 * licence of the direction and pick 0 the one on the small export or the short import
 * licence, which the template made last; beta's export allocations are the large licence's
 * and the one the tour makes on it.
 */
export const tour: Step[] = [
  // Ship the world's booking under the small export licence, using it up; then cancel and
  // attach must leave that shipped shipment be.
  {
    kind: 'group',
    commands: [
      { kind: 'ship', shipmentPick: { fit: 'wanted', at: 0 }, keyed: false },
      { kind: 'cancel', shipmentPick: { fit: 'shipped', at: 0 }, keyed: false }, { kind: 'attach', shipmentPick: { fit: 'shipped', at: 0 }, serials: { fit: 1, at: 0 } },
    ],
  },
  // Alpha's booking lists its units' GPU UUIDs (SN-0 and SN-1); beta's is given typos for
  // SN-7 and SN-8, let go when the booking expires.
  { kind: 'group', commands: [{ ...book(0, 'fit', { fit: 2, at: 0 }, 20 * dayMs, true), gpu: 'own' }, book(1, 3, null, hourMs), { kind: 'allocate', ...mainExport, recipient: 1, units: 5 }] },
  { kind: 'group', commands: [{ kind: 'resize', allocationPick: 0, units: 12, wrongAuthority: false }, { kind: 'attach', shipmentPick: { fit: 'wanted', at: 0 }, serials: { fit: 2, at: 5 }, gpu: 'typo' }] },
  { kind: 'group', commands: [{ kind: 'ship', shipmentPick: { fit: 'wanted', at: 1 }, keyed: true }, { kind: 'replay', pick: 0, changed: false }, { kind: 'replay', pick: 1, changed: true }] },
  { kind: 'group', writer: 1, commands: [{ kind: 'replay', pick: 0, changed: false }, book(1, 1, null, dayMs)] },
  { kind: 'group', commands: [{ kind: 'clear', shipmentPick: { fit: 'wanted', at: 0 }, otherRecipient: false }, { kind: 'deliver', shipmentPick: { fit: 'wanted', at: 0 }, otherRecipient: false }] },
  // Sites: pick 2 is alpha's first (full: the template's two units), 1 its second (room for one).
  { kind: 'group', commands: [{ kind: 'deploy', recipient: 0, sitePick: 1, serials: { given: templateSerials.deployed.slice(0, 1) } }] },
  {
    kind: 'group',
    commands: [
      { kind: 'deploy', recipient: 0, sitePick: 2, serials: { fit: 1, at: 0 } }, { kind: 'decommission', recipient: 0, serials: { fit: 1, at: 1 } },
      { kind: 'deploy', recipient: 0, sitePick: 2, serials: { given: templateSerials.deployed.slice(0, 1) } },
    ],
  },
  { kind: 'group', commands: [{ kind: 'licence', action: 'toggle', ...mainExport }, book(0, 1, null, dayMs), { kind: 'licence', action: 'toggle', ...mainExport }] },
  { kind: 'advance', ms: 2 * dayMs },
  { kind: 'group', commands: [{ kind: 'sweep' }, book(0, 1, null, dayMs), { kind: 'cancel', shipmentPick: { fit: 'wanted', at: 0 }, keyed: true }] },
  // The small export licence is used up: a booking under it is refused. Amended, it is not
  // cut below what it shipped, is issued again with more units and used up again with
  // fewer, and its validity never ends before it starts, nor at once (ending a licence is
  // revoke's), nor does its start move once issued; the short import licence is not cut below
  // what it allocated (nothing shipped under it).
  { kind: 'group', commands: [book(0, 1, null, dayMs, false, { exportPick: 0, importPick: 1 })] },
  {
    kind: 'group',
    commands: (['below', 'more', 'shipped'] as const).map((units): Command => ({ kind: 'amend', direction: 'export', licencePick: 0, units, validTo: 'same', wrongAuthority: false }))
      .concat((['beforeStart', 'ended'] as const).map((validTo): Command => ({ kind: 'amend', direction: 'export', licencePick: 0, units: 'same', validTo, wrongAuthority: false })))
      .concat({ kind: 'amend', direction: 'export', licencePick: 0, units: 'same', validTo: 'same', validFrom: 'earlier', wrongAuthority: false })
      .concat({ kind: 'amend', direction: 'import', licencePick: 0, units: 'below', validTo: 'same', wrongAuthority: false }),
  },
  // A booking under the short import licence (3 days left): one with a deadline weeks ahead
  // is refused (a booking cannot outlast its licences), one to the licence's last instant
  // taken. The licence is then cut short to the half hour: its end expires the booking all
  // the same, its deadline ahead (a lapse expiry).
  {
    kind: 'group',
    commands: [
      book(1, 1, null, 20 * dayMs, false, { exportPick: 0, importPick: 0 }), book(1, 1, null, 3 * dayMs, false, { exportPick: 0, importPick: 0 }),
      { kind: 'amend', direction: 'import', licencePick: 0, units: 'same', validTo: 'soon', wrongAuthority: false },
    ],
  },
  // Outlive the short import licence: refused before the sweep marks it (an amendment that
  // would put it back in force too, a suspension, and cancelling the booking under it, which
  // the sweep expires), expired by it; amended no more once expired.
  { kind: 'advance', ms: hourMs },
  {
    kind: 'group',
    commands: [
      book(1, 1, null, dayMs, false, { exportPick: 0, importPick: 0 }), { kind: 'amend', direction: 'import', licencePick: 0, units: 'same', validTo: 'later', wrongAuthority: false },
      { kind: 'licence', action: 'suspend', direction: 'import', licencePick: 0, wrongAuthority: false },
      { kind: 'cancel', shipmentPick: { fit: 'wanted', at: 0 }, keyed: false },
      { kind: 'sweep' }, { kind: 'amend', direction: 'import', licencePick: 0, units: 'more', validTo: 'same', wrongAuthority: false },
    ],
  },
  // Units leave use: alpha returns SN-0 from its site and reports SN-22 lost in transit; a
  // unit in transit is not returned (SN-21, beta's), a decommissioned one not lost (SN-1),
  // and beta cannot act on alpha's SN-20.
  {
    kind: 'group',
    commands: [
      { kind: 'end', to: 'returned', recipient: 0, serials: { given: ['SN-0'] } }, { kind: 'end', to: 'lost', recipient: 0, serials: { given: ['SN-22'] } },
      { kind: 'end', to: 'returned', recipient: 1, serials: { given: ['SN-21'] } }, { kind: 'end', to: 'lost', recipient: 0, serials: { given: ['SN-1'] } },
      { kind: 'end', to: 'returned', recipient: 1, serials: { given: ['SN-20'] } },
    ],
  },
  // Listed again: the second exporter may not list the first's returned SN-0 (with its own
  // GPU UUID or not) or deployed SN-20 (rule unit-owner); the returned SN-0 keeps its GPU
  // UUID (another is refused); SN-8, released by beta's expired booking, goes to alpha with
  // its own UUID, not the typo.
  {
    kind: 'group',
    commands: [
      { ...secondBooks(['SN-0']), gpu: 'own' }, secondBooks(['SN-20']),
      { ...book(0, 1, { given: ['SN-0'] }, 20 * dayMs), gpu: 'typo' }, { ...book(0, 1, { given: ['SN-0'] }, 20 * dayMs), gpu: 'own' },
      { ...book(0, 1, { given: ['SN-8'] }, 20 * dayMs), gpu: 'own' },
    ],
  },
  // The second exporter takes SN-7, released by the first's expired booking, with its own GPU
  // UUID (the typo was let go); SN-8, live in the first's booking, is not its to list; SN-9 is new.
  { kind: 'group', commands: [{ ...secondBooks(['SN-7']), gpu: 'own' }, secondBooks(['SN-8']), secondBooks(['SN-9'])] },
  // It ships SN-9's booking and cancels SN-7's, whose unit the first exporter then takes back
  // (released again: it never shipped); the first may not list SN-9, shipped by the second.
  {
    kind: 'group',
    commands: [
      { kind: 'ship', shipmentPick: { fit: 'wanted', at: 0 }, keyed: false }, { kind: 'cancel', shipmentPick: { fit: 'wanted', at: 0 }, keyed: false },
      book(0, 1, { given: ['SN-7'] }, 20 * dayMs), book(0, 1, { given: ['SN-9'] }, 20 * dayMs),
    ],
  },
  // Beta receives SN-9 (the second exporter's) and SN-21 (the first's, in transit from the
  // start; the third shipped shipment from the newest): returned together they are refused
  // (each exporter reads the return of its own units, rule unit-exporter); apart, accepted.
  {
    kind: 'group',
    commands: [
      { kind: 'clear', shipmentPick: { fit: 'wanted', at: 0 }, otherRecipient: false }, { kind: 'deliver', shipmentPick: { fit: 'wanted', at: 0 }, otherRecipient: false },
      { kind: 'clear', shipmentPick: { fit: 'wanted', at: 2 }, otherRecipient: false }, { kind: 'deliver', shipmentPick: { fit: 'wanted', at: 0 }, otherRecipient: false },
      { kind: 'end', to: 'returned', recipient: 1, serials: { given: ['SN-9', 'SN-21'] } }, { kind: 'end', to: 'returned', recipient: 1, serials: { given: ['SN-9'] } },
    ],
  },
  // Slips at booking. The two allocations swapped: each is one the exporter reads, so it is
  // told so (allocation-direction), not that it is unknown. Alpha's export allocation paired
  // with beta's import one (allocation-recipient-pair). A manifest with several bad serials,
  // all named at once under the first one's rule: SN-22 (lost in transit, its shipment still
  // live), SN-9 (the second exporter's, returned: unit-owner), SN-1 (decommissioned), and SN-9
  // again, refused as before, not as given twice (its first entry did not get in).
  {
    kind: 'group',
    commands: [
      { ...book(0, 1, null, dayMs), swapped: true }, { ...book(0, 1, null, dayMs), importRecipient: 1 },
      book(0, 4, { given: ['SN-22', 'SN-9', 'SN-1', 'SN-9'] }, 20 * dayMs),
    ],
  },
  // A shipment turned back at the border (SN-15, new): not by the export licence's authority
  // (shipment-party) but by the import licence's, and only once; the second exporter may not
  // list its unit, and the first lists it again. Each step a batch of its own: a listing may
  // pass commands of its batch.
  { kind: 'group', commands: [book(0, 1, { given: ['SN-15'] }, 20 * dayMs)] },
  { kind: 'group', commands: [{ kind: 'ship', shipmentPick: { fit: 'wanted', at: 0 }, keyed: false }] },
  { kind: 'group', commands: [{ kind: 'return', shipmentPick: { fit: 'wanted', at: 0 }, by: 'exportAuthority' }, { kind: 'return', shipmentPick: { fit: 'wanted', at: 0 }, by: 'importAuthority' }] },
  { kind: 'group', commands: [{ kind: 'return', shipmentPick: { fit: 'any', at: 0 }, by: 'exporter' }, secondBooks(['SN-15'])] },
  { kind: 'group', commands: [book(0, 1, { given: ['SN-15'] }, 20 * dayMs)] },
  // Alpha's site abroad (the template's oldest, pick 3) takes none of its units.
  { kind: 'group', commands: [{ kind: 'deploy', recipient: 0, sitePick: 3, serials: { fit: 1, at: 0 } }] },
];

/** What the tour reaches, each at least once (coverage names: see Coverage). */
export const tourReaches = [
  'accepted shipment.book', 'accepted manifest.attach', 'accepted shipment.ship', 'accepted shipment.clear', 'accepted shipment.deliver', 'accepted shipment.cancel',
  'accepted allocation.create', 'accepted allocation.resize', 'accepted licence.suspend', 'accepted licence.reinstate', 'accepted units.deploy', 'accepted units.decommission',
  'accepted ledger.sweep', 'replayed', 'effect unit-moved', 'refused units.deploy insufficient_units site-capacity', 'effect shipment-expired', 'effect licence-exhausted', 'effect licence-expired',
  'refused shipment.book idempotency_mismatch invariant-6', 'refused shipment.book licence_not_valid licence-status', 'refused shipment.book licence_not_valid licence-validity',
  'tried shipment.cancel on shipped', 'refused shipment.cancel conflict shipment-status', 'tried manifest.attach on shipped', 'refused manifest.attach conflict shipment-status',
  // A booking expired for its licence's end, its deadline ahead; amendments; units returned, lost and listed again.
  'effect shipment-expired-lapsed', 'accepted licence.amend', 'effect licence-reissued', 'refused licence.amend insufficient_units invariant-1',
  'refused licence.amend invalid_input licence-validity', 'refused licence.amend conflict licence-validity', 'refused licence.amend conflict licence-status',
  'refused shipment.book invalid_input booking-deadline', 'refused licence.suspend conflict licence-validity', 'refused shipment.cancel licence_not_valid licence-validity',
  'accepted units.return', 'accepted units.report_lost', 'effect lost-in-transit', 'refused units.return conflict unit-custody', 'refused units.report_lost conflict unit-custody',
  'refused units.return not_found -', 'refused shipment.book conflict unit-gpu-uuid', 'effect relisted-returned', 'effect relisted-released-uuid',
  // A second exporter: refused another's units that shipped (returned, deployed, in transit) or are
  // live in its booking (unit-owner), taking released ones (with a GPU UUID and without), shipping and cancelling.
  'refused shipment.book conflict unit-owner', 'unit-owner on returned', 'unit-owner on deployed', 'unit-owner on live',
  'effect released-taken-over-uuid', 'effect released-taken-over', 'second-exporter accepted shipment.book', 'second-exporter accepted shipment.ship',
  'second-exporter accepted shipment.cancel', 'refused units.return conflict unit-exporter',
  // Slips at booking: allocations swapped, or for two recipients; a manifest refused naming several serials, under more than one rule.
  'refused shipment.book invalid_input allocation-direction', 'refused shipment.book licence_not_valid allocation-recipient-pair',
  'manifest refused-serials several', 'manifest refused-serials mixed-rules',
  // A shipment turned back at the border: by the import licence's authority, not the export licence's; once.
  'accepted shipment.return', 'refused shipment.return forbidden shipment-party', 'refused shipment.return conflict shipment-status',
  // A site abroad.
  'refused units.deploy licence_not_valid deployment-destination',
];

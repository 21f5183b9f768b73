/**
 * The fast-check generators of the random runs: commands, groups of them and clock advances,
 * weighted so that the random runs reach every path often enough (the minimums: coverage.ts).
 */
import fc from 'fast-check';
import { dayMs, hourMs, serialPool, type By, type Command, type Gpu, type Pick, type Serials, type ShipmentPick, type Step, type Who, type Writer } from './commands.ts';

const pick: fc.Arbitrary<Pick> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0, max: 3 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 1, arbitrary: fc.constant(-1) },
);
const who: fc.Arbitrary<Who> = fc.constantFrom<Who>(0, 1);
const sometimes = (oneIn: number) => fc.integer({ min: 1, max: oneIn }).map((value) => value === 1);
const given = (maxLength: number) => fc.array(fc.constantFrom(...serialPool), { minLength: 1, maxLength }).map((list): Serials => ({ given: list }));
const serials = (maxLength: number): fc.Arbitrary<Serials> => fc.oneof(
  { weight: 6, arbitrary: fc.record({ fit: fc.integer({ min: 1, max: maxLength }), at: pick }) },
  { weight: 2, arbitrary: given(maxLength) },
  { weight: 1, arbitrary: fc.record({ clash: fc.integer({ min: 1, max: maxLength }), at: pick }) },
);
const gpu: fc.Arbitrary<Gpu> = fc.oneof(
  { weight: 3, arbitrary: fc.constant('none' as const) },
  { weight: 2, arbitrary: fc.constant('own' as const) },
  { weight: 1, arbitrary: fc.constant('typo' as const) },
);
/** A manifest's serials: as `serials`, and known units listed again. */
const manifestSerials = (maxLength: number): fc.Arbitrary<Serials> => fc.oneof(
  { weight: 9, arbitrary: serials(maxLength) },
  { weight: 2, arbitrary: fc.record({ again: fc.integer({ min: 1, max: maxLength }), at: pick }) },
);
const shipmentPick: fc.Arbitrary<ShipmentPick> = fc.record({
  fit: fc.oneof({ weight: 4, arbitrary: fc.constant('wanted' as const) }, { weight: 1, arbitrary: fc.constant('any' as const) }),
  at: pick,
});
/** Cancel and attach: often a shipment past booking, which they must refuse and leave as it is. */
const pastBookingPick = (weights: Record<ShipmentPick['fit'], number>): fc.Arbitrary<ShipmentPick> => fc.record({
  fit: fc.oneof(...(['wanted', 'shipped', 'received', 'any'] as const).map((fit) => ({ weight: weights[fit], arbitrary: fc.constant(fit) }))),
  at: pick,
});

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('book' as const),
      // The second exporter one booking in six: it then ships, cancels and lists in its own
      // shipments as the first does in its (run.ts acts as a shipment's exporter), and its
      // manifests meet the first's units, released or not.
      by: fc.oneof({ weight: 5, arbitrary: fc.constant<By>(0) }, { weight: 1, arbitrary: fc.constant<By>(1) }),
      allocations: fc.oneof(
        { weight: 3, arbitrary: fc.constant('usable' as const) },
        { weight: 3, arbitrary: fc.constant('own' as const) },
        { weight: 1, arbitrary: fc.constant('any' as const) },
      ),
      recipient: who,
      exportPick: pick,
      importPick: pick,
      units: fc.oneof(
        { weight: 5, arbitrary: fc.constant('fit' as const) },
        { weight: 2, arbitrary: fc.constantFrom(1, 2, 3) },
        { weight: 1, arbitrary: fc.constantFrom(8, 21, 40) }, // 21 and 40: more than an allocation holds
      ),
      deadlineMs: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(hourMs, dayMs, 3 * dayMs, 20 * dayMs) },
        { weight: 1, arbitrary: fc.constantFrom(-hourMs, 0, 400 * dayMs) }, // not after now; beyond a year
      ),
      serials: fc.option(manifestSerials(4), { freq: 3 }),
      gpu,
      unknownProduct: sometimes(25),
      keyed: sometimes(3),
    }),
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('attach' as const), shipmentPick: pastBookingPick({ wanted: 5, shipped: 2, received: 1, any: 1 }), serials: manifestSerials(3), gpu }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('ship' as const), shipmentPick, keyed: sometimes(3) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constantFrom('clear' as const, 'deliver' as const), shipmentPick, otherRecipient: sometimes(8) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('cancel' as const), shipmentPick: pastBookingPick({ wanted: 3, shipped: 4, received: 1, any: 1 }), keyed: sometimes(3) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('return' as const), shipmentPick: pastBookingPick({ wanted: 6, shipped: 1, received: 2, any: 1 }), by: fc.constantFrom('exporter' as const, 'exporter' as const, 'importAuthority' as const, 'exportAuthority' as const) }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'sweep' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('allocate' as const),
      direction: fc.constantFrom('export' as const, 'import' as const, 'export' as const, 'import' as const, 'unknown' as const),
      licencePick: pick, recipient: who, units: fc.integer({ min: 1, max: 30 }), wrongAuthority: sometimes(6),
    }),
  },
  {
    weight: 3,
    // Small sizes too: below what an allocation has reserved or shipped (invariant 2), and 0 (all given back).
    arbitrary: fc.record({ kind: fc.constant('resize' as const), allocationPick: pick, units: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 40 })), wrongAuthority: sometimes(6) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('licence' as const),
      action: fc.oneof(
        { weight: 12, arbitrary: fc.constant('toggle' as const) },
        { weight: 4, arbitrary: fc.constantFrom('suspend' as const, 'reinstate' as const) },
      ),
      direction: fc.constantFrom('export' as const, 'import' as const), licencePick: pick, wrongAuthority: sometimes(6),
    }),
  },
  {
    weight: 1,
    // Final: mostly the newest licence of the direction, the small export or the short import
    // one; revoking a large one ends most of a run's flow.
    arbitrary: fc.record({
      kind: fc.constant('licence' as const), action: fc.constant('revoke' as const), direction: fc.constantFrom('export' as const, 'import' as const),
      licencePick: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: pick }), wrongAuthority: sometimes(6),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('deploy' as const), recipient: who, sitePick: pick, serials: serials(3) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('decommission' as const), recipient: who, serials: serials(2) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('end' as const), to: fc.oneof({ weight: 2, arbitrary: fc.constant('returned' as const) }, { weight: 1, arbitrary: fc.constant('lost' as const) }),
      recipient: who, serials: serials(2),
    }),
  },
  {
    weight: 2,
    // Mostly the newest licence of the direction, as for revoking: ending a large one's
    // validity would end most of a run's flow.
    arbitrary: fc.record({
      kind: fc.constant('amend' as const), direction: fc.constantFrom('export' as const, 'import' as const),
      licencePick: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: pick }),
      units: fc.constantFrom('same' as const, 'used' as const, 'shipped' as const, 'below' as const, 'more' as const),
      validTo: fc.oneof(
        { weight: 3, arbitrary: fc.constant('same' as const) },
        { weight: 2, arbitrary: fc.constantFrom('later' as const, 'soon' as const) },
        { weight: 1, arbitrary: fc.constantFrom('ended' as const, 'beforeStart' as const) },
      ),
      // A new start, one amendment in seven: refused once issued (always, in a run), so
      // rarely, or it would crowd out the amendments that pass.
      validFrom: fc.oneof({ weight: 6, arbitrary: fc.constant('same' as const) }, { weight: 1, arbitrary: fc.constantFrom('earlier' as const, 'later' as const) }),
      wrongAuthority: sometimes(8),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('replay' as const), pick, changed: sometimes(4) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lapse' as const), how: fc.constantFrom('revoke' as const, 'end' as const) }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('progress' as const), at: pick, choice: fc.nat(999) }) },
);

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('group' as const),
      commands: fc.array(command, { minLength: 1, maxLength: 4 }),
      // Mostly the first ledger, so runs of its batches hit its caches between switches.
      writer: fc.oneof({ weight: 3, arbitrary: fc.constant<Writer>(0) }, { weight: 1, arbitrary: fc.constant<Writer>(1) }),
    }),
  },
  // Past booking deadlines (at most 20 days here) and the short import licence (5 days);
  // not, in a run's few advances, past the large licences' year: that would end the run's flow.
  { weight: 2, arbitrary: fc.constantFrom(hourMs, hourMs, dayMs, dayMs, 4 * dayMs, 25 * dayMs, 40 * dayMs).map((ms) => ({ kind: 'advance' as const, ms })) },
);
/**
 * Long runs: a run's fresh database and ledgers cost about as much as 30 steps, and a deep
 * run reaches what a short one rarely does (a booking shipped, delivered and deployed).
 */
export const scenario = fc.array(step, { minLength: 30, maxLength: 40 });

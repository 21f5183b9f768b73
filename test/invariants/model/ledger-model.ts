/**
 * A plain in-memory model of the ledger's shipment flow, written from DESIGN.md and the
 * refusal rules, independent of the ledger's code: maps of licences, allocations,
 * shipments, units and sites, and one function per command that either refuses (with
 * an error code and the rule the ledger names for it) or changes the maps. The model test
 * runs the same commands against the real ledger and this model and compares every answer
 * (a refusal's code and rule) and the final balances.
 *
 * Ids are predicted, not read back: the ledger names what a command makes after the
 * sequence number of its event (S-12), and every accepted command takes the next one.
 */
import type { ErrorCode } from '../../../src/core/errors.ts';
import type { Custody, LicenceStatus, ShipmentStatus } from '../../../src/ledger/rows.ts';

/** A serial a manifest's refusal names, and the rule that refused that serial. */
export interface RefusedSerial {
  serial: string;
  rule: string;
}

/**
 * A refusal the model predicts: its error code and, where the ledger names one, the rule
 * that refused it (DomainError.rule: 'invariant-2', 'licence-status', ...). Not-found
 * refusals name no rule: `rule` is null there. A manifest refused for its serials names
 * every bad one, in the manifest's order (`serials`); the refusal's own code and rule are
 * the first one's.
 */
export class ModelRefusal extends Error {
  constructor(readonly code: ErrorCode, readonly rule: string | null, reason: string, readonly serials?: RefusedSerial[]) {
    super(reason);
  }
}

const refuse = (code: ErrorCode, rule: string | null, reason: string): never => {
  throw new ModelRefusal(code, rule, reason);
};
/** Unknown, or not the actor's to see: the ledger never says which, and names no rule. */
const notFound = (reason: string): never => refuse('not_found', null, reason);
/** Another authority's licence: it reads it, and hears the rule (licence-issuer). */
const forbidden = (reason: string): never => refuse('forbidden', 'licence-issuer', reason);

export interface ModelLicence {
  id: string;
  authorityOrgId: string;
  /** Who holds it, and (an import licence) the exporters it names as suppliers: who may ship under it. */
  holderOrgId: string;
  supplierOrgIds: string[];
  direction: 'export' | 'import';
  authorisedUnits: number;
  allocatedUnits: number;
  shippedUnits: number;
  status: LicenceStatus;
  validFromMs: number;
  validToMs: number;
  /** Each amendment writes the next version (the answer names it). */
  version: number;
}

export interface ModelAllocation {
  id: string;
  licenceId: string;
  recipientOrgId: string;
  units: number;
  reservedUnits: number;
  shippedUnits: number;
}

export interface ModelShipment {
  id: string;
  exporterOrgId: string;
  exportAllocationId: string;
  importAllocationId: string;
  recipientOrgId: string;
  units: number;
  status: ShipmentStatus;
  deadlineMs: number;
  serialCount: number;
}

export interface ModelUnit {
  serial: string;
  custody: Custody;
  shipmentId: string;
  siteId: string | null;
  recipientOrgId: string;
  gpuUuid: string | null;
  /** Set when it ships, never unset: from then on what the unit is and whose is fixed. */
  everShipped: boolean;
  /** Set when it ships with its GPU UUID, never unset: from then on that GPU UUID is fixed. */
  gpuUuidShipped: boolean;
}

/** A manifest line: a serial, and maybe the GPU UUID of the unit it names. */
export interface ManifestEntry {
  serial: string;
  gpuUuid?: string;
}

export interface ModelSite {
  id: string;
  orgId: string;
  country: string;
  capacityUnits: number;
  deployedUnits: number;
}

const dayMs = 86_400_000;
const bookingDeadlineMaxMs = 365 * dayMs;
const reshippable: readonly Custody[] = ['licensed', 'returned'];
/** The statuses an amendment may change; any other is final (or, expired, final in all but name). */
const amendable: readonly LicenceStatus[] = ['draft', 'issued', 'suspended', 'exhausted'];
/** Where each ending takes units from: a loss may be in transit; a return or decommissioning only once delivered. */
const endsFrom: Record<'decommissioned' | 'returned' | 'lost', readonly Custody[]> = {
  decommissioned: ['delivered', 'deployed'],
  returned: ['delivered', 'deployed'],
  lost: ['in_transit', 'delivered', 'deployed'],
};

/**
 * What a command answered: the fields of the body the model predicts, or a refusal's code
 * and rule. `effects` names what an acceptance did that its answer does not show (a unit
 * listed again after a return, a booking expired for a lapsed licence): coverage only.
 */
export type Outcome = { ok: true; body: Record<string, unknown>; effects: string[] } | { ok: false; code: ErrorCode; rule: string | null; reason: string; serials?: RefusedSerial[] };

export class LedgerModel {
  readonly licences = new Map<string, ModelLicence>();
  readonly allocations = new Map<string, ModelAllocation>();
  readonly shipments = new Map<string, ModelShipment>();
  readonly units = new Map<string, ModelUnit>();
  readonly sites = new Map<string, ModelSite>();
  /** Each organisation's country: a recipient's is where its shipments go (their destination). */
  readonly countries = new Map<string, string>();
  /** serial -> the live (booked, shipped, cleared) shipment that lists it. */
  readonly live = new Map<string, string>();
  /** The next event's sequence number: the id suffix of whatever the next accepted command makes. */
  seq: number;
  nowMs: number;
  /** What the command being applied did beyond its answer (Outcome.effects). */
  private noted: string[] = [];

  private readonly productId: string;

  constructor(options: { seq: number; nowMs: number; productId: string }) {
    this.seq = options.seq;
    this.nowMs = options.nowMs;
    this.productId = options.productId;
  }

  /** Runs one command against the model: refusals change nothing; acceptances take a seq. */
  apply(run: () => Record<string, unknown>): Outcome {
    const snapshot = this.snapshot();
    this.noted = [];
    try {
      const body = run();
      this.seq += 1;
      return { ok: true, body, effects: this.noted };
    } catch (error) {
      if (!(error instanceof ModelRefusal)) throw error;
      this.restore(snapshot);
      return { ok: false, code: error.code, rule: error.rule, reason: error.message, ...(error.serials ? { serials: error.serials } : {}) };
    }
  }

  /** Whether an exporter may ship under a licence: an export licence it holds, an import licence naming it as supplier (holding one is not enough). */
  letsExporterShip(licence: ModelLicence, exporterOrgId: string): boolean {
    return licence.direction === 'export' ? licence.holderOrgId === exporterOrgId : licence.supplierOrgIds.includes(exporterOrgId);
  }

  book(input: { exportAllocationId: string; importAllocationId: string; productId: string; units: number; deadlineMs: number; serials?: ManifestEntry[] }, exporterOrgId: string): Record<string, unknown> {
    // The export side is judged whole before the import side is looked up: an export id that
    // is wrong is named even when the import id is unknown.
    const exportSide = this.bookingSide(input.exportAllocationId, 'export', exporterOrgId);
    const importSide = this.bookingSide(input.importAllocationId, 'import', exporterOrgId);
    if (input.productId !== this.productId) notFound('unknown product');
    if (input.deadlineMs <= this.nowMs || input.deadlineMs - this.nowMs > bookingDeadlineMaxMs) refuse('invalid_input', 'booking-deadline', 'deadline out of range');
    const recipientOrgId = importSide.allocation.recipientOrgId;
    for (const { licence, allocation } of [exportSide, importSide]) {
      if (licence.status !== 'issued') refuse('licence_not_valid', 'licence-status', `licence ${licence.id} is ${licence.status}`);
      if (this.nowMs < licence.validFromMs || this.nowMs >= licence.validToMs) refuse('licence_not_valid', 'licence-validity', `licence ${licence.id} is not valid now`);
      if (allocation.recipientOrgId !== recipientOrgId) refuse('licence_not_valid', 'allocation-recipient-pair', `allocation ${allocation.id} is for another recipient`);
    }
    // A booking lasts no longer than its licences: its deadline is at or before the earlier validTo.
    if (input.deadlineMs > Math.min(exportSide.licence.validToMs, importSide.licence.validToMs)) refuse('invalid_input', 'booking-deadline', 'deadline after a licence\u2019s validity');
    for (const { allocation } of [exportSide, importSide]) {
      if (input.units > allocation.units - allocation.reservedUnits - allocation.shippedUnits) refuse('insufficient_units', 'invariant-2', `allocation ${allocation.id} has too few units`);
    }
    const shipment: ModelShipment = {
      id: `S-${this.seq}`, exporterOrgId, exportAllocationId: exportSide.allocation.id, importAllocationId: importSide.allocation.id, recipientOrgId,
      units: input.units, status: 'booked', deadlineMs: input.deadlineMs, serialCount: 0,
    };
    this.shipments.set(shipment.id, shipment);
    for (const { allocation } of [exportSide, importSide]) allocation.reservedUnits += input.units;
    if (input.serials) this.attachSerials(shipment, input.serials);
    return { shipmentId: shipment.id, status: 'booked', units: input.units, serialCount: shipment.serialCount };
  }

  /**
   * One side of a booking. The exporter holds the export licence and supplies under the
   * import licence: an allocation of a licence it does not ship under is invisible to it
   * (unknown, whatever it is); one it ships under but of the other direction (the two ids
   * swapped) is said to be so, since the exporter can read it.
   */
  private bookingSide(allocationId: string, direction: 'export' | 'import', exporterOrgId: string): { allocation: ModelAllocation; licence: ModelLicence } {
    const side = this.side(allocationId);
    if (!this.letsExporterShip(side.licence, exporterOrgId)) notFound(`${direction} allocation not the exporter\u2019s`);
    if (side.licence.direction !== direction) refuse('invalid_input', 'allocation-direction', `allocation ${allocationId} is of an ${side.licence.direction} licence, given as the ${direction} one`);
    return side;
  }

  attach(input: { shipmentId: string; serials: ManifestEntry[] }, exporterOrgId: string): Record<string, unknown> {
    const shipment = this.exportersShipment(input.shipmentId, exporterOrgId);
    if (shipment.status !== 'booked') refuse('conflict', 'shipment-status', `shipment is ${shipment.status}`);
    if (shipment.deadlineMs <= this.nowMs) refuse('conflict', 'booking-deadline', 'booking deadline passed');
    // A booking that can never ship (a licence ended, or its validity did; export side first)
    // takes no more serials.
    for (const id of [shipment.exportAllocationId, shipment.importAllocationId]) {
      const rule = this.lapsedRule(this.side(id).licence);
      if (rule !== null) refuse('licence_not_valid', rule, 'the booking can never ship');
    }
    this.attachSerials(shipment, input.serials);
    return { shipmentId: shipment.id, added: input.serials.length, serialCount: shipment.serialCount };
  }

  /**
   * A unit that never shipped, left by a booking that was cancelled or expired: its listing
   * claimed it only while the booking lasted, so it is listed afresh, as if unknown (its GPU
   * UUID was let go when the booking ended). A unit that has shipped keeps what it is, and
   * the GPU UUID it shipped with.
   */
  private released(unit: ModelUnit): boolean {
    return !unit.everShipped && ['cancelled', 'expired'].includes(this.shipments.get(unit.shipmentId)!.status);
  }

  /** Where a serial is, for coverage of a refusal naming it: 'live' in a shipment, or its custody; undefined if unknown. */
  holdOf(serial: string): string | undefined {
    return this.live.has(serial) ? 'live' : this.units.get(serial)?.custody;
  }

  /** Another exporter's shipment is unknown to an exporter (the ledger never says it exists). */
  private exportersShipment(shipmentId: string, exporterOrgId: string): ModelShipment {
    const shipment = this.shipments.get(shipmentId) ?? notFound('unknown shipment');
    if (shipment.exporterOrgId !== exporterOrgId) notFound('shipment of another exporter');
    return shipment;
  }

  /**
   * A manifest is all or nothing, and names every bad serial at once: each entry is judged
   * as if the bad ones before it were not there (a serial given twice is "twice" only once
   * its first entry got in; a GPU UUID likewise), and the manifest is refused under the first
   * bad entry's rule, naming all of them.
   */
  private attachSerials(shipment: ModelShipment, entries: ManifestEntry[]): void {
    if (entries.length > shipment.units - shipment.serialCount) refuse('conflict', 'manifest-size', 'manifest larger than the room left');
    const listed = new Set<string>();
    const uuids = new Set<string>();
    const refused: Array<RefusedSerial & { reason: string }> = [];
    for (const { serial, gpuUuid } of entries) {
      const why = this.unlistable(shipment, serial, gpuUuid, listed, uuids);
      if (why !== null) {
        refused.push({ serial, ...why });
        continue;
      }
      listed.add(serial);
      if (gpuUuid !== undefined) uuids.add(gpuUuid);
    }
    const [first] = refused;
    if (first !== undefined) throw new ModelRefusal('conflict', first.rule, first.reason, refused.map(({ serial, rule }) => ({ serial, rule })));
    for (const { serial, gpuUuid } of entries) {
      const unit = this.units.get(serial);
      const released = unit !== undefined && this.released(unit);
      if (released) this.noted.push(gpuUuid === undefined ? 'relisted-released' : 'relisted-released-uuid');
      // Released by one exporter's booking, taken by another's (with a GPU UUID or without).
      if (released && this.shipments.get(unit!.shipmentId)!.exporterOrgId !== shipment.exporterOrgId) this.noted.push(gpuUuid === undefined ? 'released-taken-over' : 'released-taken-over-uuid');
      if (unit?.custody === 'returned') this.noted.push('relisted-returned');
      this.units.set(serial, {
        serial, custody: 'licensed', shipmentId: shipment.id, siteId: null, recipientOrgId: shipment.recipientOrgId,
        gpuUuid: (released ? null : unit?.gpuUuid ?? null) ?? gpuUuid ?? null, everShipped: unit?.everShipped ?? false,
        gpuUuidShipped: unit?.gpuUuidShipped ?? false,
      });
      this.live.set(serial, shipment.id);
    }
    shipment.serialCount += entries.length;
  }

  /** Why one manifest entry may not be listed in the shipment (every such refusal is a conflict), or null if it may. */
  private unlistable(shipment: ModelShipment, serial: string, gpuUuid: string | undefined, listed: Set<string>, uuids: Set<string>): { rule: string; reason: string } | null {
    if (listed.has(serial)) return { rule: 'invariant-4', reason: `serial ${serial} twice in the manifest` };
    // A serial another exporter's shipment holds or last held: one refusal whatever its
    // state (live, returned, deployed), telling nothing of the other tenant.
    const live = this.live.get(serial);
    if (live !== undefined && this.shipments.get(live)!.exporterOrgId !== shipment.exporterOrgId) return { rule: 'unit-owner', reason: `serial ${serial} is another exporter's` };
    if (live !== undefined) return { rule: 'invariant-4', reason: `serial ${serial} is in live shipment ${live}` };
    const unit = this.units.get(serial);
    if (unit && !this.released(unit)) {
      if (this.shipments.get(unit.shipmentId)!.exporterOrgId !== shipment.exporterOrgId) return { rule: 'unit-owner', reason: `serial ${serial} last shipped by another exporter` };
      if (!reshippable.includes(unit.custody)) return { rule: 'invariant-4', reason: `serial ${serial} is ${unit.custody}` };
      // What a unit physically is stays: a manifest may not give it another GPU UUID.
      if (gpuUuid !== undefined && unit.gpuUuid !== null && gpuUuid !== unit.gpuUuid) return { rule: 'unit-gpu-uuid', reason: `serial ${serial} has GPU UUID ${unit.gpuUuid}` };
    }
    if (gpuUuid !== undefined && uuids.has(gpuUuid)) return { rule: 'invariant-4', reason: `GPU UUID ${gpuUuid} twice in the manifest` };
    return null;
  }

  ship(shipmentId: string, exporterOrgId: string): Record<string, unknown> {
    const shipment = this.exportersShipment(shipmentId, exporterOrgId);
    if (shipment.status !== 'booked') refuse('conflict', 'shipment-status', `shipment is ${shipment.status}`);
    if (shipment.deadlineMs <= this.nowMs) refuse('conflict', 'booking-deadline', 'booking deadline passed');
    if (shipment.serialCount !== shipment.units) refuse('conflict', 'manifest-complete', 'manifest incomplete');
    for (const allocationId of [shipment.exportAllocationId, shipment.importAllocationId]) {
      const licence = this.side(allocationId).licence;
      if (licence.status !== 'issued') refuse('licence_not_valid', 'licence-status', `licence ${licence.id} is ${licence.status}`);
      if (this.nowMs >= licence.validToMs) refuse('licence_not_valid', 'licence-validity', `licence ${licence.id} expired`);
    }
    let exhausted = 0;
    for (const allocationId of [shipment.exportAllocationId, shipment.importAllocationId]) {
      const { allocation, licence } = this.side(allocationId);
      allocation.reservedUnits -= shipment.units;
      allocation.shippedUnits += shipment.units;
      licence.shippedUnits += shipment.units;
      if (licence.shippedUnits === licence.authorisedUnits && licence.status === 'issued') {
        licence.status = 'exhausted';
        exhausted += 1;
      }
    }
    // Each licence it used up gets an event of its own, after the shipment's; apply() counts that one.
    this.seq += exhausted;
    return this.step(shipment, 'shipped', { from: 'licensed', to: 'in_transit' });
  }

  /**
   * Clear and deliver: the recipient acts; any other recipient cannot see the shipment. A
   * clearance is an import, made under an import licence in force (issued or exhausted, before
   * its validTo); delivery is a domestic step, under no licence.
   */
  receive(shipmentId: string, actorOrgId: string, to: 'cleared' | 'delivered'): Record<string, unknown> {
    const shipment = this.shipments.get(shipmentId) ?? notFound('unknown shipment');
    if (shipment.recipientOrgId !== actorOrgId) notFound('shipment of another recipient');
    const from = to === 'cleared' ? 'shipped' : 'cleared';
    if (shipment.status !== from) refuse('conflict', 'shipment-status', `shipment is ${shipment.status}`);
    const importLicence = this.side(shipment.importAllocationId).licence;
    if (to === 'cleared' && !['issued', 'exhausted'].includes(importLicence.status)) refuse('licence_not_valid', 'licence-status', `import licence ${importLicence.id} is ${importLicence.status}`);
    if (to === 'cleared' && importLicence.validToMs <= this.nowMs) refuse('licence_not_valid', 'licence-validity', `import licence ${importLicence.id} has ended`);
    return this.step(shipment, to, to === 'delivered' ? { from: 'in_transit', to: 'delivered' } : undefined);
  }

  cancel(shipmentId: string, exporterOrgId: string): Record<string, unknown> {
    const shipment = this.exportersShipment(shipmentId, exporterOrgId);
    if (shipment.status !== 'booked') refuse('conflict', 'shipment-status', `shipment is ${shipment.status}`);
    // At its deadline a booking is expired in all but name: the sweep's, not its exporter's, to end.
    if (shipment.deadlineMs <= this.nowMs) refuse('conflict', 'booking-deadline', 'booking deadline passed');
    // Under a licence no longer in force (export side first), likewise: the sweep expires it.
    for (const id of [shipment.exportAllocationId, shipment.importAllocationId]) {
      const rule = this.lapsedRule(this.side(id).licence);
      if (rule !== null) refuse('licence_not_valid', rule, 'the booking can never ship: the sweep expires it');
    }
    this.release(shipment);
    return this.step(shipment, 'cancelled');
  }

  /**
   * A shipment turned back before clearance: its exporter records it, or the authority of its
   * import licence (any authority sees the shipment; another one is refused as no party). Its
   * units in transit come back; what it shipped stays counted, whatever the licences' status.
   */
  returnShipment(shipmentId: string, actorOrgId: string, actorIsAuthority: boolean): Record<string, unknown> {
    const shipment = actorIsAuthority ? (this.shipments.get(shipmentId) ?? notFound('unknown shipment')) : this.exportersShipment(shipmentId, actorOrgId);
    if (actorIsAuthority && this.side(shipment.importAllocationId).licence.authorityOrgId !== actorOrgId) refuse('forbidden', 'shipment-party', 'not the import licence\'s authority');
    if (shipment.status !== 'shipped') refuse('conflict', 'shipment-status', `shipment is ${shipment.status}`);
    return this.step(shipment, 'returned', { from: 'in_transit', to: 'returned' });
  }

  /** Why a licence no longer covers a booking, as the ledger names it; null while it may. */
  private lapsedRule(licence: ModelLicence): 'licence-status' | 'licence-validity' | null {
    if (['expired', 'revoked', 'surrendered'].includes(licence.status)) return 'licence-status';
    return licence.validToMs <= this.nowMs ? 'licence-validity' : null;
  }

  sweep(): Record<string, unknown> {
    const expiredShipments: string[] = [];
    const expiredLicences: string[] = [];
    // A booking expires at its deadline, or before it once either licence has ended
    // (expired, revoked, surrendered) or its validity has: it could never ship.
    const lapsed = (licence: ModelLicence) => this.lapsedRule(licence) !== null;
    for (const shipment of this.shipments.values()) {
      if (shipment.status !== 'booked') continue;
      const licences = [shipment.exportAllocationId, shipment.importAllocationId].map((id) => this.side(id).licence);
      if (shipment.deadlineMs > this.nowMs && !licences.some(lapsed)) continue;
      // Expired before its deadline: only a lapsed licence does that (coverage tells them apart).
      if (shipment.deadlineMs > this.nowMs) this.noted.push('shipment-expired-lapsed');
      this.release(shipment);
      this.step(shipment, 'expired');
      expiredShipments.push(shipment.id);
    }
    for (const licence of this.licences.values()) {
      if (!['issued', 'suspended', 'exhausted'].includes(licence.status) || licence.validToMs > this.nowMs) continue;
      licence.status = 'expired';
      expiredLicences.push(licence.id);
    }
    if (expiredShipments.length === 0 && expiredLicences.length === 0) refuse('conflict', 'sweep-nothing-due', 'nothing is due');
    // One event per expired record (each with its own readers); apply() counts the last.
    this.seq += expiredShipments.length + expiredLicences.length - 1;
    return { expiredShipments: expiredShipments.sort(), expiredLicences: expiredLicences.sort() };
  }

  allocate(input: { licenceId: string; recipientOrgId: string; units: number }, actorOrgId: string): Record<string, unknown> {
    const licence = this.licences.get(input.licenceId) ?? notFound('unknown licence');
    if (licence.authorityOrgId !== actorOrgId) forbidden('another authority');
    if (licence.status !== 'draft' && licence.status !== 'issued') refuse('conflict', 'licence-status', `licence is ${licence.status}`);
    // Its validity may have ended before the sweep marked it expired.
    if (this.nowMs >= licence.validToMs) refuse('conflict', 'licence-validity', 'licence validity ended');
    if (input.units > licence.authorisedUnits - licence.allocatedUnits) refuse('insufficient_units', 'invariant-1', 'licence has too few units unallocated');
    const allocation: ModelAllocation = { id: `A-${this.seq}`, licenceId: licence.id, recipientOrgId: input.recipientOrgId, units: input.units, reservedUnits: 0, shippedUnits: 0 };
    this.allocations.set(allocation.id, allocation);
    licence.allocatedUnits += input.units;
    return { allocationId: allocation.id, units: input.units };
  }

  resize(input: { allocationId: string; units: number }, actorOrgId: string): Record<string, unknown> {
    const { allocation, licence } = this.side(input.allocationId);
    if (licence.authorityOrgId !== actorOrgId) forbidden('another authority');
    // Growing hands out units: only a draft or issued licence still valid does. Shrinking always may.
    if (input.units > allocation.units && licence.status !== 'draft' && licence.status !== 'issued') refuse('conflict', 'licence-status', `licence is ${licence.status}`);
    if (input.units > allocation.units && this.nowMs >= licence.validToMs) refuse('conflict', 'licence-validity', 'licence validity ended');
    if (input.units < allocation.reservedUnits + allocation.shippedUnits) refuse('insufficient_units', 'invariant-2', 'below what is reserved or shipped');
    const allocated = licence.allocatedUnits - allocation.units + input.units;
    if (allocated > licence.authorisedUnits) refuse('insufficient_units', 'invariant-1', 'above what the licence has unallocated');
    allocation.units = input.units;
    licence.allocatedUnits = allocated;
    return { allocationId: allocation.id, units: input.units };
  }

  licenceStatus(licenceId: string, action: 'suspend' | 'reinstate' | 'revoke', actorOrgId: string): Record<string, unknown> {
    const licence = this.licences.get(licenceId) ?? notFound('unknown licence');
    if (licence.authorityOrgId !== actorOrgId) forbidden('another authority');
    const rules: Record<typeof action, { from: LicenceStatus[]; to: LicenceStatus }> = {
      suspend: { from: ['issued', 'exhausted'], to: 'suspended' },
      reinstate: { from: ['suspended'], to: 'issued' },
      revoke: { from: ['draft', 'issued', 'suspended', 'exhausted'], to: 'revoked' },
    };
    const rule = rules[action];
    if (!rule.from.includes(licence.status)) refuse('conflict', 'licence-status', `licence is ${licence.status}`);
    // A licence past its validity is expired in all but name: nothing puts it back in force, and
    // nothing but the sweep ends it (a draft aside, which the sweep never expires).
    if ((rule.to === 'issued' || licence.status !== 'draft') && licence.validToMs <= this.nowMs) refuse('conflict', 'licence-validity', 'licence validity ended');
    // Reinstated with every unit shipped, a licence has nothing left to give: exhausted.
    licence.status = rule.to === 'issued' && licence.shippedUnits === licence.authorisedUnits ? 'exhausted' : rule.to;
    return { licenceId: licence.id, status: licence.status };
  }

  /**
   * An amendment of a licence's units or validity (the ledger's other terms are not modelled).
   * Units never go below what is allocated or shipped (invariant 1); only a draft's start
   * changes (licence-status, judged after the units: the model's licences are issued from the
   * start, so a new validFrom is always refused here); a licence whose validity
   * ended is in force no more, and no amendment puts it back, nor ends one in force by a
   * validity that ends at once (licence-validity); exhaustion is
   * decided afresh: cut to what has shipped, an issued licence is exhausted, and an exhausted
   * one given units again is issued.
   */
  amend(input: { licenceId: string; authorisedUnits?: number; validFromMs?: number; validToMs?: number }, actorOrgId: string): Record<string, unknown> {
    const licence = this.licences.get(input.licenceId) ?? notFound('unknown licence');
    if (licence.authorityOrgId !== actorOrgId) forbidden('another authority');
    if (!amendable.includes(licence.status)) refuse('conflict', 'licence-status', `licence is ${licence.status}`);
    // A draft is not in force yet: its validity may still be set.
    if (licence.status !== 'draft' && licence.validToMs <= this.nowMs) refuse('conflict', 'licence-validity', 'licence validity ended');
    const units = input.authorisedUnits ?? licence.authorisedUnits;
    if (units < Math.max(licence.allocatedUnits, licence.shippedUnits)) refuse('insufficient_units', 'invariant-1', 'below what is allocated or shipped');
    // A start is a draft's to change: once issued, the licence was used under it.
    if (input.validFromMs !== undefined && licence.status !== 'draft') refuse('conflict', 'licence-status', `licence is ${licence.status}, not a draft`);
    const validFromMs = input.validFromMs ?? licence.validFromMs;
    const validToMs = input.validToMs ?? licence.validToMs;
    if (validToMs <= validFromMs) refuse('invalid_input', 'licence-validity', 'validity would end before it starts');
    // Nor does an amendment end a licence in force: that is revoke's (or surrender's).
    if (input.validToMs !== undefined && licence.status !== 'draft' && validToMs <= this.nowMs) refuse('invalid_input', 'licence-validity', 'validity would end now');
    const usedUp = licence.shippedUnits === units;
    if (licence.status === 'exhausted' && !usedUp) {
      licence.status = 'issued';
      this.noted.push('licence-reissued');
    } else if (licence.status === 'issued' && usedUp) {
      licence.status = 'exhausted';
    }
    licence.authorisedUnits = units;
    licence.validFromMs = validFromMs;
    licence.validToMs = validToMs;
    licence.version += 1;
    return { licenceId: licence.id, version: licence.version, status: licence.status };
  }

  deploy(input: { siteId: string; serials: string[] }, actorOrgId: string): Record<string, unknown> {
    const site = this.sites.get(input.siteId);
    if (!site || site.orgId !== actorOrgId) notFound('unknown site');
    const units = this.ownUnits(input.serials, actorOrgId);
    for (const unit of units) {
      if (unit.siteId === site!.id) refuse('conflict', 'unit-custody', `unit ${unit.serial} is already there`);
      if (unit.custody !== 'delivered' && unit.custody !== 'deployed') refuse('conflict', 'unit-custody', `unit ${unit.serial} is ${unit.custody}`);
      // A unit's shipment went to its recipient's country; it is deployed only there.
      if (this.countries.get(unit.recipientOrgId) !== site!.country) refuse('licence_not_valid', 'deployment-destination', `site ${site!.id} is abroad`);
    }
    if (site!.deployedUnits + units.length > site!.capacityUnits) refuse('insufficient_units', 'site-capacity', 'site is full');
    let moved = 0;
    for (const unit of units) {
      if (unit.siteId !== null) {
        this.sites.get(unit.siteId)!.deployedUnits -= 1;
        moved += 1;
      }
      unit.custody = 'deployed';
      unit.siteId = site!.id;
    }
    site!.deployedUnits += units.length;
    return { siteId: site!.id, deployed: units.length, moved };
  }

  /**
   * A recipient's units leave use: decommissioned or returned once delivered, lost from the
   * moment they ship. Only the recipient acts (another's units are unknown to it); a returned
   * unit may be listed again by its exporter.
   */
  endUnits(serials: string[], to: 'decommissioned' | 'returned' | 'lost', actorOrgId: string): Record<string, unknown> {
    const units = this.ownUnits(serials, actorOrgId);
    for (const unit of units) {
      if (!endsFrom[to].includes(unit.custody)) refuse('conflict', 'unit-custody', `unit ${unit.serial} is ${unit.custody}`);
    }
    // A return or a loss is read by the units' exporter, who may fetch the event's serial list:
    // units of two exporters are reported apart.
    const exporters = new Set(units.map((unit) => this.shipments.get(unit.shipmentId)!.exporterOrgId));
    if (to !== 'decommissioned' && exporters.size > 1) refuse('conflict', 'unit-exporter', `units of ${exporters.size} exporters`);
    // A return or a loss is read by the exporter too: the sites the units left go in a second
    // event, the recipient's alone (when some unit was at a site); apply() counts the first.
    if (to !== 'decommissioned' && units.some((unit) => unit.siteId !== null)) this.seq += 1;
    for (const unit of units) {
      if (unit.custody === 'in_transit') this.noted.push('lost-in-transit');
      if (unit.siteId !== null) this.sites.get(unit.siteId)!.deployedUnits -= 1;
      unit.custody = to;
      unit.siteId = null;
    }
    return { count: units.length, custody: to };
  }

  private ownUnits(serials: string[], actorOrgId: string): ModelUnit[] {
    const seen = new Set<string>();
    return serials.map((serial) => {
      if (seen.has(serial)) refuse('conflict', 'invariant-4', `serial ${serial} listed twice`);
      seen.add(serial);
      const unit = this.units.get(serial);
      if (!unit || unit.recipientOrgId !== actorOrgId) return notFound(`unit ${serial} unknown`);
      return unit;
    });
  }

  private side(allocationId: string): { allocation: ModelAllocation; licence: ModelLicence } {
    const allocation = this.allocations.get(allocationId) ?? notFound(`unknown allocation ${allocationId}`);
    return { allocation, licence: this.licences.get(allocation.licenceId)! };
  }

  private release(shipment: ModelShipment): void {
    for (const allocationId of [shipment.exportAllocationId, shipment.importAllocationId]) this.side(allocationId).allocation.reservedUnits -= shipment.units;
  }

  /** Moves a shipment on; custody follows for its units; a dead shipment frees its serials. */
  private step(shipment: ModelShipment, to: ShipmentStatus, custody?: { from: Custody; to: Custody }): Record<string, unknown> {
    shipment.status = to;
    if (custody) {
      for (const unit of this.units.values()) {
        if (unit.shipmentId !== shipment.id || unit.custody !== custody.from) continue;
        unit.custody = custody.to;
        if (custody.to === 'in_transit') {
          unit.everShipped = true;
          unit.gpuUuidShipped = unit.gpuUuid !== null;
        }
      }
    }
    if (!['booked', 'shipped', 'cleared'].includes(to)) {
      for (const [serial, shipmentId] of [...this.live]) if (shipmentId === shipment.id) this.live.delete(serial);
    }
    // Ended unshipped, a booking lets go of what it claimed: GPU UUIDs that never shipped
    // (on a unit that never shipped, or one returned and listed again) are let go until listed again.
    if (to === 'cancelled' || to === 'expired') {
      for (const unit of this.units.values()) if (unit.shipmentId === shipment.id && !unit.gpuUuidShipped) unit.gpuUuid = null;
    }
    return { shipmentId: shipment.id, status: to };
  }

  private snapshot(): string {
    return JSON.stringify({
      licences: [...this.licences], allocations: [...this.allocations], shipments: [...this.shipments],
      units: [...this.units], sites: [...this.sites], live: [...this.live],
    });
  }

  private restore(snapshot: string): void {
    const saved = JSON.parse(snapshot) as Record<'licences' | 'allocations' | 'shipments' | 'units' | 'sites' | 'live', Array<[string, never]>>;
    for (const name of ['licences', 'allocations', 'shipments', 'units', 'sites', 'live'] as const) {
      const map = this[name] as Map<string, unknown>;
      map.clear();
      for (const [key, value] of saved[name]) map.set(key, value);
    }
  }
}

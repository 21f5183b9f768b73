/**
 * One run's commands against a ledger and the model (Run): each generated command is resolved
 * into a submission and the model's expected outcome, a group is submitted at once, and every
 * answer is checked against the model and counted for coverage.
 */
import { isDeepStrictEqual } from 'node:util';
import type { DomainError } from '../../../src/core/errors.ts';
import { refusedSerialsListedMax } from '../../../src/ledger/handlers/manifests.ts';
import { type Answer, type Ledger } from '../../../src/ledger/ledger.ts';
import { systemActor, type Actor } from '../../../src/ledger/permissions.ts';
import type { ShipmentStatus } from '../../../src/ledger/rows.ts';
import type { CommandKind } from '../../../src/ledger/schemas.ts';
import type { World } from '../../world.ts';
import { answerWithin } from '../../support/answers.ts';
import { LedgerModel, type ModelShipment, type Outcome, type RefusedSerial } from './ledger-model.ts';
import {
  book, dayMs, hourMs, manifestInput, manifestOf, received, serialPool, unknownId,
  type By, type Command, type Pick, type Serials, type ShipmentPick, type Who, type Writer,
} from './commands.ts';
import type { Coverage } from './coverage.ts';
import { secondExporter } from './world.ts';

interface Submission {
  kind: CommandKind;
  input: Record<string, unknown>;
  actor: Actor;
  key?: string;
  expected: Outcome;
  /** For replays: the keyed submission whose answer must come back. */
  original?: { submission: Submission; answer: () => Answer | undefined };
  /** The status of the shipment it acts on, as the model had it (coverage: 'tried shipment.cancel on shipped'). */
  target?: ShipmentStatus;
  /** What its acceptance did beyond itself, by the model (coverage: 'effect licence-exhausted'). */
  effects?: string[];
  /** Refused for another exporter's unit: where the unit was ('live' or its custody; coverage: 'unit-owner on returned'). */
  ownerRefusedOn?: string;
}

/** For a manifest the model refused with rule unit-owner: where the serial it named was. */
function ownerRefusedOn(model: LedgerModel, expected: Outcome): { ownerRefusedOn?: string } {
  if (expected.ok || expected.rule !== 'unit-owner') return {};
  const serial = /^serial (\S+)/.exec(expected.reason)?.[1];
  const hold = serial === undefined ? undefined : model.holdOf(serial);
  return hold === undefined ? {} : { ownerRefusedOn: hold };
}

export class Run {
  readonly model: LedgerModel;
  private readonly keyed: Array<{ submission: Submission; answer: Answer | undefined }> = [];
  private keys = 0;
  readonly log: string[] = [];

  constructor(readonly world: World, seq: number, private readonly sites: string[], private readonly coverage: Coverage, private readonly ledgers: readonly Ledger[] = [world.ledger]) {
    this.model = new LedgerModel({ seq, nowMs: world.clock.now().getTime(), productId: world.productId });
  }

  private recipient(who: Who): Actor {
    return who === 0 ? this.world.actors.alpha : this.world.actors.beta;
  }

  private exporter(by: By): Actor {
    return by === 0 ? this.world.actors.exporter : secondExporter().actor;
  }

  /** The exporter of a shipment, who ships, cancels and lists serials in it (the first exporter for an unknown id). */
  private exporterOf(shipmentId: string): Actor {
    const shipment = this.model.shipments.get(shipmentId);
    return shipment?.exporterOrgId === secondExporter().actor.orgId ? secondExporter().actor : this.world.actors.exporter;
  }

  private authority(direction: 'export' | 'import', wrong: boolean): Actor {
    const { bis, mofcom } = this.world.actors;
    return (direction === 'export') !== wrong ? bis : mofcom;
  }

  private pickFrom(ids: string[], at: Pick, prefix: string): string {
    if (at < 0 || ids.length === 0) return unknownId(prefix);
    return ids[ids.length - 1 - (at % ids.length)]!;
  }

  /** `wanted`: the state the command needs, a status or (attach: booked with room left) a test. */
  private shipmentId(choice: ShipmentPick, wanted: ShipmentStatus | ((shipment: ModelShipment) => boolean)): string {
    const all = [...this.model.shipments.values()];
    const fits = (shipment: ModelShipment) => {
      if (choice.fit === 'received') return received.includes(shipment.status);
      if (choice.fit === 'wanted') return typeof wanted === 'function' ? wanted(shipment) : shipment.status === wanted;
      return choice.fit === 'any' || shipment.status === choice.fit;
    };
    // None fits: any shipment (a status refusal), rather than an unknown id, which picks of -1 cover.
    const shipments = all.some(fits) ? all.filter(fits) : all;
    return this.pickFrom(shipments.map((shipment) => shipment.id), choice.at, 'S');
  }

  /** The status of a shipment as the model has it now, for coverage; undefined for an unknown id. */
  private statusOf(shipmentId: string): ShipmentStatus | undefined {
    return this.model.shipments.get(shipmentId)?.status;
  }

  /**
   * Given serials as they are. Fit ones: free to list (for manifests) or the actor's
   * delivered or deployed units; clash ones: the others of the pool the model knows of.
   */
  private serials(choice: Serials, purpose: 'manifest' | { ownerOrgId: string; custodies?: readonly string[] }): string[] {
    if ('given' in choice) return choice.given;
    const { model } = this;
    const passes = (serial: string) => {
      const unit = model.units.get(serial);
      if (purpose === 'manifest') return !model.live.has(serial) && (!unit || unit.custody === 'licensed' || unit.custody === 'returned');
      return unit !== undefined && unit.recipientOrgId === purpose.ownerOrgId && (purpose.custodies ?? ['delivered', 'deployed']).includes(unit.custody);
    };
    const clash = 'clash' in choice;
    const again = 'again' in choice && purpose === 'manifest';
    const candidates = serialPool.filter((serial) => (clash ? model.units.has(serial) && !passes(serial) : passes(serial) && (!again || model.units.has(serial))));
    if (candidates.length === 0) return [serialPool[Math.max(choice.at, 0) % serialPool.length]!];
    const start = Math.max(choice.at, 0) % candidates.length;
    const count = 'clash' in choice ? choice.clash : 'again' in choice ? choice.again : choice.fit;
    return [...candidates.slice(start), ...candidates.slice(0, start)].slice(0, count);
  }

  /**
   * A recipient's allocations of one direction on licences the exporter may ship under;
   * `usable`: only those on licences issued and valid now (else all, if none is).
   */
  private allocationsOf(direction: 'export' | 'import', recipientOrgId: string, usable = false, exporterOrgId = this.world.actors.exporter.orgId): string[] {
    const { model } = this;
    const own = [...model.allocations.values()].filter((allocation) => {
      const licence = model.licences.get(allocation.licenceId)!;
      return licence.direction === direction && allocation.recipientOrgId === recipientOrgId && model.letsExporterShip(licence, exporterOrgId);
    });
    const inForce = own.filter((allocation) => {
      const licence = model.licences.get(allocation.licenceId)!;
      return licence.status === 'issued' && licence.validFromMs <= model.nowMs && model.nowMs < licence.validToMs;
    });
    return (usable && inForce.length > 0 ? inForce : own).map((allocation) => allocation.id);
  }

  /**
   * A direction's licences, oldest first, the second exporter's placed before all: picks
   * counted from the newest (0: the small export or short import licence, 1: the large one)
   * land where they did before it came.
   */
  private licencesOf(direction: 'export' | 'import'): string[] {
    const seconds = new Set(Object.values(secondExporter().licenceIds));
    const ids = [...this.model.licences.values()].filter((licence) => licence.direction === direction).map((licence) => licence.id);
    return [...ids.filter((id) => seconds.has(id)), ...ids.filter((id) => !seconds.has(id))];
  }

  /** Applies a command to the model, naming the licences it exhausted as effects (coverage). */
  private applyCounting(run: () => Record<string, unknown>): { expected: Outcome; effects: string[] } {
    const exhaustedBefore = new Set([...this.model.licences.values()].filter((licence) => licence.status === 'exhausted').map((licence) => licence.id));
    const expected = this.model.apply(run);
    const exhausted = [...this.model.licences.values()].filter((licence) => licence.status === 'exhausted' && !exhaustedBefore.has(licence.id));
    return { expected, effects: exhausted.map(() => 'licence-exhausted') };
  }

  private nextKey(): string {
    this.keys += 1;
    return `model-key-${this.keys}`;
  }

  /** Turns a generated command into a submission and the model's expected outcome. */
  resolve(command: Command): Submission | null {
    const { model, world } = this;
    switch (command.kind) {
      case 'book': {
        const exporter = this.exporter(command.by ?? 0);
        // The second exporter ships to beta unless a run gave it allocations for alpha too.
        const recipientOrgId = this.allocationsOf('export', this.recipient(command.recipient).orgId, false, exporter.orgId).length > 0
          ? this.recipient(command.recipient).orgId : world.actors.beta.orgId;
        const all = [...model.allocations.keys()];
        const importRecipientOrgId = command.importRecipient === undefined ? recipientOrgId : this.recipient(command.importRecipient).orgId;
        const among = (direction: 'export' | 'import') => (command.allocations === 'any' ? all
          : this.allocationsOf(direction, direction === 'import' ? importRecipientOrgId : recipientOrgId, command.allocations === 'usable', exporter.orgId));
        const picked = [this.pickFrom(among('export'), command.exportPick, 'A'), this.pickFrom(among('import'), command.importPick, 'A')] as const;
        const [exportAllocationId, importAllocationId] = command.swapped ? [picked[1], picked[0]] : picked;
        const manifest = command.serials === null ? undefined : manifestOf(this.serials(command.serials, 'manifest'), command.gpu ?? 'none');
        const units = command.units === 'fit' ? (manifest?.length ?? 1) : command.units;
        const deadlineMs = model.nowMs + command.deadlineMs;
        const productId = command.unknownProduct ? unknownId('P') : world.productId;
        const input = {
          exportAllocationId, importAllocationId, productId, units, deadline: new Date(deadlineMs).toISOString(),
          ...(manifest ? { serials: manifestInput(manifest) } : {}),
        };
        const expected = model.apply(() => model.book({ exportAllocationId, importAllocationId, productId, units, deadlineMs, ...(manifest ? { serials: manifest } : {}) }, exporter.orgId));
        return { kind: 'shipment.book', input, actor: exporter, expected, ...ownerRefusedOn(model, expected), ...(command.keyed ? { key: this.nextKey() } : {}) };
      }
      case 'attach': {
        const shipmentId = this.shipmentId(command.shipmentPick, (shipment) => shipment.status === 'booked' && shipment.serialCount < shipment.units);
        const target = this.statusOf(shipmentId);
        const shipment = model.shipments.get(shipmentId);
        // Fit and clashing serials fit the room left (so that the serials themselves are
        // checked); given lists may overflow it.
        const room = shipment ? shipment.units - shipment.serialCount : 0;
        const within = (count: number) => (room > 0 ? Math.min(count, room) : count);
        const choice = 'fit' in command.serials ? { ...command.serials, fit: within(command.serials.fit) }
          : 'clash' in command.serials ? { ...command.serials, clash: within(command.serials.clash) }
          : 'again' in command.serials ? { ...command.serials, again: within(command.serials.again) } : command.serials;
        const manifest = manifestOf(this.serials(choice, 'manifest'), command.gpu ?? 'none');
        const exporter = this.exporterOf(shipmentId);
        const expected = model.apply(() => model.attach({ shipmentId, serials: manifest }, exporter.orgId));
        return { kind: 'manifest.attach', input: { shipmentId, serials: manifestInput(manifest) }, actor: exporter, expected, ...ownerRefusedOn(model, expected), ...(target ? { target } : {}) };
      }
      case 'ship':
      case 'cancel': {
        const shipmentId = this.shipmentId(command.shipmentPick, 'booked');
        const target = this.statusOf(shipmentId);
        const exporter = this.exporterOf(shipmentId);
        const { expected, effects } = this.applyCounting(() => (command.kind === 'ship' ? model.ship(shipmentId, exporter.orgId) : model.cancel(shipmentId, exporter.orgId)));
        return { kind: `shipment.${command.kind}`, input: { shipmentId }, actor: exporter, expected, effects, ...(target ? { target } : {}), ...(command.keyed ? { key: this.nextKey() } : {}) };
      }
      case 'clear':
      case 'deliver': {
        const shipmentId = this.shipmentId(command.shipmentPick, command.kind === 'clear' ? 'shipped' : 'cleared');
        const target = this.statusOf(shipmentId);
        const owner = model.shipments.get(shipmentId)?.recipientOrgId ?? world.actors.alpha.orgId;
        const ownerIsAlpha = owner === world.actors.alpha.orgId;
        const actor = this.recipient((ownerIsAlpha !== command.otherRecipient ? 0 : 1) as Who);
        const expected = model.apply(() => model.receive(shipmentId, actor.orgId, command.kind === 'clear' ? 'cleared' : 'delivered'));
        return { kind: `shipment.${command.kind}`, input: { shipmentId }, actor, expected, ...(target ? { target } : {}) };
      }
      case 'return': {
        const shipmentId = this.shipmentId(command.shipmentPick, 'shipped');
        const target = this.statusOf(shipmentId);
        const byAuthority = command.by !== 'exporter';
        const actor = byAuthority ? this.authority('import', command.by === 'exportAuthority') : this.exporterOf(shipmentId);
        const expected = model.apply(() => model.returnShipment(shipmentId, actor.orgId, byAuthority));
        return { kind: 'shipment.return', input: { shipmentId, reason: 'entry refused at the border' }, actor, expected, ...(target ? { target } : {}) };
      }
      case 'sweep':
        return { kind: 'ledger.sweep', input: {}, actor: systemActor, expected: model.apply(() => model.sweep()) };
      case 'allocate': {
        const direction = command.direction === 'unknown' ? 'export' : command.direction;
        const licenceId = command.direction === 'unknown' ? unknownId('L') : this.pickFrom(this.licencesOf(direction), command.licencePick, 'L');
        const actor = this.authority(direction, command.wrongAuthority);
        const input = { licenceId, recipientId: this.recipient(command.recipient).orgId, units: command.units };
        return { kind: 'allocation.create', input, actor, expected: model.apply(() => model.allocate({ licenceId, recipientOrgId: input.recipientId, units: input.units }, actor.orgId)) };
      }
      case 'resize': {
        const allocationId = this.pickFrom([...model.allocations.keys()], command.allocationPick, 'A');
        const allocation = model.allocations.get(allocationId);
        const direction = allocation ? model.licences.get(allocation.licenceId)!.direction : 'export';
        const actor = this.authority(direction, command.wrongAuthority);
        return { kind: 'allocation.resize', input: { allocationId, units: command.units }, actor, expected: model.apply(() => model.resize({ allocationId, units: command.units }, actor.orgId)) };
      }
      case 'licence': {
        const suspended = [...model.licences.values()].find((licence) => licence.status === 'suspended');
        const action = command.action !== 'toggle' ? command.action : suspended ? 'reinstate' : 'suspend';
        const licenceId = command.action === 'toggle' && suspended ? suspended.id : this.pickFrom(this.licencesOf(command.direction), command.licencePick, 'L');
        const direction = model.licences.get(licenceId)?.direction ?? command.direction;
        const actor = this.authority(direction, command.wrongAuthority);
        const { expected, effects } = this.applyCounting(() => model.licenceStatus(licenceId, action, actor.orgId));
        return { kind: `licence.${action}`, input: { licenceId }, actor, expected, effects };
      }
      case 'deploy': {
        const actor = this.recipient(command.recipient);
        const siteId = this.pickFrom(this.sites, command.sitePick, 'SITE');
        const serials = this.serials(command.serials, { ownerOrgId: actor.orgId });
        return { kind: 'units.deploy', input: { siteId, serials }, actor, expected: model.apply(() => model.deploy({ siteId, serials }, actor.orgId)) };
      }
      case 'decommission': {
        const actor = this.recipient(command.recipient);
        const serials = this.serials(command.serials, { ownerOrgId: actor.orgId });
        const input = { serials, reason: 'end of service life' };
        return { kind: 'units.decommission', input, actor, expected: model.apply(() => model.endUnits(serials, 'decommissioned', actor.orgId)) };
      }
      case 'end': {
        const actor = this.recipient(command.recipient);
        // Fit: the actor's units this ending takes (a loss from in transit on).
        const custodies = command.to === 'lost' ? ['in_transit', 'delivered', 'deployed'] : ['delivered', 'deployed'];
        const serials = this.serials(command.serials, { ownerOrgId: actor.orgId, custodies });
        const input = { serials, reason: command.to === 'lost' ? 'not found at the site' : 'faulty on arrival' };
        const kind = command.to === 'lost' ? 'units.report_lost' : 'units.return';
        return { kind, input, actor, expected: model.apply(() => model.endUnits(serials, command.to, actor.orgId)) };
      }
      case 'amend': {
        const licenceId = this.pickFrom(this.licencesOf(command.direction), command.licencePick, 'L');
        const licence = model.licences.get(licenceId);
        const actor = this.authority(licence?.direction ?? command.direction, command.wrongAuthority);
        // At least 1: a licence whose allocations were all resized to nothing uses none, and an
        // authorisedUnits of 0 is the schema's refusal, before any rule the model follows.
        const used = licence ? Math.max(licence.allocatedUnits, licence.shippedUnits, 1) : 1;
        const units = {
          same: undefined, used, shipped: Math.max(licence?.shippedUnits ?? 1, 1), below: Math.max(used - 1, 1), more: (licence?.authorisedUnits ?? 1) + 5,
        }[command.units];
        const validToMs = {
          same: undefined, later: (licence?.validToMs ?? model.nowMs) + 30 * dayMs, soon: model.nowMs + hourMs / 2, ended: model.nowMs - hourMs,
          beforeStart: (licence?.validFromMs ?? model.nowMs) - dayMs,
        }[command.validTo];
        const start = licence?.validFromMs ?? model.nowMs;
        const validFromMs = { same: undefined, earlier: start - dayMs, later: start + dayMs }[command.validFrom ?? 'same'];
        const input = {
          licenceId, reason: 'calibrated quota', ...(units === undefined ? {} : { authorisedUnits: units }),
          ...(validFromMs === undefined ? {} : { validFrom: new Date(validFromMs).toISOString() }),
          ...(validToMs === undefined ? {} : { validTo: new Date(validToMs).toISOString() }),
        };
        const { expected, effects } = this.applyCounting(() => model.amend({
          licenceId, ...(units === undefined ? {} : { authorisedUnits: units }), ...(validFromMs === undefined ? {} : { validFromMs }), ...(validToMs === undefined ? {} : { validToMs }),
        }, actor.orgId));
        return { kind: 'licence.amend', input, actor, expected, effects };
      }
      case 'progress': {
        const live = [...model.shipments.values()].filter((shipment) => ['booked', 'shipped', 'cleared'].includes(shipment.status));
        const inService = [...model.units.values()].filter((unit) => unit.custody === 'delivered' || unit.custody === 'deployed');
        const at = Math.max(command.at, 0);
        // A live shipment's next step two times in three, if there is one: units are in service from the start.
        if (inService.length > 0 && (live.length === 0 || command.choice % 3 === 0)) {
          // Deploy a delivered unit, move a deployed one to another site of its owner, or decommission it.
          const unit = inService[command.choice % inService.length]!;
          const owner: Who = unit.recipientOrgId === world.actors.alpha.orgId ? 0 : 1;
          if (unit.custody === 'deployed' && command.choice % 4 === 0) return this.resolve({ kind: 'decommission', recipient: owner, serials: { given: [unit.serial] } });
          // At home: a site abroad is the random deployments' to try (deployment-destination).
          const home = model.countries.get(unit.recipientOrgId);
          const sites = [...model.sites.values()].filter((site) => site.orgId === unit.recipientOrgId && site.id !== unit.siteId && site.country === home).map((site) => site.id);
          const siteId = sites[command.choice % sites.length];
          if (siteId === undefined) return this.resolve({ kind: 'decommission', recipient: owner, serials: { given: [unit.serial] } });
          return this.resolve({ kind: 'deploy', recipient: owner, sitePick: this.sites.length - 1 - this.sites.indexOf(siteId), serials: { given: [unit.serial] } });
        }
        const shipment = live[live.length - 1 - (at % Math.max(live.length, 1))];
        if (!shipment) return null;
        const shipmentPick: ShipmentPick = { fit: 'any', at: [...model.shipments.keys()].reverse().indexOf(shipment.id) };
        if (shipment.status === 'booked' && shipment.serialCount < shipment.units) {
          return this.resolve({ kind: 'attach', shipmentPick, serials: { fit: shipment.units - shipment.serialCount, at: command.at } });
        }
        if (shipment.status === 'booked') return this.resolve({ kind: 'ship', shipmentPick, keyed: command.choice % 2 === 0 });
        return this.resolve({ kind: shipment.status === 'shipped' ? 'clear' : 'deliver', shipmentPick, otherRecipient: false });
      }
      case 'lapse': {
        const large = new Set([world.exportLicenceId, world.importLicenceId, ...Object.values(secondExporter().licenceIds)]);
        const licenceOf = (allocationId: string) => model.licences.get(model.allocations.get(allocationId)!.licenceId)!;
        const licences = [...model.shipments.values()].reverse()
          .filter((shipment) => shipment.status === 'booked' && shipment.deadlineMs > model.nowMs)
          .flatMap((shipment) => [licenceOf(shipment.exportAllocationId), licenceOf(shipment.importAllocationId)]);
        const inForce = (licence: { status: string; validToMs: number }) => ['issued', 'suspended', 'exhausted'].includes(licence.status) && licence.validToMs > model.nowMs;
        if (licences.some((licence) => !inForce(licence))) return this.resolve({ kind: 'sweep' });
        const lapsing = licences.find((licence) => !large.has(licence.id));
        if (!lapsing) {
          // Book a unit under the short import licence (and the large export one), for a later lapse to end.
          const shortImport = [...model.licences.values()].find((licence) => licence.direction === 'import' && !large.has(licence.id) && inForce(licence));
          if (!shortImport) return null;
          const recipient = ([0, 1] as const).find((who) => [...model.allocations.values()].some((allocation) =>
            allocation.licenceId === shortImport.id && allocation.recipientOrgId === this.recipient(who).orgId && allocation.units > allocation.reservedUnits + allocation.shippedUnits));
          if (recipient === undefined) return null;
          const orgId = this.recipient(recipient).orgId;
          const at = (ids: string[], wanted: (licenceId: string) => boolean) => ids.length - 1 - ids.findIndex((id) => wanted(model.allocations.get(id)!.licenceId));
          const picks = { exportPick: at(this.allocationsOf('export', orgId), (id) => id === world.exportLicenceId), importPick: at(this.allocationsOf('import', orgId), (id) => id === shortImport.id) };
          // Its deadline no later than the licence's end (a booking cannot outlast its licences):
          // the lapse that follows ends the licence before it.
          return this.resolve(book(recipient, 1, null, Math.min(20 * dayMs, shortImport.validToMs - model.nowMs), false, picks));
        }
        const licencePick = this.licencesOf(lapsing.direction).reverse().indexOf(lapsing.id);
        if (command.how === 'revoke') return this.resolve({ kind: 'licence', action: 'revoke', direction: lapsing.direction, licencePick, wrongAuthority: false });
        // An amendment may not end a licence at once (that is revoke's): it ends it within the
        // half hour, and a sweep after the next advance expires the booking.
        return this.resolve({ kind: 'amend', direction: lapsing.direction, licencePick, units: 'same', validTo: 'soon', wrongAuthority: false });
      }
      case 'replay': {
        if (this.keyed.length === 0) return null;
        const entry = this.keyed[this.keyed.length - 1 - (Math.max(command.pick, 0) % this.keyed.length)]!;
        const original = entry.submission;
        // Changed: the same key with another body, which must be refused and change nothing.
        const changedField = original.kind === 'shipment.book' ? 'reference' : 'reason';
        const input = command.changed ? { ...original.input, [changedField]: 'a different request' } : original.input;
        const expected: Outcome = command.changed ? { ok: false, code: 'idempotency_mismatch', rule: 'invariant-6', reason: 'same key, different body' } : original.expected;
        return { kind: original.kind, input, actor: original.actor, key: original.key!, expected, original: { submission: original, answer: () => entry.answer } };
      }
    }
  }

  /** Submits a group at once, in order; then compares every answer with the model's. */
  async runGroup(commands: Command[], writer: Writer = 0): Promise<void> {
    const ledger = this.ledgers[writer] ?? this.world.ledger;
    if (writer !== 0) this.log.push(`(the second ledger takes this group)`);
    let submissions: Submission[] = [];
    let promises: Array<Promise<Answer>> = [];
    let entries: Array<{ submission: Submission; answer: Answer | undefined } | undefined> = [];
    const settle = async () => {
      const answers = await answerWithin(Promise.all(promises), 5_000);
      answers.forEach((answer, index) => {
        if (entries[index]) entries[index]!.answer = answer;
      });
      answers.forEach((answer, index) => this.check(submissions[index]!, answer));
      [submissions, promises, entries] = [[], [], []];
    };
    for (const generated of commands.flatMap((command): Command[] => (command.kind === 'lapse' ? [command, command, command] : [command]))) {
      const submission = this.resolve(generated);
      if (submission === null) continue;
      submissions.push(submission);
      promises.push(ledger.submit(submission.kind, submission.input as never, submission.actor, submission.key));
      const entry = submission.key !== undefined && submission.original === undefined ? { submission, answer: undefined } : undefined;
      if (entry) this.keyed.push(entry);
      entries.push(entry);
    }
    await settle();
  }

  private check(submission: Submission, answer: Answer): void {
    const { expected } = submission;
    const described = `${submission.kind} ${JSON.stringify(submission.input)}${submission.key ? ` key ${submission.key}` : ''}`;
    const answered = answer.ok ? JSON.stringify(answer.body) : `${answer.error.code} (${answer.error.rule ?? 'no rule'}): ${answer.error.message}`;
    this.log.push(`${described} -> ${answered}`);
    const actual = answer.ok
      ? { ok: true, body: normalise(Object.fromEntries(Object.keys(expected.ok ? expected.body : {}).map((key) => [key, answer.body[key]]))) }
      : { ok: false, code: answer.error.code, rule: answer.error.rule ?? null, ...(!expected.ok && expected.serials ? { serials: serialsNamed(answer.error) } : {}) };
    const wanted = expected.ok ? { ok: true, body: expected.body } : { ok: false, code: expected.code, rule: expected.rule, ...(expected.serials ? { serials: serialsToName(expected.serials) } : {}) };
    if (!isDeepStrictEqual(actual, wanted)) {
      throw new Error(`the ledger and the model disagree on ${described}:\n  model:  ${JSON.stringify(expected)}\n  ledger: ${answered}\n${this.history()}`);
    }
    if (submission.original && expected.ok) {
      const first = submission.original.answer();
      if (!answer.replayed || !first || !isDeepStrictEqual(answer.ok && answer.body, first.ok && first.body)) {
        throw new Error(`a retry with key ${submission.key} did not replay the first answer: first ${JSON.stringify(first)}, retry ${JSON.stringify(answer)}\n${this.history()}`);
      }
      this.coverage.add('replayed');
    }
    this.count(submission, answer);
  }

  /** Coverage of one answer that agreed with the model. */
  private count(submission: Submission, answer: Answer): void {
    const { coverage } = this;
    if (submission.target) coverage.add(`tried ${submission.kind} on ${submission.target}`);
    // The second exporter's commands apart too: a generator that stopped letting it act would hide among the first's.
    const second = submission.actor === secondExporter().actor ? 'second-exporter ' : '';
    if (!answer.ok) {
      coverage.add(`refused ${submission.kind} ${answer.error.code} ${answer.error.rule ?? '-'}`);
      if (second) coverage.add(`${second}refused ${submission.kind}`);
      if (submission.ownerRefusedOn) coverage.add(`unit-owner on ${submission.ownerRefusedOn}`);
      const refusedSerials = submission.expected.ok ? [] : submission.expected.serials ?? [];
      if (refusedSerials.length > 1) coverage.add('manifest refused-serials several');
      if (new Set(refusedSerials.map(({ rule }) => rule)).size > 1) coverage.add('manifest refused-serials mixed-rules');
      return;
    }
    if (submission.original) return;
    coverage.add(`accepted ${submission.kind}`);
    if (second) coverage.add(`${second}accepted ${submission.kind}`);
    for (const effect of submission.effects ?? []) coverage.add(`effect ${effect}`);
    for (const effect of submission.expected.ok ? submission.expected.effects : []) coverage.add(`effect ${effect}`);
    if (submission.kind === 'ledger.sweep') {
      // At their deadline ('shipment-expired') apart from before it, for a lapsed licence (the
      // model's effect 'shipment-expired-lapsed', counted above): a generator that stopped
      // reaching either would otherwise hide behind the other.
      const lapsed = (submission.expected.ok ? submission.expected.effects : []).filter((effect) => effect === 'shipment-expired-lapsed').length;
      coverage.add('effect shipment-expired', (answer.body.expiredShipments as string[]).length - lapsed);
      coverage.add('effect licence-expired', (answer.body.expiredLicences as string[]).length);
    }
    if (submission.kind === 'units.deploy') coverage.add('effect unit-moved', Number(answer.body.moved));
  }

  history(): string {
    return `commands so far:\n${this.log.map((line, index) => `  ${index + 1}. ${line}`).join('\n')}`;
  }
}

/**
 * What a manifest's refusal names, as the ledger gives it: a lone bad serial's own refusal
 * (details.serial), or every listed one with its rule (details.serials) and a count of the
 * rest (details.more). A lone GPU UUID given twice names the UUID, not a serial: the model's
 * manifests never give one (each serial has its own GPU UUIDs, commands.ts).
 */
function serialsNamed(error: DomainError): { named: Array<{ serial: unknown; rule: unknown }>; more: unknown } {
  const details = error.details ?? {};
  if (!Array.isArray(details.serials)) return { named: [{ serial: details.serial, rule: error.rule }], more: 0 };
  return { named: (details.serials as Array<Record<string, unknown>>).map(({ serial, rule }) => ({ serial, rule })), more: details.more };
}

/** What the ledger should name of the serials the model refused: the first refusedSerialsListedMax, and a count of the others. */
function serialsToName(serials: RefusedSerial[]): { named: RefusedSerial[]; more: number } {
  return { named: serials.slice(0, refusedSerialsListedMax), more: Math.max(serials.length - refusedSerialsListedMax, 0) };
}

function normalise(body: Record<string, unknown>): Record<string, unknown> {
  const copy = { ...body };
  for (const key of ['expiredShipments', 'expiredLicences']) if (Array.isArray(copy[key])) copy[key] = [...(copy[key] as string[])].sort();
  return copy;
}

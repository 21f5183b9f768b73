/**
 * One load of the demo scenario (scenario.ts), step by step through the ledger: organisations
 * and their tokens, the catalogue, licences and allocations, sites, shipments moved along to
 * where the scenario leaves them, deployments, and the expiry of one booking. load.ts decides
 * whether to load (under its lock, into an empty database) and runs this.
 */
import { limits } from '../core/limits.ts';
import { loadAcceleratorCatalogue } from '../policy/catalogue.ts';
import type { Answer, Ledger } from '../ledger/ledger.ts';
import { systemActor, type Actor } from '../ledger/permissions.ts';
import { nothingDueRule } from '../ledger/handlers/sweep.ts';
import type { ShipmentStatus } from '../ledger/rows.ts';
import type { CommandKind, CommandRequest } from '../ledger/schemas.ts';
import { shipmentStatuses } from '../store/demo-queries.ts';
import { createToken, DemoLoadError, partyOf, refusedError, type DemoToken } from './parties.ts';
import * as scenario from './scenario.ts';
import type { CompanyKey, DemoShipment, OrgKey } from './scenario.ts';

const dayMs = 86_400_000;
/** The rule shipment.book names when it refuses a deadline (handlers/shipments.ts). */
const bookingDeadlineRule = 'booking-deadline';

/** What a load may be given: its clock, its sleep and where its progress lines go. */
export interface LoaderOptions {
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** Progress lines ("registering organisations", ...), and a wait for another load. */
  log?: (line: string) => void;
}

/** A load done: every organisation's token, the shipments by status, the serials and the events it made. */
export interface LoadedDemo {
  loaded: true;
  tokens: DemoToken[];
  shipments: Record<ShipmentStatus, number>;
  serials: number;
  events: number;
}

/** One load: the ids and actors it made, and the steps in order. */
export class Loader {
  private readonly now: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log: (line: string) => void;
  private readonly orgIds = new Map<OrgKey, string>();
  private readonly actors = new Map<OrgKey, Actor>();
  private readonly tokens: DemoToken[] = [];
  private readonly siteIds = new Map<string, string>();
  private readonly shipmentIds = new Map<string, string>();
  private readonly allocationIds = new Map<`${'export' | 'import'}:${CompanyKey}`, string>();
  private productId = '';
  private firstSeq = -1;
  private lastSeq = -1;

  constructor(private readonly ledger: Ledger, options: LoaderOptions) {
    this.now = options.now ?? (() => new Date());
    this.sleep = options.sleep ?? ((ms) => new Promise((done) => setTimeout(done, ms)));
    this.log = options.log ?? (() => {});
  }

  async run(): Promise<LoadedDemo> {
    await this.organisationsAndTokens();
    await this.products();
    await this.licences();
    await this.sitesOfCompanies();
    const expiresAt = await this.shipments();
    await this.deployments();
    await this.expiry(expiresAt);
    const shipments = Object.fromEntries(scenario.demoStatuses.map((status) => [status, scenario.shipments.filter((s) => s.status === status).length])) as Record<ShipmentStatus, number>;
    const serials = scenario.shipments.reduce((sum, shipment) => sum + shipment.attached, 0);
    return { loaded: true, tokens: this.tokens, shipments, serials, events: this.lastSeq - this.firstSeq + 1 };
  }

  private async submit<K extends CommandKind>(kind: K, input: CommandRequest<K>, actor: Actor): Promise<Record<string, unknown>> {
    const answer = await this.attempt(kind, input, actor);
    if (!answer.ok) throw refusedError(kind, answer.error);
    return answer.body;
  }

  /** Submits a command; an accepted one counts towards the events the load made. */
  private async attempt<K extends CommandKind>(kind: K, input: CommandRequest<K>, actor: Actor): Promise<Answer> {
    const answer = await this.ledger.submit(kind, input, actor);
    if (!answer.ok) return answer;
    if (this.firstSeq === -1 || answer.seq < this.firstSeq) this.firstSeq = answer.seq;
    this.lastSeq = Math.max(this.lastSeq, answer.seq);
    return answer;
  }

  private actor(key: OrgKey): Actor {
    const actor = this.actors.get(key);
    if (!actor) throw new Error(`demo actor ${key} is used before its token exists`);
    return actor;
  }

  private orgId(key: OrgKey): string {
    return this.actor(key).orgId;
  }

  /** Organisations, then one token each: its actor for the rest of the load. */
  private async organisationsAndTokens(): Promise<void> {
    this.log('registering organisations and their tokens');
    const registered = await Promise.all(scenario.organisations.map((org) => this.submit('organisation.register', {
      name: org.name,
      ...(org.nameRomanised ? { nameRomanised: org.nameRomanised } : {}),
      country: org.country,
      roles: org.roles,
      identifiers: org.uscc ? { uscc: org.uscc } : {},
      address: org.address,
      demo: true,
    }, systemActor)));
    scenario.organisations.forEach((org, index) => this.orgIds.set(org.key, String(registered[index]!.organisationId)));
    const tokens = await Promise.all(scenario.organisations.map((org) => createToken(this.ledger, partyOf(org, this.orgIds.get(org.key)!))));
    scenario.organisations.forEach((org, index) => {
      const token = tokens[index]!;
      this.tokens.push(token);
      this.actors.set(org.key, { id: token.tokenId, orgId: token.organisationId, role: token.role });
    });
  }

  private async products(): Promise<void> {
    this.log('registering the accelerator catalogue');
    const catalogue = await loadAcceleratorCatalogue();
    const answers = await Promise.all(catalogue.map((product) => this.submit('product.register', {
      model: product.model,
      vendor: product.vendor,
      parameters: {
        denseTops: product.datasheet.denseTops,
        bitLength: product.datasheet.bitLength,
        logicDieAreaMm2: product.datasheet.logicDieAreaMm2,
        dramBandwidthGbS: product.datasheet.dramBandwidthGbS,
        memoryGb: product.memoryGb,
        designedForDatacenter: product.datasheet.designedForDatacenter,
      },
      demo: true,
    }, this.actor('bis'))));
    const index = catalogue.findIndex((product) => product.model === scenario.licensedModel);
    if (index === -1) throw new DemoLoadError(`the accelerator catalogue has no ${scenario.licensedModel}`);
    this.productId = String(answers[index]!.productId);
    await Promise.all(scenario.companies.map((company) => this.submit('organisation.set_kyc', { organisationId: this.orgId(company), verified: true }, this.actor('bis'))));
  }

  /** The two licences of the seed, issued, and the same three allocations on each. */
  private async licences(): Promise<void> {
    this.log('issuing the export and import licences and allocating them');
    const now = this.now().getTime();
    const common = {
      productIds: [this.productId],
      origin: 'US',
      destination: 'CN',
      authorisedUnits: scenario.licensedUnits,
      validFrom: new Date(now - scenario.licenceStartedDaysAgo * dayMs).toISOString(),
      validTo: new Date(now + (scenario.licenceValidDays - scenario.licenceStartedDaysAgo) * dayMs).toISOString(),
      demo: true,
    };
    const endUsers = scenario.companies.map((company) => ({ organisationId: this.orgId(company), role: 'end_user' as const }));
    const exportLicence = String((await this.submit('licence.create', {
      ...common, reference: `BIS-D-${new Date(now).getUTCFullYear()}-H200-0417`, direction: 'export', holderId: this.orgId('exporter'),
      valueMinor: scenario.licensedUnits * 3_000_000, currency: 'USD',
      conditions: scenario.exportConditions, riders: scenario.exportRiders,
      parties: [...endUsers, { organisationId: this.orgId('importer'), role: 'consignee' }],
    }, this.actor('bis'))).licenceId);
    const importLicence = String((await this.submit('licence.create', {
      ...common, reference: `MOFCOM-JK-${new Date(now).getUTCFullYear()}-000128`, direction: 'import', holderId: this.orgId('importer'),
      conditions: scenario.importConditions, riders: scenario.importRiders,
      parties: [...endUsers, { organisationId: this.orgId('exporter'), role: 'supplier' }],
    }, this.actor('mofcom'))).licenceId);
    await Promise.all([
      this.submit('licence.issue', { licenceId: exportLicence, reason: 'Approved after case-by-case review.' }, this.actor('bis')),
      this.submit('licence.issue', { licenceId: importLicence, reason: 'Approved: initial tranche.' }, this.actor('mofcom')),
    ]);
    const sides = [['export', exportLicence, 'bis'], ['import', importLicence, 'mofcom']] as const;
    await Promise.all(sides.flatMap(([direction, licenceId, authority]) => scenario.companies.map(async (company) => {
      const body = await this.submit('allocation.create', { licenceId, recipientId: this.orgId(company), units: scenario.allocationUnits[company], demo: true }, this.actor(authority));
      this.allocationIds.set(`${direction}:${company}`, String(body.allocationId));
    })));
  }

  private async sitesOfCompanies(): Promise<void> {
    this.log('registering data centres');
    await Promise.all(scenario.sites.map(async (site) => {
      const { key: _key, company, ...fields } = site;
      const body = await this.submit('site.register', { ...fields, demo: true }, this.actor(company));
      this.siteIds.set(site.key, String(body.siteId));
    }));
  }

  /**
   * Books every shipment, then moves each along to where the scenario leaves it. The one meant
   * to expire is booked last, on its own (bookExpiring). Returns its deadline.
   */
  private async shipments(): Promise<number> {
    this.log('booking shipments with their serial manifests');
    const deadline = new Date(this.now().getTime() + scenario.bookingDeadlineDays * dayMs).toISOString();
    await Promise.all(scenario.shipments.map(async (shipment, index) => {
      if (shipment.status === 'expired') return;
      const body = await this.submit('shipment.book', this.booking(shipment, index, deadline), this.actor('exporter'));
      this.shipmentIds.set(shipment.reference, String(body.shipmentId));
    }));
    let expiresAt = 0;
    for (const [index, shipment] of scenario.shipments.entries()) {
      if (shipment.status === 'expired') expiresAt = Math.max(expiresAt, await this.bookExpiring(shipment, index));
    }
    this.log('moving shipments along: attach, ship, clear, deliver, cancel');
    await Promise.all(scenario.shipments.map((shipment, index) => this.advance(shipment, index)));
    return expiresAt;
  }

  private booking(shipment: DemoShipment, index: number, deadline: string): CommandRequest<'shipment.book'> {
    return {
      exportAllocationId: this.allocationIds.get(`export:${shipment.company}`)!,
      importAllocationId: this.allocationIds.get(`import:${shipment.company}`)!,
      productId: this.productId,
      units: shipment.units,
      deadline,
      reference: shipment.reference,
      ...(shipment.listedAtBooking > 0 ? { serials: manifest(index, 0, shipment.listedAtBooking) } : {}),
      demo: true,
    };
  }

  /**
   * Books a shipment with a deadline a moment away (scenario.expiringDeadlineMs), computed just
   * before its own booking so that the other bookings' time does not use it up. The ledger
   * refuses a deadline that has passed by the time it books (booking-deadline): on a machine
   * that slow, the booking is tried again with twice the margin, up to limits.expiringBookingAttemptsMax
   * times. A refused booking changed nothing. Returns the deadline it was booked with.
   */
  private async bookExpiring(shipment: DemoShipment, index: number): Promise<number> {
    let marginMs = scenario.expiringDeadlineMs;
    for (let attempt = 1; ; attempt += 1) {
      const expiresAt = this.now().getTime() + marginMs;
      const answer = await this.attempt('shipment.book', this.booking(shipment, index, new Date(expiresAt).toISOString()), this.actor('exporter'));
      if (answer.ok) {
        this.shipmentIds.set(shipment.reference, String(answer.body.shipmentId));
        return expiresAt;
      }
      if (answer.error.rule !== bookingDeadlineRule || attempt >= limits.expiringBookingAttemptsMax) throw refusedError('shipment.book', answer.error);
      marginMs *= 2;
    }
  }

  private async advance(shipment: DemoShipment, index: number): Promise<void> {
    const shipmentId = this.shipmentIds.get(shipment.reference)!;
    if (shipment.attached > shipment.listedAtBooking) {
      await this.submit('manifest.attach', { shipmentId, serials: manifest(index, shipment.listedAtBooking, shipment.attached) }, this.actor('exporter'));
    }
    const path: Array<[ShipmentStatus, () => Promise<unknown>]> = [
      ['shipped', () => this.submit('shipment.ship', { shipmentId }, this.actor('exporter'))],
      ['cleared', () => this.submit('shipment.clear', { shipmentId, reason: 'Customs declaration accepted.' }, this.actor('mofcom'))],
      ['delivered', () => this.submit('shipment.deliver', { shipmentId }, this.actor(shipment.company))],
    ];
    if (shipment.status === 'returned') {
      await path[0]![1]();
      await this.submit('shipment.return', { shipmentId, reason: scenario.returnReason }, this.actor('mofcom'));
      return;
    }
    if (shipment.status === 'cancelled') {
      await this.submit('shipment.cancel', { shipmentId, reason: 'Customer moved the units to a later tranche.' }, this.actor('exporter'));
      return;
    }
    const stops = path.findIndex(([status]) => status === shipment.status);
    for (const [, step] of path.slice(0, stops + 1)) await step();
  }

  /** Delivered units go to sites; one is decommissioned; one in transit is reported lost. */
  private async deployments(): Promise<void> {
    this.log('reporting deployments');
    const reports = scenario.shipments.flatMap((shipment, index) => {
      let position = 0;
      return (shipment.deployments ?? []).map((deployment) => {
        const serials = serialRange(index, position, position + deployment.count);
        position += deployment.count;
        return { company: shipment.company, siteId: this.siteIds.get(deployment.site)!, serials };
      });
    });
    await Promise.all(reports.map((report) => this.submit('units.deploy', { siteId: report.siteId, serials: report.serials }, this.actor(report.company))));
    const unitOf = (event: { shipment: string; index: number }) => {
      const index = scenario.shipments.findIndex((shipment) => shipment.reference === event.shipment);
      return { company: scenario.shipments[index]!.company, serial: scenario.demoSerial(index, event.index) };
    };
    const gone = unitOf(scenario.decommissioned);
    const missing = unitOf(scenario.lost);
    await this.submit('units.decommission', { serials: [gone.serial], reason: scenario.decommissioned.reason }, this.actor(gone.company));
    await this.submit('units.report_lost', { serials: [missing.serial], reason: scenario.lost.reason }, this.actor(missing.company));
  }

  /**
   * Waits out the short deadline, then sweeps. A running server's own sweep (`serve --demo`
   * sweeps every few seconds) may get there first: then ours finds nothing due, and the
   * booking is expired all the same, which is all the demo needs.
   */
  private async expiry(expiresAt: number): Promise<void> {
    this.log('letting one booking expire');
    const wait = expiresAt - this.now().getTime() + 50;
    if (wait > 0) await this.sleep(wait);
    const answer = await this.ledger.sweep();
    if (answer.ok) {
      // One event per record it expired, from answer.seq on.
      const expired = (answer.body.expiredShipments as unknown[]).length + (answer.body.expiredLicences as unknown[]).length;
      this.lastSeq = Math.max(this.lastSeq, answer.seq + expired - 1);
      return;
    }
    if (answer.error.rule === nothingDueRule && (await this.expiringShipmentStatuses()).every((status) => status === 'expired')) return;
    throw new DemoLoadError(`couldn't load the demo: the expiry sweep was refused: ${answer.error.message}`);
  }

  private async expiringShipmentStatuses(): Promise<string[]> {
    const ids = scenario.shipments.filter((shipment) => shipment.status === 'expired').map((shipment) => this.shipmentIds.get(shipment.reference)!);
    const statuses = await shipmentStatuses(this.ledger.pool, ids);
    return statuses.length === ids.length ? statuses : [];
  }
}

function serialRange(shipmentIndex: number, from: number, to: number): string[] {
  const serials: string[] = [];
  for (let position = from; position < to; position += 1) serials.push(scenario.demoSerial(shipmentIndex, position));
  return serials;
}

function manifest(shipmentIndex: number, from: number, to: number): Array<{ serial: string; gpuUuid: string }> {
  return serialRange(shipmentIndex, from, to).map((serial) => ({ serial, gpuUuid: scenario.demoGpuUuid(serial) }));
}

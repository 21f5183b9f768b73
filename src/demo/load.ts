/**
 * Loads the demo scenario (scenario.ts) through the ledger, command by command, so all of it is
 * in the event stream exactly as if people had done it through the API; nothing is written to
 * the tables directly.
 *
 * Loading twice does not duplicate: the loader holds an advisory lock (two processes loading at
 * once take turns, the second waiting at most limits.demoLoadLockWaitMsMax) and skips when demo
 * data is already there. Crash notes: the load is many commands, each committed on its own; a
 * crash part way leaves a partial demo, which demoState() reports as 'partial' (the caller says
 * so; nothing is guessed or repaired).
 */
import { loadAcceleratorCatalogue } from '../policy/catalogue.ts';
import type { DomainError } from '../core/errors.ts';
import type { Answer, Ledger } from '../ledger/ledger.ts';
import { systemActor, type Actor } from '../ledger/permissions.ts';
import { nothingDueRule } from '../ledger/handlers/sweep.ts';
import type { Role, ShipmentStatus } from '../ledger/rows.ts';
import type { CommandKind, CommandRequest } from '../ledger/schemas.ts';
import { limits } from '../core/limits.ts';
import { describeHolders, formatWait, takeAdvisoryLock, terminateSql } from '../store/advisory-locks.ts';
import type { Pool, PoolClient } from '../store/pool.ts';
import * as scenario from './scenario.ts';
import type { CompanyKey, DemoShipment, OrgKey } from './scenario.ts';

/** Any constant: the key of the advisory lock the loader holds. */
const demoLockKey = 7_201_964_012;
const dayMs = 86_400_000;
/** Bookings of the expiring shipment, each with twice the last one's margin (2, 4, 8, 16 s). */
export const expiringBookingAttemptsMax = 4;
/** The rule shipment.book names when it refuses a deadline (handlers/shipments.ts). */
const bookingDeadlineRule = 'booking-deadline';

/** A demo organisation as loaded, with the role its demo tokens get. */
export interface DemoParty {
  key: OrgKey;
  organisationId: string;
  organisation: string;
  /** Its part in the demo, for people (scenario.ts). */
  part: string;
  role: Role;
}

export interface DemoToken extends DemoParty {
  tokenId: string;
  /** Shown once: printed to stdout, never logged. */
  secret: string;
}

export type DemoState = 'absent' | 'partial' | 'complete';

export type DemoResult =
  | { loaded: true; tokens: DemoToken[]; shipments: Record<ShipmentStatus, number>; serials: number; events: number }
  | { loaded: false; state: Exclude<DemoState, 'absent'> };

export interface DemoOptions {
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** Progress lines ("registering organisations", ...), and a wait for another load. */
  log?: (line: string) => void;
  /** How long to wait for another chipledger's demo load (limits.demoLoadLockWaitMsMax). */
  lockWaitMs?: number;
  /** After how long that wait is said (limits.lockWaitNoticeDelayMs). */
  lockWaitNoticeAfterMs?: number;
}

/** A command the demo needs refused: the scenario and the rules disagree, a bug here. */
export class DemoLoadError extends Error {
  override name = 'DemoLoadError';
}

/**
 * Whether the demo is loaded: absent, loaded in full, or cut short by a crash. "In full" is
 * judged by what only the loader makes and what people using the demo cannot undo: all its
 * organisations, sites and shipments, the expired shipment and the decommissioned and lost
 * units (the last steps of the load).
 */
export async function demoState(pool: Pool): Promise<DemoState> {
  const { rows } = await pool.query<{ organisations: number; sites: number; shipments: number; expired: number; ended: number }>(`
    SELECT (SELECT count(*)::int FROM organisations WHERE demo) AS organisations,
           (SELECT count(*)::int FROM sites WHERE demo) AS sites,
           (SELECT count(*)::int FROM shipments WHERE demo) AS shipments,
           (SELECT count(*)::int FROM shipments WHERE demo AND status = 'expired') AS expired,
           (SELECT count(DISTINCT u.custody)::int FROM units u JOIN shipments s ON s.id = u.shipment_id
             WHERE s.demo AND u.custody IN ('decommissioned', 'lost')) AS ended`);
  const found = rows[0]!;
  if (found.organisations === 0) return 'absent';
  const complete = found.organisations === scenario.organisations.length && found.sites === scenario.sites.length
    && found.shipments === scenario.shipments.length && found.expired >= 1 && found.ended === 2;
  return complete ? 'complete' : 'partial';
}

/**
 * Whether the database holds the demo, loaded in full or in part: what marks a server's
 * answers and events as demo data. The same test as demoState's 'absent', in one cheap query.
 */
export async function holdsDemo(pool: Pool): Promise<boolean> {
  const { rows } = await pool.query<{ holds: boolean }>('SELECT EXISTS (SELECT 1 FROM organisations WHERE demo) AS holds');
  return rows[0]!.holds;
}

/**
 * Loads the demo unless it is there already. Refused (DemoLoadError) on a database that holds
 * other data: the demo's authority admins could make tokens for its real organisations, and
 * every server on it would serve its real events as demo ones. A database a server started
 * on is still empty: its log key and the empty log's checkpoint are not events.
 */
export async function loadDemo(ledger: Ledger, options: DemoOptions = {}): Promise<DemoResult> {
  const client = await ledger.pool.connect();
  try {
    await takeDemoLock(client, options);
    const state = await demoState(ledger.pool);
    if (state !== 'absent') return { loaded: false, state };
    // Under the lock: a load running elsewhere has either finished (the demo is there) or not
    // begun, so events found here are another's. Every row comes from an event.
    const events = Number((await ledger.pool.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
    if (events > 0) throw new DemoLoadError(`couldn't load the demo: this database holds non-demo data (${events.toLocaleString('en-US')} events); the demo loads only into an empty database`);
    return await new Loader(ledger, options).run();
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [demoLockKey]).catch(() => {});
    client.release();
  }
}

/**
 * Waits for another chipledger's demo load within its bound, saying after a few seconds whose
 * session holds its lock; past the bound, refuses naming it (a load frozen or cut off keeps
 * its session-level lock for as long as that lasts, and no timeout of PostgreSQL's ends it).
 */
async function takeDemoLock(client: PoolClient, options: DemoOptions): Promise<void> {
  const waitMs = options.lockWaitMs ?? limits.demoLoadLockWaitMsMax;
  const outcome = await takeAdvisoryLock(client, demoLockKey, {
    waitMs,
    noticeAfterMs: options.lockWaitNoticeAfterMs ?? limits.lockWaitNoticeDelayMs,
    notice: options.log ?? ((line: string) => void process.stderr.write(`chipledger: ${line}\n`)),
    what: "another chipledger's demo load",
  });
  if (outcome.kind === 'locked') return;
  const terminate = terminateSql(outcome.holders);
  const ending = terminate === undefined ? '' : `, or end its session (${terminate})`;
  throw new DemoLoadError(`couldn't load the demo: waited ${formatWait(waitMs)} for another chipledger's demo load, whose lock is still held by ${describeHolders(outcome.holders)}; `
    + `run this command again once that load has finished, or if it is frozen or gone, stop it${ending}`);
}

/** The demo organisations that are loaded, in the scenario's order (a partial demo may lack some). */
export async function demoParties(pool: Pool): Promise<DemoParty[]> {
  const rows = (await pool.query<{ id: string; name: string }>('SELECT id, name FROM organisations WHERE demo ORDER BY created_seq')).rows;
  return scenario.organisations.flatMap((org) => {
    const row = rows.find((candidate) => candidate.name === org.name);
    return row ? [partyOf(org, row.id)] : [];
  });
}

/**
 * Fresh tokens for demo organisations that are already loaded (their first secrets were shown
 * once and are gone). `which` picks the administrator (scenario.administrator) only, or one
 * token per organisation.
 */
export async function createDemoTokens(ledger: Ledger, which: 'admin' | 'all'): Promise<DemoToken[]> {
  const parties = await demoParties(ledger.pool);
  const wanted = scenario.organisations.filter((org) => which === 'all' || org.key === scenario.administrator);
  const tokens: DemoToken[] = [];
  for (const org of wanted) {
    const party = parties.find((candidate) => candidate.key === org.key);
    if (!party) throw new DemoLoadError(`demo organisation ${org.name} is missing; the demo data is incomplete`);
    tokens.push(await createToken(ledger, party));
  }
  return tokens;
}

function partyOf(org: scenario.DemoOrganisation, organisationId: string): DemoParty {
  return { key: org.key, organisationId, organisation: org.name, part: org.part, role: org.tokenRole };
}

async function createToken(ledger: Ledger, party: DemoParty): Promise<DemoToken> {
  const body = await submitOk(ledger, 'token.create', { organisationId: party.organisationId, role: party.role, label: `demo ${party.role} (${new Date().toISOString().slice(0, 10)})` }, systemActor);
  return { ...party, tokenId: String(body.tokenId), secret: String(body.secret) };
}

async function submitOk<K extends CommandKind>(ledger: Ledger, kind: K, input: CommandRequest<K>, actor: Actor): Promise<Record<string, unknown>> {
  const answer = await ledger.submit(kind, input, actor);
  if (!answer.ok) throw refusedError(kind, answer.error);
  return answer.body;
}

function refusedError(kind: CommandKind, error: DomainError): DemoLoadError {
  return new DemoLoadError(`couldn't load the demo: ${kind} was refused (${error.code}${error.rule ? `, ${error.rule}` : ''}): ${error.message}`);
}

/** One load: the ids and actors it made, and the steps in order. */
class Loader {
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

  constructor(private readonly ledger: Ledger, options: DemoOptions) {
    this.now = options.now ?? (() => new Date());
    this.sleep = options.sleep ?? ((ms) => new Promise((done) => setTimeout(done, ms)));
    this.log = options.log ?? (() => {});
  }

  async run(): Promise<DemoResult> {
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
   * that slow, the booking is tried again with twice the margin, up to expiringBookingAttemptsMax
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
      if (answer.error.rule !== bookingDeadlineRule || attempt >= expiringBookingAttemptsMax) throw refusedError('shipment.book', answer.error);
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
    const { rows } = await this.ledger.pool.query<{ status: string }>('SELECT status FROM shipments WHERE id = ANY($1)', [ids]);
    return rows.length === ids.length ? rows.map((row) => row.status) : [];
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

/**
 * The authority's licence steps as commands: draft (create), issue, suspend, reinstate,
 * revoke, amend, and the holder's surrender, with a licence's versions; and the wiring of
 * every command of this file and record-commands.ts (allocations, sites, events) into the
 * program. Every field of a licence has an option, and --body FILE (or -) gives the fields
 * the options do not cover (conditions of other kinds, say) as JSON; a field given both ways
 * is refused. Everything is checked against the command's own schema before it is sent.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { limits } from '../core/limits.ts';
import { licenceAmend, licenceCreate, licenceTransition } from '../ledger/schemas.ts';
import type { StdinInput } from './client-commands.ts';
import { amountOf, checkBody, idSegment, instantOf, repeated, unitsOf, wholeNumber, withFields } from './client-values.ts';
import type { Wiring } from './command-wiring.ts';
import type { ApiClient } from './http.ts';
import { readBodyObject } from './json-body.ts';
import { Failure, printableJson, type Output } from './output.ts';
import { pageCommand, recordCommand, type PageOptions } from './page-commands.ts';
import {
  allocationCreateCommand, allocationResizeCommand, eventShowCommand, eventsListCommand, recordColumns, sendChange, siteRegisterCommand,
  type AllocationCreateOptions, type ChangeCommandOptions, type SiteRegisterOptions,
} from './record-commands.ts';
import type { Row } from './table.ts';

/** The terms `licences create` and `licences amend` both take as options. */
interface LicenceTermOptions {
  units?: string;
  value?: string;
  currency?: string;
  validFrom?: string;
  validTo?: string;
  product?: string[];
  body?: string;
}

export interface LicenceCreateOptions extends ChangeCommandOptions, LicenceTermOptions {
  reference?: string;
  direction?: string;
  holder?: string;
  origin?: string;
  destination?: string;
  condition?: string[];
  maxUnitsPerShipment?: string;
  rider?: string[];
  endUser?: string[];
  consignee?: string[];
  supplier?: string[];
}

/** The option that gives each field of licence.create and licence.amend. */
const licenceOptionOf: Readonly<Record<string, string>> = {
  reference: '--reference', direction: '--direction', holderId: '--holder', productIds: '--product', origin: '--origin', destination: '--destination',
  authorisedUnits: '--units', valueMinor: '--value', currency: '--currency', validFrom: '--valid-from', validTo: '--valid-to',
  conditions: '--condition/--max-units-per-shipment', riders: '--rider', parties: '--end-user/--consignee/--supplier', reason: '--reason',
};
/** What licence.create needs that has no default. */
const licenceCreateRequired = ['reference', 'direction', 'holderId', 'productIds', 'origin', 'destination', 'authorisedUnits', 'validFrom', 'validTo'];

/** The command line so far, and the value of each option as sent, for the rerun of a change. */
class Words {
  readonly words: string[];
  constructor(...start: string[]) {
    this.words = start;
  }
  /** The option's value, checked by `value`; the rerun gives a time as it was sent, a number as typed (digits only, once checked). */
  add<T>(option: string, typed: string | undefined, value: (text: string) => T): T | undefined {
    if (typed === undefined) return undefined;
    const sent = value(typed);
    this.words.push(option, typeof sent === 'string' ? sent : typed);
    return sent;
  }
  each(option: string, typed: readonly string[] | undefined): void {
    for (const text of typed ?? []) this.words.push(option, text);
  }
}

const text = (typed: string) => typed;

/** An obligation as SLUG=TEXT; its slug and text are checked by the schema. */
function obligationOf(typed: string): Row {
  const at = typed.indexOf('=');
  if (at < 1) throw new Failure(`--condition must be ID=TEXT, such as "no-military-end-use=No military end use or end user"; got ${printableJson(typed, 'one line')}`, 2);
  return { id: typed.slice(0, at), kind: 'obligation', text: typed.slice(at + 1) };
}

/** The conditions the options give: obligations, and a cap on the units of one shipment. */
function conditionsOf(options: LicenceCreateOptions, words: Words): Row[] | undefined {
  words.each('--condition', options.condition);
  const conditions = (options.condition ?? []).map(obligationOf);
  const cap = words.add('--max-units-per-shipment', options.maxUnitsPerShipment, (typed) => unitsOf('--max-units-per-shipment', typed));
  if (cap !== undefined) conditions.push({ id: 'max-units-per-shipment', kind: 'max_units_per_shipment', value: cap, text: `No single shipment may exceed ${cap.toLocaleString('en-US')} units.` });
  return conditions.length === 0 ? undefined : conditions;
}

function partiesOf(options: LicenceCreateOptions, words: Words): Row[] | undefined {
  const parties: Row[] = [];
  for (const [option, role, ids] of [['--end-user', 'end_user', options.endUser], ['--consignee', 'consignee', options.consignee], ['--supplier', 'supplier', options.supplier]] as const) {
    words.each(option, ids);
    for (const organisationId of ids ?? []) parties.push({ organisationId, role });
  }
  return parties.length === 0 ? undefined : parties;
}

const valueOf = (typed: string) => wholeNumber('--value', typed, 0, limits.valueMinorMax);

/** The units, value and validity the options give, in the order the rerun gives them. */
function termsOf(options: LicenceTermOptions, words: Words) {
  return {
    authorisedUnits: words.add('--units', options.units, (typed) => unitsOf('--units', typed)),
    valueMinor: words.add('--value', options.value, valueOf),
    currency: words.add('--currency', options.currency, text),
    validFrom: words.add('--valid-from', options.validFrom, (typed) => instantOf('--valid-from', typed)),
    validTo: words.add('--valid-to', options.validTo, (typed) => instantOf('--valid-to', typed)),
  };
}

/** The body of `--body`, if given, and how its rerun gives it. */
async function bodyFrom(file: string | undefined, words: Words, stdin: StdinInput): Promise<Record<string, unknown>> {
  if (file === undefined) return {};
  words.words.push('--body', file);
  return readBodyObject(file, stdin);
}

export async function licenceCreateCommand(client: ApiClient, options: LicenceCreateOptions, output: Output, stdin: StdinInput = process.stdin): Promise<number> {
  const words = new Words('chipledger', 'licences', 'create');
  const fields = {
    reference: words.add('--reference', options.reference, text),
    direction: words.add('--direction', options.direction, text),
    holderId: words.add('--holder', options.holder, text),
    productIds: options.product,
    origin: words.add('--origin', options.origin, text),
    destination: words.add('--destination', options.destination, text),
    ...termsOf(options, words),
    conditions: conditionsOf(options, words),
    riders: options.rider,
    parties: partiesOf(options, words),
  };
  words.each('--product', options.product);
  words.each('--rider', options.rider);
  const given = await bodyFrom(options.body, words, stdin);
  const assembled = withFields(given, fields, licenceOptionOf);
  checkBody(licenceCreate, assembled, licenceOptionOf, licenceCreateRequired);
  const body = assembled.body;
  return sendChange(client, '/v1/licences', body, { words: words.words, ...(options.body === undefined ? {} : { bodyFile: options.body }) }, options, output, (answer) =>
    `Drafted licence ${String(answer.licenceId)} (${String(body.reference)}, ${String(body.direction)}, ${Number(body.authorisedUnits).toLocaleString('en-US')} units); it is a draft until issued.`);
}

/** The steps that change only a licence's status; surrender is its holder's, the rest its authority's. */
export const licenceSteps = ['issue', 'suspend', 'reinstate', 'revoke', 'surrender'] as const;
export type LicenceStep = (typeof licenceSteps)[number];

export async function licenceStepCommand(client: ApiClient, step: LicenceStep, licenceId: string, options: ChangeCommandOptions & { reason?: string }, output: Output): Promise<number> {
  const route = `/v1/licences${idSegment(licenceId)}/${step}`;
  const body = options.reason === undefined ? {} : { reason: options.reason };
  checkBody(licenceTransition, { body: { licenceId, ...body }, fromOptions: new Set(['reason']) }, { ...licenceOptionOf, licenceId: 'the licence id' });
  const words = ['chipledger', 'licences', step, licenceId, ...(options.reason === undefined ? [] : ['--reason', options.reason])];
  return sendChange(client, route, body, { words }, options, output, (answer) => `Licence ${String(answer.licenceId ?? licenceId)} is now ${String(answer.status ?? step)}.`);
}

export interface LicenceAmendOptions extends ChangeCommandOptions, LicenceTermOptions {
  reason: string;
}

export async function licenceAmendCommand(client: ApiClient, licenceId: string, options: LicenceAmendOptions, output: Output, stdin: StdinInput = process.stdin): Promise<number> {
  const route = `/v1/licences${idSegment(licenceId)}/amend`;
  const words = new Words('chipledger', 'licences', 'amend', licenceId, '--reason', options.reason);
  const fields = {
    reason: options.reason,
    ...termsOf(options, words),
    productIds: options.product,
  };
  words.each('--product', options.product);
  const given = await bodyFrom(options.body, words, stdin);
  // The command names the licence; a body naming another would be sent and refused (400) only
  // by the server. The same one is sent as it is, which the server takes.
  if (Object.hasOwn(given, 'licenceId') && given.licenceId !== licenceId) {
    throw new Failure(`the body's licenceId ${printableJson(given.licenceId, 'one line')} differs from ${printableJson(licenceId, 'one line')}, the licence the command amends; leave licenceId out of the body; nothing was sent`, 2);
  }
  const assembled = withFields(given, fields, licenceOptionOf);
  checkBody(licenceAmend, { body: { ...assembled.body, licenceId }, fromOptions: assembled.fromOptions }, { ...licenceOptionOf, licenceId: 'the licence id' });
  return sendChange(client, route, assembled.body, { words: words.words, ...(options.body === undefined ? {} : { bodyFile: options.body }) }, options, output, (answer) =>
    `Amended licence ${String(answer.licenceId ?? licenceId)}: version ${String(answer.version)}, now ${String(answer.status)}.`);
}

const versionColumns = ['version', 'seq', 'status', 'authorisedUnits', 'value', 'validFrom', 'validTo', 'productIds'] as const;

/** A version as a row: its terms beside its number, the value in its currency's units (valueMinor is in minor units), products as one cell. */
function versionRow(version: Row): Row {
  const terms = (version.terms ?? {}) as Row;
  return {
    version: version.version, seq: version.seq, status: terms.status, authorisedUnits: terms.authorisedUnits,
    value: terms.valueMinor === undefined || terms.valueMinor === null ? undefined : amountOf(terms.valueMinor, terms.currency),
    validFrom: terms.validFrom, validTo: terms.validTo, productIds: Array.isArray(terms.productIds) ? terms.productIds.join(', ') : terms.productIds,
  };
}

export async function licenceVersionsCommand(client: ApiClient, licenceId: string, options: PageOptions, output: Output): Promise<number> {
  return pageCommand(client, `/v1/licences${idSegment(licenceId)}/versions`, {}, { columns: versionColumns, rows: (items) => items.map(versionRow) }, options, output);
}

/** The program's command of this name (licences and allocations have their list there), or a new one. */
function group(program: Command, name: string, description: string): Command {
  return program.commands.find((command) => command.name() === name) ?? program.command(name).description(description);
}

export function registerLicenceCommands(program: Command, wiring: Wiring): void {
  const { client, run, output } = wiring;
  const change = (command: Command) => command.option(...wiring.idempotencyKeyOption).option('--json', "print the API's answer as JSON instead of a sentence");
  const page = (command: Command) => command.option('--limit <n>', 'rows per page').option('--cursor <cursor>', 'continue after a previous page').option('--json', 'print the API answer as JSON');

  const licences = group(program, 'licences', 'licences (client: CHIPLEDGER_URL, CHIPLEDGER_TOKEN)');
  change(licences.command('create').description('draft a licence (authority); every field has an option, and --body gives the others as JSON')
    .option('--reference <text>', "the authority's document number, e.g. BIS-2026-0007")
    .addOption(new Option('--direction <direction>', 'export or import').choices(['export', 'import']))
    .option('--holder <org>', 'the holder (exporter or importer), e.g. ORG-2')
    .option('--product <id>', 'a product it covers, e.g. PRD-9 (repeatable)', repeated)
    .option('--origin <country>', 'ISO 3166-1 alpha-2, e.g. US').option('--destination <country>', 'ISO 3166-1 alpha-2, e.g. CN')
    .option('--units <n>', 'units authorised')
    .option('--value <minor>', 'the value it states, in minor units (cents), with --currency').option('--currency <code>', 'ISO 4217, e.g. USD')
    .option('--valid-from <time>', 'its first instant, with its offset, e.g. 2026-01-01T00:00:00+08:00')
    .option('--valid-to <time>', 'the first instant after it, e.g. 2027-01-01T00:00:00+08:00 for through 31 December in Beijing')
    .option('--end-user <org>', 'an end user it names (repeatable)', repeated).option('--consignee <org>', 'a consignee it names (repeatable)', repeated)
    .option('--supplier <org>', 'a supplier it names (repeatable)', repeated)
    .option('--condition <id=text>', 'an obligation, e.g. "no-military-end-use=No military end use" (repeatable)', repeated)
    .option('--max-units-per-shipment <n>', 'a condition capping the units of one shipment')
    .option('--rider <text>', 'a rider (repeatable)', repeated)
    .option('--body <file>', 'JSON with fields the options do not give (such as conditions of other kinds), from a file, or - for stdin'))
    .action(run(async (options: LicenceCreateOptions) => licenceCreateCommand(client(), options, output)));
  for (const step of licenceSteps) {
    change(licences.command(`${step} <id>`).description(`${step} a licence${step === 'surrender' ? ' (its holder)' : ' (its authority)'}`).option('--reason <text>', 'recorded with the event'))
      .action(run(async (id: string, options: ChangeCommandOptions & { reason?: string }) => licenceStepCommand(client(), step, id, options, output)));
  }
  change(licences.command('amend <id>').description('amend a licence (its authority): a new version; terms left out stay as they are')
    .requiredOption('--reason <text>', 'why, recorded with the version').option('--units <n>', 'units authorised')
    .option('--value <minor>', 'the value, in minor units, with --currency').option('--currency <code>', 'ISO 4217, e.g. USD')
    .option('--valid-from <time>', "a draft's new start (an issued licence's start stays)").option('--valid-to <time>', 'e.g. 2027-06-30T00:00:00Z').option('--product <id>', "the licence's products become these (repeatable)", repeated)
    .option('--body <file>', 'JSON with further terms (conditions, riders, parties: each replaces the list), from a file, or - for stdin'))
    .action(run(async (id: string, options: LicenceAmendOptions) => licenceAmendCommand(client(), id, options, output)));
  page(licences.command('versions <id>').description("a licence's versions: every amendment, as it was"))
    .action(run(async (id: string, options: PageOptions) => licenceVersionsCommand(client(), id, options, output)));

  const allocations = group(program, 'allocations', 'allocations (client)');
  change(allocations.command('create').description("allocate part of a licence's units to a recipient it names (authority)")
    .requiredOption('--licence <id>', 'e.g. L-7').requiredOption('--recipient <org>', 'e.g. ORG-5').requiredOption('--units <n>', 'units to allocate')
    .option('--period-start <day>', 'a tranche: first day, e.g. 2026-07-01 (with --period-end)').option('--period-end <day>', 'last day, e.g. 2026-09-30'))
    .action(run(async (options: AllocationCreateOptions) => allocationCreateCommand(client(), options, output)));
  change(allocations.command('resize <id>').description('give an allocation a new number of units (authority)').requiredOption('--units <n>', 'its units from now on (0 gives them all back to the licence)'))
    .action(run(async (id: string, options: ChangeCommandOptions & { units: string }) => allocationResizeCommand(client(), id, options, output)));
  allocations.command('show <id>').description('one allocation').option('--json', 'print JSON')
    .action(run(async (id: string, options: { json?: boolean }) => recordCommand(client(), `/v1/allocations${idSegment(id)}`, options, output)));

  const sites = group(program, 'sites', 'data-centre sites (client)');
  change(sites.command('register').description('register a data-centre site of yours (recipient)')
    .requiredOption('--name <name>', 'e.g. "Ulanqab DC 1"').requiredOption('--province <name>', 'e.g. "Inner Mongolia"').requiredOption('--city <name>', 'e.g. Ulanqab')
    .option('--country <code>', "ISO 3166-1 alpha-2, e.g. CN (default: your organisation's); units are deployed only in the country they were imported into, so a site abroad takes none of them")
    .requiredOption('--latitude <degrees>', 'e.g. 41.0347').requiredOption('--longitude <degrees>', 'e.g. 113.1332').requiredOption('--capacity <units>', 'units it has room for'))
    .action(run(async (options: SiteRegisterOptions) => siteRegisterCommand(client(), options, output)));
  page(sites.command('list').description('your sites (all sites, for authorities and auditors)'))
    .action(run(async (options: PageOptions) => pageCommand(client(), '/v1/sites', {}, { columns: recordColumns.sites }, options, output)));
  sites.command('show <id>').description('one site').option('--json', 'print JSON')
    .action(run(async (id: string, options: { json?: boolean }) => recordCommand(client(), `/v1/sites${idSegment(id)}`, options, output)));

  const events = group(program, 'events', 'ledger events, in log order (client)');
  page(events.command('list').description('events that name you; --subject gives one record\'s history').option('--subject <id>', 'only the history of this record, e.g. S-12 or L-7'))
    .action(run(async (options: PageOptions & { subject?: string }) => eventsListCommand(client(), options, output)));
  events.command('show <seq>').description('one event by its number (the log\'s leaf index)').option('--json', 'print JSON, with its canonical bytes')
    .action(run(async (seq: string, options: { json?: boolean }) => eventShowCommand(client(), seq, options, output)));
}

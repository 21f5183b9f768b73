/**
 * Client commands for allocations, sites and events, and what every client change command
 * here shares with `shipments book`: one Idempotency-Key per change, sent again with it while
 * the outcome is unknown (ApiClient.post), and, when the CLI gives up, the command line that
 * sends the same change under the same key. A change prints one sentence on stdout, as book
 * does, or the API's answer with --json; a list prints one page as a table, as `licences list`.
 */
import { limits } from '../core/limits.ts';
import { allocationCreate, allocationResize, id as idSchema, siteRegister } from '../ledger/schemas.ts';
import { change, checkedKey, type ChangeOptions } from './client-commands.ts';
import { checkBody, dayOf, decimalIn, idSegment, quoted, unitsOf, wholeNumber, withFields } from './client-values.ts';
import type { ApiClient } from './http.ts';
import { pageCommand, recordCommand, type PageOptions } from './page-commands.ts';
import { Failure, printable, printableJson, type Output } from './output.ts';
import type { Row } from './table.ts';

export interface ChangeCommandOptions extends ChangeOptions {
  /** Print the API's answer instead of the sentence. */
  json?: boolean;
}

/** How a change is sent again: its command line as typed, values as sent, and the --body file it was read from, if any. */
export interface Rerun {
  words: readonly string[];
  bodyFile?: string;
}

/**
 * Sends a change through the path `shipments book` takes (client-commands.ts change) and
 * prints what it did: `said` makes the sentence from the API's answer. When its outcome is
 * unknown, the error carries the command that reruns it with its key, with --json when this
 * run had it, so that the rerun prints as this one would have.
 */
export async function sendChange(client: ApiClient, route: string, body: Record<string, unknown>, rerun: Rerun, options: ChangeCommandOptions, output: Output, said: (answer: Row) => string): Promise<number> {
  const key = checkedKey(options);
  const words = [...rerun.words, ...(options.json ? ['--json'] : [])];
  const answer = await change(words, () => client.post<Row>(route, body, key), rerun.bodyFile);
  output.out(options.json ? printableJson(answer) : printable(said(answer)));
  return 0;
}

const count = (value: unknown) => Number(value).toLocaleString('en-US');

export const recordColumns = {
  sites: ['id', 'name', 'province', 'city', 'country', 'capacityUnits', 'deployedUnits', 'organisationId', 'demo'],
  events: ['seq', 'at', 'kind', 'subjectId', 'actor'],
} as const;

export interface AllocationCreateOptions extends ChangeCommandOptions {
  licence: string;
  recipient: string;
  units: string;
  periodStart?: string;
  periodEnd?: string;
}

const allocationOptionOf = { licenceId: '--licence', recipientId: '--recipient', units: '--units', periodStart: '--period-start', periodEnd: '--period-end' };

export async function allocationCreateCommand(client: ApiClient, options: AllocationCreateOptions, output: Output): Promise<number> {
  const fields = {
    licenceId: options.licence,
    recipientId: options.recipient,
    units: unitsOf('--units', options.units),
    periodStart: options.periodStart === undefined ? undefined : dayOf('--period-start', options.periodStart),
    periodEnd: options.periodEnd === undefined ? undefined : dayOf('--period-end', options.periodEnd),
  };
  const assembled = withFields({}, fields, allocationOptionOf);
  checkBody(allocationCreate, assembled, allocationOptionOf);
  const period = fields.periodStart === undefined ? [] : ['--period-start', fields.periodStart];
  const periodEnd = fields.periodEnd === undefined ? [] : ['--period-end', fields.periodEnd];
  const words = ['chipledger', 'allocations', 'create', '--licence', options.licence, '--recipient', options.recipient, '--units', options.units, ...period, ...periodEnd];
  return sendChange(client, '/v1/allocations', assembled.body, { words }, options, output, (answer) =>
    `Created allocation ${String(answer.allocationId)}: ${count(answer.units ?? fields.units)} units of licence ${options.licence} for ${options.recipient}${fields.periodStart === undefined ? '' : `, ${fields.periodStart} to ${String(fields.periodEnd)}`}.`);
}

export async function allocationResizeCommand(client: ApiClient, allocationId: string, options: ChangeCommandOptions & { units: string }, output: Output): Promise<number> {
  const route = `/v1/allocations${idSegment(allocationId)}/resize`;
  // 0 gives every unit back to the licence (a tranche that has ended, or that nobody will book).
  const units = wholeNumber('--units', options.units, 0, limits.unitsMax);
  const words = ['chipledger', 'allocations', 'resize', allocationId, '--units', options.units];
  checkBody(allocationResize, { body: { allocationId, units }, fromOptions: new Set(['units']) }, { allocationId: 'the allocation id', units: '--units' });
  return sendChange(client, route, { units }, { words }, options, output, (answer) => `Allocation ${String(answer.allocationId ?? allocationId)} now has ${count(answer.units ?? units)} units.`);
}

export interface SiteRegisterOptions extends ChangeCommandOptions {
  name: string;
  province: string;
  city: string;
  /** Absent: the API takes the organisation's own country. */
  country?: string;
  latitude: string;
  longitude: string;
  capacity: string;
}

const siteOptionOf = { name: '--name', province: '--province', city: '--city', country: '--country', latitude: '--latitude', longitude: '--longitude', capacityUnits: '--capacity' };

export async function siteRegisterCommand(client: ApiClient, options: SiteRegisterOptions, output: Output): Promise<number> {
  const fields = {
    name: options.name,
    province: options.province,
    city: options.city,
    country: options.country,
    latitude: decimalIn('--latitude', options.latitude, -90, 90),
    longitude: decimalIn('--longitude', options.longitude, -180, 180),
    capacityUnits: unitsOf('--capacity', options.capacity),
  };
  const assembled = withFields({}, fields, siteOptionOf);
  checkBody(siteRegister, assembled, siteOptionOf);
  const words = ['chipledger', 'sites', 'register', '--name', options.name, '--province', options.province, '--city', options.city,
    ...(options.country === undefined ? [] : ['--country', options.country]), '--latitude', options.latitude, '--longitude', options.longitude, '--capacity', options.capacity];
  return sendChange(client, '/v1/sites', assembled.body, { words }, options, output, (answer) =>
    `Registered site ${String(answer.siteId)} (${options.name}, ${options.city}): room for ${count(fields.capacityUnits)} units.`);
}

export async function eventsListCommand(client: ApiClient, options: PageOptions & { subject?: string }, output: Output): Promise<number> {
  if (options.subject !== undefined && !idSchema.safeParse(options.subject).success) {
    throw new Failure(`--subject must be the id of a record, such as S-12, L-7 or SITE-3; got ${quoted(options.subject)}`, 2);
  }
  return pageCommand(client, '/v1/events', { subjectId: options.subject }, { columns: recordColumns.events }, options, output);
}

/**
 * One event. Its canonical bytes (base64) are left out of the lines a person reads: its body
 * is those bytes parsed, and --json (or `log prove`) gives them.
 */
export async function eventShowCommand(client: ApiClient, seq: string, options: { json?: boolean }, output: Output): Promise<number> {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(seq) || !Number.isSafeInteger(Number(seq))) {
    throw new Failure(`an event's number is a whole number such as 42 (its seq, the log's leaf index); got ${quoted(seq)}`, 2);
  }
  return recordCommand(client, `/v1/events/${seq}`, options, output, ({ canonical: _canonical, ...rest }) => rest);
}

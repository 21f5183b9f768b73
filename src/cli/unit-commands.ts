/**
 * Unit commands (client: CHIPLEDGER_URL, CHIPLEDGER_TOKEN). A recipient's units leave use
 * (decommissioned, reported lost, returned to their exporter) from a serial CSV read as
 * `deploy` reads one: checked whole before anything is sent, sent in one request with an
 * upload bar, under one Idempotency-Key that a rerun can give again. And the units the caller
 * received or exported, a page of them or one by serial.
 */
import { Option, type Command } from 'commander';
import { limits } from '../core/limits.ts';
import { unitsEnd } from '../ledger/schemas.ts';
import { change, checkedKey, readSerialFile, upload, type ChangeOptions } from './client-commands.ts';
import { checkBody } from './client-values.ts';
import type { Wiring } from './command-wiring.ts';
import type { ApiClient } from './http.ts';
import { Failure, printableJson, type Output } from './output.ts';
import { pageCommand, recordCommand } from './page-commands.ts';

/** What the API's units.decommission, units.report_lost and units.return make of the units (src/ledger/handlers/units.ts). */
export const unitEndings = {
  decommission: {
    route: '/v1/units/decommission',
    summary: 'report the units in a CSV decommissioned (delivered or deployed ones); the report is yours alone',
    done: (units: string) => `Reported ${units} decommissioned; no site counts them any more.`,
  },
  'report-lost': {
    route: '/v1/units/report-lost',
    summary: 'report the units in a CSV lost (in transit, delivered or deployed ones); their exporter reads the report',
    done: (units: string) => `Reported ${units} lost; their exporter reads the report, and no site counts them any more.`,
  },
  return: {
    route: '/v1/units/return',
    summary: 'report the units in a CSV returned to their exporter (delivered or deployed ones), who may ship them again and reads the report',
    done: (units: string) => `Reported ${units} returned to their exporter, who may ship them again; no site counts them any more.`,
  },
} as const;

export type UnitEnding = keyof typeof unitEndings;

/** The API's custody values (src/server/wire-fields.ts), the filter of GET /v1/units. */
export const custodies = ['licensed', 'in_transit', 'delivered', 'deployed', 'decommissioned', 'returned', 'lost'] as const;

export const unitColumns = ['serial', 'custody', 'siteId', 'shipmentId', 'productId', 'recipientId', 'gpuUuid'] as const;

export interface UnitEndOptions extends ChangeOptions {
  reason: string;
  json?: boolean;
}

export interface UnitListOptions {
  site?: string;
  custody?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
}

/**
 * The reason as the API takes it, checked by the API's own schema (unitsEnd: a name, free of
 * control characters and bidi controls, at most limits.textLengthMax characters once in NFC),
 * said before a file of up to 100,000 serials is read and sent only to be refused for it. A
 * blank one and a long one are said in words of their own first.
 */
export function checkedReason(reason: string): string {
  if (reason.trim() === '') throw new Failure('--reason must say why (it is recorded with the event, and a return or a loss is read by the exporter); got a blank one', 2);
  if (reason.length > limits.textLengthMax) {
    throw new Failure(`--reason may have at most ${limits.textLengthMax.toLocaleString('en-US')} characters; got ${reason.length.toLocaleString('en-US')}`, 2);
  }
  checkBody(unitsEnd.pick({ reason: true }), { body: { reason }, fromOptions: new Set(['reason']) }, { reason: '--reason' });
  return reason;
}

/** Decommissions, reports lost or returns the units a serial CSV (header `serial`) lists: all of them or, on any bad line or refusal, none. */
export async function unitsEndCommand(client: ApiClient, ending: UnitEnding, file: string, options: UnitEndOptions, output: Output): Promise<number> {
  const { route, done } = unitEndings[ending];
  const key = checkedKey(options);
  const reason = checkedReason(options.reason);
  // units.* take serials alone, as units.deploy does: a gpu_uuid column is refused, not dropped unchecked.
  const entries = await readSerialFile(file, { serialsMax: limits.deploymentSerialsMax, acceptsGpuUuids: false, use: 'sent' }, output);
  const rerun = ['chipledger', 'units', ending, file, '--reason', reason, ...(options.json ? ['--json'] : [])];
  const body = await change(rerun, () => upload(client, route, { serials: entries.map((entry) => entry.serial), reason }, key, output), file);
  if (options.json) {
    output.out(printableJson(body));
    return 0;
  }
  const count = Number(body.count ?? entries.length);
  output.out(done(`${count.toLocaleString('en-US')} unit${count === 1 ? '' : 's'}`));
  return 0;
}

/** One page of the caller's units, by serial, as a table or --json. */
export async function unitsListCommand(client: ApiClient, options: UnitListOptions, output: Output): Promise<number> {
  return pageCommand(client, '/v1/units', { siteId: options.site, custody: options.custody }, { columns: unitColumns }, options, output);
}

/**
 * One unit by its serial. The serial's rules are the server's to say (its 400 names them);
 * only "", "." and "..", which a URL resolves to another route (GET /v1/units, the list),
 * are refused here, as `shipments show ..` is.
 */
export async function unitsShowCommand(client: ApiClient, serial: string, options: { json?: boolean }, output: Output): Promise<number> {
  if (/^\.{0,2}$/.test(serial)) throw new Failure(`${JSON.stringify(serial)} is not a serial (serials look like SN-000123)`, 2);
  return recordCommand(client, `/v1/units/${encodeURIComponent(serial)}`, options, output);
}

const csvHelp = [
  'file: a CSV with the header "serial" and one serial a line, as for deploy, or - for stdin;',
  `at most ${limits.deploymentSerialsMax.toLocaleString('en-US')} serials. Every line is checked first, and nothing is sent if any is bad.`,
].join('\n');

/** Adds `units` and its subcommands to the program. */
export function registerUnitCommands(program: Command, { client, run, output, idempotencyKeyOption }: Wiring): Command {
  const units = program.command('units').description('units: list, show, and decommission, report lost or return them from a CSV (client)');
  units.command('list').description('units you received or exported, by serial')
    .option('--site <id>', 'only those deployed at this site, e.g. SITE-4')
    .addOption(new Option('--custody <custody>', 'only those in this custody').choices(custodies))
    .option('--limit <n>', 'rows per page').option('--cursor <cursor>', 'continue after a previous page').option('--json', 'print the API answer as JSON')
    .action(run(async (options: UnitListOptions) => unitsListCommand(client(), options, output)));
  units.command('show <serial>').description('one unit: its custody, shipment and site').option('--json', 'print JSON')
    .action(run(async (serial: string, options: { json?: boolean }) => unitsShowCommand(client(), serial, options, output)));
  for (const ending of Object.keys(unitEndings) as UnitEnding[]) {
    units.command(`${ending} <file>`).description(unitEndings[ending].summary)
      .addHelpText('after', `\n${csvHelp}`)
      .requiredOption('--reason <text>', 'why: recorded with the event')
      .option('--json', "print the ledger's answer as JSON")
      .option(...idempotencyKeyOption)
      .action(run(async (file: string, options: UnitEndOptions) => unitsEndCommand(client(), ending, file, options, output)));
  }
  return units;
}

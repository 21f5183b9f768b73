/**
 * The licence, allocation, site and event commands against a real server (the API on a test
 * database, listening on a port), as `chipledger api` is tested: an authority officer drafts,
 * issues, suspends, reinstates, amends and revokes a licence and allocates and resizes without
 * writing JSON; each change prints one sentence (or the API's answer with --json); a refusal
 * names its rule (exit 1); a mistake on the command line is a usage error (exit 2) with no request.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { systemActor } from '../ledger/permissions.ts';
import { buildServer } from '../server/app.ts';
import { ApiClient, unknownOutcomeOf } from './http.ts';
import { licenceCreateCommand } from './licence-commands.ts';
import { main } from './program.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-licence-commands-'));
let database: TestDatabase;
let world: World;
let app: FastifyInstance;
let url: string;
/** Secrets: BIS's officer (the export licence's authority), the exporter (its holder), recipient alpha. */
const tokens = { officer: '', exporter: '', alpha: '' };
/** Every request the server received, as METHOD /path. */
const requests: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  const token = async (orgId: string, role: 'authority_officer' | 'exporter' | 'recipient') =>
    String((await world.run('token.create', { organisationId: orgId, role, label: 'licence commands test' }, systemActor)).secret);
  tokens.officer = await token(world.actors.bis.orgId, 'authority_officer');
  tokens.exporter = await token(world.actors.exporter.orgId, 'exporter');
  tokens.alpha = await token(world.actors.alpha.orgId, 'recipient');
  app = await buildServer({ ledger: world.ledger, pool: database.pool, logger: false });
  app.addHook('onRequest', async (request) => void requests.push(`${request.method} ${request.url}`));
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app?.close();
  await world?.ledger.close();
  await database?.drop();
  rmSync(folder, { recursive: true, force: true });
});
beforeEach(() => {
  requests.length = 0;
});

async function run(args: string[], secret = tokens.officer): Promise<{ code: number; stdout: string; stderr: string }> {
  const { output, out, err } = recordingOutput();
  const code = await main(args, { CHIPLEDGER_DATA_DIR: join(folder, 'data'), CHIPLEDGER_URL: url, CHIPLEDGER_TOKEN: secret }, output);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

/** Runs a command that must succeed, and gives its stdout. */
async function ok(args: string[], secret?: string): Promise<string> {
  const result = await run(args, secret);
  expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

let references = 0;
/**
 * The options of a licence BIS may draft: the exporter holds it, alpha is its end user.
 * `instead` gives some of them other values, in their place: an option given twice is refused
 * (single-value-options.ts), not overridden by the last.
 */
function draftOptions(instead: Readonly<Record<string, string>> = {}): string[] {
  references += 1;
  const options = ['--reference', `BIS-CLI-${references}`, '--direction', 'export', '--holder', world.actors.exporter.orgId, '--product', world.productId,
    '--origin', 'US', '--destination', 'CN', '--units', '1000', '--valid-from', '2026-01-01T00:00:00Z', '--valid-to', '2027-01-01T08:00:00+08:00',
    '--end-user', world.actors.alpha.orgId];
  return options.map((word, at) => {
    const option = options[at - 1];
    return option !== undefined && Object.hasOwn(instead, option) ? instead[option]! : word;
  });
}

async function draft(...more: string[]): Promise<string> {
  const said = await ok(['licences', 'create', ...draftOptions(), ...more]);
  return /^Drafted licence (L-\d+) /.exec(said)![1]!;
}

describe('licences', () => {
  it('drafts a licence from options alone, every field as the API reads it, and says so in one sentence', async () => {
    const said = await ok(['licences', 'create', ...draftOptions(), '--value', '3000000000', '--currency', 'USD',
      '--condition', 'no-military-end-use=No military end use or end user.', '--max-units-per-shipment', '200', '--rider', 'Records are kept for five years.']);
    expect(said).toMatch(new RegExp(`^Drafted licence L-\\d+ \\(BIS-CLI-${references}, export, 1,000 units\\); it is a draft until issued\\.$`));
    expect(requests).toEqual(['POST /v1/licences']);
    const id = /(L-\d+)/.exec(said)![1]!;
    const licence = JSON.parse(await ok(['licences', 'show', id, '--json'])) as Record<string, unknown>;
    expect(licence).toMatchObject({
      id, reference: `BIS-CLI-${references}`, direction: 'export', status: 'draft', holderId: world.actors.exporter.orgId, productIds: [world.productId],
      origin: 'US', destination: 'CN', authorisedUnits: 1000, valueMinor: 3_000_000_000, currency: 'USD',
      validFrom: '2026-01-01T00:00:00.000Z', validTo: '2027-01-01T00:00:00.000Z', riders: ['Records are kept for five years.'],
      conditions: [
        { id: 'no-military-end-use', kind: 'obligation', text: 'No military end use or end user.' },
        { id: 'max-units-per-shipment', kind: 'max_units_per_shipment', value: 200, text: 'No single shipment may exceed 200 units.' },
      ],
    });
    expect(licence.parties).toEqual(expect.arrayContaining([expect.objectContaining({ organisationId: world.actors.alpha.orgId, role: 'end_user' })]));
    // As a record, the value in dollars on a line of its own, before the cents it is stored in
    // ("valueMinor 3,000,000,000" beside "currency USD" read as dollars: the output review).
    const shown = (await ok(['licences', 'show', id])).split('\n');
    expect(shown.filter((line) => /^(value|valueMinor|currency) /.test(line)).map((line) => line.replace(/ +/g, ' '))).toEqual(['value 30,000,000.00 USD', 'valueMinor 3,000,000,000', 'currency USD']);
  });

  it('takes the fields options do not give from --body, and refuses a field given both ways', async () => {
    const body = join(folder, 'kyc.json');
    writeFileSync(body, JSON.stringify({ conditions: [{ id: 'end-user-kyc', kind: 'end_user_kyc_required', text: 'Each end user passes KYC first.' }] }));
    const id = /(L-\d+)/.exec(await ok(['licences', 'create', ...draftOptions(), '--body', body]))![1]!;
    const licence = JSON.parse(await ok(['licences', 'show', id, '--json'])) as { conditions: unknown[] };
    expect(licence.conditions).toEqual([{ id: 'end-user-kyc', kind: 'end_user_kyc_required', text: 'Each end user passes KYC first.' }]);

    requests.length = 0;
    const both = await run(['licences', 'create', ...draftOptions(), '--condition', 'x=y', '--body', body]);
    expect(both.code).toBe(2);
    expect(both.stderr).toBe("chipledger: --condition/--max-units-per-shipment and the body's conditions both give conditions; give it once; nothing was sent");
    expect(requests).toEqual([]);
  });

  it('walks a licence through its steps: issue, suspend, reinstate, amend, its versions, revoke; the holder surrenders', async () => {
    const id = await draft();
    expect(await ok(['licences', 'issue', id])).toBe(`Licence ${id} is now issued.`);
    expect(await ok(['licences', 'suspend', id, '--reason', 'end-use check pending'])).toBe(`Licence ${id} is now suspended.`);
    expect(await ok(['licences', 'reinstate', id])).toBe(`Licence ${id} is now issued.`);
    expect(await ok(['licences', 'amend', id, '--reason', 'calibrated upwards', '--units', '1500', '--valid-to', '2027-06-30T00:00:00Z'])).toBe(`Amended licence ${id}: version 2, now issued.`);

    const versions = (await ok(['licences', 'versions', id])).split('\n');
    expect(versions[0]).toMatch(/^version +seq +status +authorisedUnits +validFrom +validTo +productIds$/);
    expect(versions.slice(2).map((line) => line.trim().replace(/ +/g, ' '))).toEqual([
      expect.stringMatching(new RegExp(`^1 \\d+ draft 1,000 2026-01-01T00:00:00.000Z 2027-01-01T00:00:00.000Z ${world.productId}$`)),
      expect.stringMatching(new RegExp(`^2 \\d+ issued 1,500 2026-01-01T00:00:00.000Z 2027-06-30T00:00:00.000Z ${world.productId}$`)),
    ]);
    // The holder surrenders (the authority may not), then the authority can no longer revoke it.
    expect(await ok(['licences', 'surrender', id, '--reason', 'no longer needed'], tokens.exporter)).toBe(`Licence ${id} is now surrendered.`);
    const revoke = await run(['licences', 'revoke', id]);
    expect(revoke.code).toBe(1);
    expect(revoke.stderr).toContain('rule: licence-status');

    const other = await draft();
    expect(await ok(['licences', 'revoke', other, '--reason', 'drafted in error'])).toBe(`Licence ${other} is now revoked.`);
  });

  it("refuses an amendment whose --body names another licence than the command's, and sends one that names the same", async () => {
    const id = await draft();
    const other = join(folder, 'amend-other.json');
    writeFileSync(other, JSON.stringify({ licenceId: 'L-99999', riders: ['r2'] }));
    requests.length = 0;
    const refused = await run(['licences', 'amend', id, '--reason', 'r', '--body', other]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`chipledger: the body's licenceId "L-99999" differs from "${id}", the licence the command amends; leave licenceId out of the body; nothing was sent`);
    expect(requests).toEqual([]);
    const same = join(folder, 'amend-same.json');
    writeFileSync(same, JSON.stringify({ licenceId: id, riders: ['r2'] }));
    expect(await ok(['licences', 'amend', id, '--reason', 'r', '--body', same])).toBe(`Amended licence ${id}: version 2, now draft.`);
  });

  it("shows a version's value in its currency's units, not its minor units", async () => {
    const id = await draft('--value', '100000', '--currency', 'USD');
    await ok(['licences', 'amend', id, '--reason', 'in yen', '--value', '100000', '--currency', 'JPY']);
    const versions = (await ok(['licences', 'versions', id])).split('\n');
    expect(versions[0]).toMatch(/^version +seq +status +authorisedUnits +value +validFrom/);
    expect(versions.slice(2).map((line) => / (\S+ [A-Z]{3}) /.exec(line)?.[1])).toEqual(['1,000.00 USD', '100,000 JPY']);
  });

  it('prints a refusal with its rule and exit 1: a step the licence\'s status does not allow', async () => {
    const id = await draft();
    await ok(['licences', 'issue', id]);
    const again = await run(['licences', 'issue', id]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(`error: 409 Conflict with the current state (conflict)\n  couldn't issue licence ${id}: it is issued, and only a licence that is draft can be\n  rule: licence-status\n  details: {"status":"issued"}`);
  });

  it('prints the API\'s answer with --json instead of the sentence, and answers a rerun under the same key as the first time', async () => {
    const id = await draft();
    const first = await run(['licences', 'issue', id, '--json', '--idempotency-key', `issue-${id}`]);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ licenceId: id, status: 'issued' });
    const again = await run(['licences', 'issue', id, '--json', '--idempotency-key', `issue-${id}`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(first.stdout);
  });

  it('refuses what it can check before sending, with exit 2, the option and the value named, and no request', async () => {
    const refusals: Array<[string[], string]> = [
      [['licences', 'create', ...draftOptions({ '--units': 'abc' })], '--units must be a whole number from 1 to 1,000,000,000; got "abc"'],
      [['licences', 'create', ...draftOptions({ '--units': '0' })], '--units must be a whole number from 1 to 1,000,000,000; got "0"'],
      [['licences', 'create', ...draftOptions({ '--units': '1e3' })], '--units must be a whole number from 1 to 1,000,000,000; got "1e3"'],
      [['licences', 'create', ...draftOptions({ '--valid-to': '2027-02-30T00:00:00Z' })], '--valid-to must be a date and time with its offset, such as 2027-01-01T00:00:00Z or 2027-01-01T08:00:00+08:00; got "2027-02-30T00:00:00Z"'],
      [['licences', 'create', ...draftOptions({ '--valid-to': '365d' })], '--valid-to must be a date and time with its offset, such as 2027-01-01T00:00:00Z or 2027-01-01T08:00:00+08:00; got "365d"'],
      [['licences', 'create', ...draftOptions({ '--valid-to': '2027-01-01' })], '--valid-to must be a date and time with its offset, such as 2027-01-01T00:00:00Z or 2027-01-01T08:00:00+08:00; got "2027-01-01"'],
      [['licences', 'create', ...draftOptions({ '--valid-to': '2027-01-01T24:00:00Z' })], '--valid-to must be a date and time with its offset, such as 2027-01-01T00:00:00Z or 2027-01-01T08:00:00+08:00; got "2027-01-01T24:00:00Z"'],
      [['licences', 'create', ...draftOptions({ '--origin': 'UK' })], '--origin (origin): must be the ISO 3166-1 alpha-2 code of a country, such as CN (not a reserved or user-assigned code such as UK, EU or XX); nothing was sent'],
      [['licences', 'create', ...draftOptions(), '--value', '100'], '--currency (currency): valueMinor and currency go together; nothing was sent'],
      [['licences', 'create', ...draftOptions(), '--condition', 'no slug'], '--condition must be ID=TEXT, such as "no-military-end-use=No military end use or end user"; got "no slug"'],
      [['licences', 'create', '--reference', 'X-1', '--units', '5'], 'missing --direction, --holder, --product, --origin, --destination, --valid-from, --valid-to (or their fields direction, holderId, productIds, origin, destination, validFrom, validTo in --body); nothing was sent'],
      [['licences', 'amend', 'L-1', '--reason', 'x', '--units', '-3'], '--units must be a whole number from 1 to 1,000,000,000; got "-3"'],
      [['licences', 'issue', '..'], '".." is not an id (ids look like L-7, A-12 or SITE-3)'],
      [['allocations', 'create', '--licence', 'L-1', '--recipient', 'ORG-1', '--units', '1.5'], '--units must be a whole number from 1 to 1,000,000,000; got "1.5"'],
      [['allocations', 'create', '--licence', 'L-1', '--recipient', 'ORG-1', '--units', '5', '--period-start', '2026-04-31'], '--period-start must be a day such as 2026-07-01; got "2026-04-31"'],
      [['allocations', 'create', '--licence', 'L-1', '--recipient', 'ORG-1', '--units', '5', '--period-start', '2026-04-01'], '--period-end (periodEnd): periodStart and periodEnd go together; nothing was sent'],
      [['allocations', 'resize', 'A-1', '--units', ' 7'], '--units must be a whole number from 0 to 1,000,000,000; got " 7"'],
      [['sites', 'register', '--name', 'DC', '--province', 'P', '--city', 'C', '--latitude', '91', '--longitude', '0', '--capacity', '10'], '--latitude must be a decimal number from -90 to 90, such as 41.0347; got "91"'],
      [['sites', 'register', '--name', ' ', '--province', 'P', '--city', 'C', '--latitude', '1', '--longitude', '0', '--capacity', '10'], '--name (name): must not be empty; nothing was sent'],
      [['events', 'list', '--limit', '501'], '--limit must be a whole number from 1 to 500; got "501"'],
      [['events', 'show', '4x'], 'an event\'s number is a whole number such as 42 (its seq, the log\'s leaf index); got "4x"'],
      [['licences', 'issue', 'L-1', '--idempotency-key', 'has space'], '--idempotency-key must be 1 to 128 visible ASCII characters (no spaces); got 9 characters'],
    ];
    for (const [args, message] of refusals) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toBe(`chipledger: ${message}`);
    }
    expect(requests).toEqual([]);
  });
});

describe('allocations', () => {
  it('allocates part of an issued licence, resizes it, shows it; more than the licence has is refused by its rule', async () => {
    const id = await draft();
    await ok(['licences', 'issue', id]);
    const recipient = world.actors.alpha.orgId;
    const said = await ok(['allocations', 'create', '--licence', id, '--recipient', recipient, '--units', '600', '--period-start', '2026-02-01', '--period-end', '2026-12-31']);
    expect(said).toMatch(new RegExp(`^Created allocation A-\\d+: 600 units of licence ${id} for ${recipient}, 2026-02-01 to 2026-12-31\\.$`));
    const allocation = /(A-\d+)/.exec(said)![1]!;

    const over = await run(['allocations', 'create', '--licence', id, '--recipient', recipient, '--units', '401']);
    expect(over.code).toBe(1);
    expect(over.stderr).toContain('rule: invariant-1');

    expect(await ok(['allocations', 'resize', allocation, '--units', '1000'])).toBe(`Allocation ${allocation} now has 1,000 units.`);
    const shown = await ok(['allocations', 'show', allocation]);
    expect(shown).toMatch(new RegExp(`^id +${allocation}$`, 'm'));
    expect(shown).toMatch(/^units +1,000$/m);
    expect(shown).toMatch(/^periodEnd +2026-12-31$/m);
  });
});

describe('sites and events', () => {
  it('registers a site as its recipient, lists and shows it', async () => {
    const said = await ok(['sites', 'register', '--name', 'Ulanqab DC 9', '--province', 'Inner Mongolia', '--city', 'Ulanqab', '--latitude', '41.0347', '--longitude', '113.1332', '--capacity', '20000'], tokens.alpha);
    expect(said).toMatch(/^Registered site SITE-\d+ \(Ulanqab DC 9, Ulanqab\): room for 20,000 units\.$/);
    const site = /(SITE-\d+)/.exec(said)![1]!;
    const listed = await ok(['sites', 'list'], tokens.alpha);
    expect(listed.split('\n')[0]).toMatch(/^id +name +province +city +country +capacityUnits +deployedUnits +organisationId/);
    // No --country: the organisation's own.
    expect(listed).toMatch(new RegExp(`^${site} +Ulanqab DC 9 +Inner Mongolia +Ulanqab +CN +20,000 +0 +${world.actors.alpha.orgId}`, 'm'));
    // Every digit stored, not 41.03 (half a kilometre off: the output review).
    expect(await ok(['sites', 'show', site], tokens.alpha)).toMatch(/^latitude +41\.0347$/m);
    expect(JSON.parse(await ok(['sites', 'show', site, '--json'], tokens.alpha))).toMatchObject({ id: site, latitude: 41.0347, longitude: 113.1332 });
    const abroad = /(SITE-\d+)/.exec(await ok(['sites', 'register', '--name', 'Johor DC 1', '--province', 'Johor', '--city', 'Kulai', '--country', 'MY', '--latitude', '1.66', '--longitude', '103.6', '--capacity', '500'], tokens.alpha))![1]!;
    expect(await ok(['sites', 'show', abroad], tokens.alpha)).toMatch(/^country +MY$/m);
  });

  it("lists a licence's history as a table, a page at a time, and shows one event", async () => {
    const id = await draft();
    await ok(['licences', 'issue', id]);
    const history = await run(['events', 'list', '--subject', id]);
    expect(history.code, history.stderr).toBe(0);
    const lines = history.stdout.split('\n');
    expect(lines[0]).toMatch(/^seq +at +kind +subjectId +actor$/);
    expect(lines.slice(2).map((line) => line.trim().split(/ +/)[2])).toEqual(['licence.create', 'licence.issue']);
    const firstPage = await run(['events', 'list', '--subject', id, '--limit', '1']);
    expect(firstPage.stdout.split('\n')).toHaveLength(3);
    expect(firstPage.stderr).toMatch(/^\(more: add --cursor \S+\)$/);

    const seq = lines[3]!.trim().split(/ +/)[0]!;
    const shown = await ok(['events', 'show', seq]);
    expect(shown).toMatch(/^kind +licence\.issue$/m);
    expect(shown).not.toMatch(/^canonical /m);
    expect(JSON.parse(await ok(['events', 'show', seq, '--json']))).toHaveProperty('canonical');
  });
});

describe('an outcome that is unknown', () => {
  it('gives the command that sends the same licence again under the same key, the body from stdin said so', async () => {
    const fetch = (async () => new Response('', { status: 503, headers: { 'retry-after': '0' } })) as typeof globalThis.fetch;
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch, newKey: () => 'k-9' });
    const stdin = Readable.from([Buffer.from('{"riders": ["a rider"]}')]);
    const options = { reference: 'BIS 9', direction: 'export', holder: 'ORG-3', product: ['PRD-1', 'PRD-2'], origin: 'US', destination: 'CN', units: '10',
      validFrom: '2026-01-01T08:00:00+08:00', validTo: '2027-01-01T00:00:00Z', body: '-', json: true };
    const error = await licenceCreateCommand(client, options, recordingOutput().output, stdin).catch((failure: unknown) => failure);
    expect(unknownOutcomeOf(error)?.rerun).toBe("chipledger licences create --reference 'BIS 9' --direction export --holder ORG-3 --origin US --destination CN --units 10"
      + ' --valid-from 2026-01-01T00:00:00.000Z --valid-to 2027-01-01T00:00:00.000Z --product PRD-1 --product PRD-2 --body - --json --idempotency-key k-9  # with the same file on stdin');
  });
});

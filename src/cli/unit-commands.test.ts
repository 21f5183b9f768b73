/**
 * `chipledger units …` against a real server (the API on a test database, listening on a
 * port), as a recipient: units decommissioned, reported lost and returned from a CSV, read
 * back with `units list` and `units show`; a bad line refused by its number with nothing
 * changed in the database; a refusal of the ledger printed with its rule. And `-` for stdin
 * in every command that reads a serial file, through a real process's stdin.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { cleanServeEnv } from '../../test/support/http-serve.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';
import { buildApiWorld, databaseFootprint, type ApiWorld } from '../../test/support/server.ts';
import { limits } from '../core/limits.ts';
import { change, readBounded } from './client-commands.ts';
import { ApiClient, unknownOutcomeOf } from './http.ts';
import { Failure } from './output.ts';
import { main } from './program.ts';
import { unitsEndCommand } from './unit-commands.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-unit-commands-'));
const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));
let database: TestDatabase;
let api: ApiWorld;
let url: string;
/** Every request the server received, as METHOD /path. */
const requests: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  api = await buildApiWorld(database.pool);
  api.app.addHook('onRequest', async (request) => void requests.push(`${request.method} ${request.url}`));
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await api?.app.close();
  await api?.world.ledger.close();
  await database?.drop();
  rmSync(folder, { recursive: true, force: true });
});
beforeEach(() => {
  requests.length = 0;
});

const env = (token: string) => ({ CHIPLEDGER_DATA_DIR: join(folder, 'data'), CHIPLEDGER_URL: url, CHIPLEDGER_TOKEN: token });

/** The command line in this process, as recipient alpha by default. */
async function run(args: string[], token = api.tokens.recipient): Promise<{ code: number; stdout: string; stderr: string }> {
  const { output, out, err } = recordingOutput();
  const code = await main(args, env(token), output);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

/** The command line as its own process, with `input` on its stdin: what `-` reads. */
function runWithStdin(args: string[], input: string, token = api.tokens.recipient): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: repositoryRoot, env: cleanServeEnv(env(token)), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(input);
  return new Promise((done) => child.once('close', (code) => done({ code, stdout, stderr })));
}

function csv(name: string, serials: readonly string[]): string {
  const path = join(folder, name);
  writeFileSync(path, `serial\n${serials.join('\n')}\n`);
  return path;
}

async function unit(serial: string, token = api.tokens.recipient): Promise<Record<string, unknown>> {
  const shown = await run(['units', 'show', serial, '--json'], token);
  expect(shown.code, shown.stderr).toBe(0);
  return JSON.parse(shown.stdout) as Record<string, unknown>;
}

async function deployedUnits(siteId: string): Promise<number> {
  const site = await run(['api', 'GET', `/v1/sites/${siteId}`, '--json']);
  return Number((JSON.parse(site.stdout) as { deployedUnits: number }).deployedUnits);
}

describe('units decommission, report-lost, return', () => {
  it('decommissions the units of a CSV, deployed or not, in one POST, and says what changed', async () => {
    const { serials } = await api.shipment('own', 'delivered', 3);
    expect((await run(['deploy', api.sites.alpha, csv('deploy-1.csv', serials.slice(0, 2))])).code).toBe(0);
    const before = await deployedUnits(api.sites.alpha);
    requests.length = 0;

    const result = await run(['units', 'decommission', csv('decommission.csv', serials), '--reason', 'failed burn-in']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('Reported 3 units decommissioned; no site counts them any more.');
    expect(result.stderr).toContain('checking: '); // the same progress notes as deploy
    expect(requests).toEqual(['POST /v1/units/decommission']);
    for (const serial of serials) expect(await unit(serial)).toMatchObject({ custody: 'decommissioned', siteId: null });
    expect(await deployedUnits(api.sites.alpha)).toBe(before - 2);
  });

  it('reports units lost with --json printing the ledger\'s answer, and their exporter sees them lost', async () => {
    const { serials } = await api.shipment('own', 'delivered', 2);
    const result = await run(['units', 'report-lost', csv('lost.csv', serials), '--reason', 'stolen from the loading dock', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ seq: expect.any(Number), count: 2, custody: 'lost' });
    expect(await unit(serials[0]!, api.tokens.exporter)).toMatchObject({ custody: 'lost' });
  });

  it('returns units, one said as one, and lists them by custody and site', async () => {
    const { serials } = await api.shipment('own', 'delivered', 2);
    expect((await run(['deploy', api.sites.alpha, csv('deploy-2.csv', serials)])).code).toBe(0);
    const listed = await run(['units', 'list', '--site', api.sites.alpha, '--custody', 'deployed', '--limit', '500']);
    expect(listed.code, listed.stderr).toBe(0);
    const [header, , ...rows] = listed.stdout.split('\n');
    expect(header).toMatch(/^serial +custody +siteId +shipmentId +productId +recipientId/);
    for (const serial of serials) expect(rows.some((row) => row.startsWith(`${serial}  deployed  ${api.sites.alpha}`)), serial).toBe(true);

    const result = await run(['units', 'return', csv('return.csv', serials.slice(0, 1)), '--reason', 'RMA 4411']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('Reported 1 unit returned to their exporter, who may ship them again; no site counts them any more.');
    const returned = await run(['units', 'list', '--custody', 'returned', '--json']);
    expect((JSON.parse(returned.stdout) as { items: Array<{ serial: string }> }).items.map((item) => item.serial)).toContain(serials[0]);
    expect(requests).toContain(`GET /v1/units?siteId=${api.sites.alpha}&custody=deployed&limit=500`);
  });

  it('refuses a CSV with a bad line by its number, sends nothing, and changes nothing', async () => {
    const { serials } = await api.shipment('own', 'delivered', 2);
    const file = join(folder, 'bad.csv');
    writeFileSync(file, `serial\n${serials[0]}\nSN 7\n${serials[1]}\n${serials[0]}\n`);
    const footprint = await databaseFootprint(database.pool);
    requests.length = 0;
    for (const ending of ['decommission', 'report-lost', 'return']) {
      const result = await run(['units', ending, file, '--reason', 'x']);
      expect(result.code, ending).toBe(1);
      const lines = result.stderr.split('\n').filter((line) => line !== '');
      expect(lines.slice(-4), ending).toEqual([
        `${file}: 2 bad lines; nothing was sent`,
        expect.stringMatching(new RegExp(`^  ${file}:3: serial "SN 7" has the character U\\+0020`)),
        `  ${file}:5: serial ${serials[0]} is listed twice (first on line 2)`,
        `chipledger: ${file} was not sent`,
      ]);
    }
    expect(requests).toEqual([]);
    expect(await databaseFootprint(database.pool)).toEqual(footprint);
  });

  it('prints the ledger\'s refusal with its rule, and changes nothing', async () => {
    const { serials } = await api.shipment('own', 'delivered', 2);
    expect((await run(['units', 'decommission', csv('first.csv', serials.slice(0, 1)), '--reason', 'dead'])).code).toBe(0);
    // A refusal is remembered under its Idempotency-Key (invariant 6): that row, and no other, is new.
    const { idempotency_keys: keysBefore, ...footprint } = await databaseFootprint(database.pool);
    const result = await run(['units', 'return', csv('again.csv', serials), '--reason', 'RMA']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`error: 409 .*\\(conflict\\)\\n  unit ${serials[0]} is decommissioned; only delivered or deployed units can be returned\\n  rule: unit-custody`));
    const { idempotency_keys: keysAfter, ...after } = await databaseFootprint(database.pool);
    expect(after).toEqual(footprint);
    expect(Number.parseInt(keysAfter!, 10)).toBe(Number.parseInt(keysBefore!, 10) + 1);
    expect(await unit(serials[1]!)).toMatchObject({ custody: 'delivered' });
  });

  it('refuses a missing or blank --reason, and a gpu_uuid column, as usage errors before anything is sent', async () => {
    const file = csv('reasonless.csv', ['SN-1']);
    expect((await run(['units', 'decommission', file])).code).toBe(2);
    const blank = await run(['units', 'return', file, '--reason', '  ']);
    expect(blank.code).toBe(2);
    expect(blank.stderr).toBe('chipledger: --reason must say why (it is recorded with the event, and a return or a loss is read by the exporter); got a blank one');
    const long = await run(['units', 'return', file, '--reason', 'x'.repeat(limits.textLengthMax + 1)]);
    expect(long.stderr).toBe(`chipledger: --reason may have at most 2,000 characters; got 2,001`);
    // What the API's schema refuses, as `licences suspend` refuses it: before the file is read
    // (this one is not there) or anything uploaded.
    for (const reason of ['end\u202eof life', 'red \u001b[31m', 'C1 \u009b']) {
      const refused = await run(['units', 'decommission', join(folder, 'not-read.csv'), '--reason', reason]);
      expect(refused.code, reason).toBe(2);
      expect(refused.stderr, reason).toMatch(/^chipledger: --reason \(reason\): must be free of control characters and bidi controls, .*; nothing was sent$/);
    }
    const uuids = join(folder, 'uuids.csv');
    writeFileSync(uuids, 'serial,gpu_uuid\nSN-1,GPU-12345678-aaaa-bbbb-cccc-123456789012\n');
    const column = await run(['units', 'report-lost', uuids, '--reason', 'x']);
    expect(column.code).toBe(1);
    expect(column.stderr).toContain(`${uuids}:1: has a gpu_uuid column, but this command sends serials alone`);
    expect(requests).toEqual([]);
  });
});

describe('units list and show', () => {
  it('show a unit of another recipient as not found, a list past its page with the cursor to go on, and refuse "." and ".." before any request', async () => {
    const missing = await run(['units', 'show', api.units.other]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: 404 .*\(not_found\)/);
    // A serial may hold "/" and ":": sent escaped, it reaches the unit route, which names it.
    const slashed = await run(['units', 'show', 'NO/SUCH:1']);
    expect(slashed.code).toBe(1);
    expect(slashed.stderr).toMatch(/^error: 404 .*\(not_found\)\n.*unit NO\/SUCH:1/);
    const shown = await run(['units', 'show', api.units.own]);
    expect(shown.stdout).toMatch(new RegExp(`^serial +${api.units.own}$`, 'm'));
    expect(shown.stdout).toMatch(/^custody +deployed$/m);

    const page = await run(['units', 'list', '--limit', '1']);
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout.split('\n')).toHaveLength(3);
    expect(page.stderr).toMatch(/^\(more: add --cursor \S+\)$/);

    requests.length = 0;
    for (const serial of ['.', '..']) expect((await run(['units', 'show', serial])).code).toBe(2);
    expect((await run(['units', 'list', '--custody', 'gone'])).code).toBe(2);
    expect((await run(['units', 'list', '--limit', '501'])).code).toBe(2);
    expect(requests).toEqual([]);
  });
});

describe('- reads the CSV from stdin', () => {
  it('in units return, deploy and manifest import, as a real process reads it', async () => {
    const { serials } = await api.shipment('own', 'delivered', 2);
    const deployed = await runWithStdin(['deploy', api.sites.alpha, '-'], `serial\n${serials.join('\n')}\n`);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout).toBe(`Reported 2 units at site ${api.sites.alpha}.\n`);
    const returned = await runWithStdin(['units', 'return', '-', '--reason', 'RMA 12'], `serial\n${serials[0]}\n`);
    expect(returned.code, returned.stderr).toBe(0);
    expect(returned.stdout).toBe('Reported 1 unit returned to their exporter, who may ship them again; no site counts them any more.\n');
    expect(await unit(serials[0]!)).toMatchObject({ custody: 'returned' });

    const empty = await api.shipment('own', 'empty', 2);
    const manifest = [api.serial('STDIN'), api.serial('STDIN')];
    const imported = await runWithStdin(['manifest', 'import', empty.id, '-'], `serial\n${manifest.join('\n')}\n`, api.tokens.exporter);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toBe(`Attached 2 serials to shipment ${empty.id} (2 listed in all).\n`);
  });

  it('names stdin in the bad lines it refuses, and sends nothing', async () => {
    const refused = await runWithStdin(['units', 'decommission', '-', '--reason', 'x'], 'serial\nSN-1\nSN 2\n');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('stdin: 1 bad line; nothing was sent\n  stdin:3: serial "SN 2" has the character U+0020');
    expect(refused.stderr).toContain('chipledger: stdin was not sent\n');
    expect(requests).toEqual([]);
  });

  it('stops reading at the bound, whatever is still behind it', async () => {
    let given = 0;
    const endless = new Readable({ read() {
      given += 1;
      this.push(Buffer.alloc(1024, 'A'));
    } });
    await expect(readBounded('-', 'a serial file', 10_000, endless)).rejects.toThrow(new Failure('stdin holds more than 10,000 bytes (reading stopped there); a serial file may have at most 10,000'));
    expect(given).toBeLessThan(40);
    expect(await readBounded('-', 'a serial file', 10_000, Readable.from([Buffer.from('serial\n'), Buffer.from('SN-1\n')]))).toEqual(Buffer.from('serial\nSN-1\n'));
  });

  it('gives a change read from stdin whose outcome is unknown the rerun, saying the file goes on stdin again', async () => {
    const file = csv('rerun.csv', ['SN-1']);
    const fetch = (async () => new Response('', { status: 503, headers: { 'retry-after': '0' } })) as typeof globalThis.fetch;
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch, newKey: () => 'k-1' });
    const fromFile = await unitsEndCommand(client, 'report-lost', file, { reason: 'fell off a truck' }, recordingOutput().output).catch((error: unknown) => error);
    expect(unknownOutcomeOf(fromFile)?.rerun).toBe(`chipledger units report-lost ${file} --reason 'fell off a truck' --idempotency-key k-1`);
    const fromStdin = await change(['chipledger', 'units', 'return', '-', '--reason', 'RMA'], () => client.post('/v1/units/return', {}), '-').catch((error: unknown) => error);
    expect(unknownOutcomeOf(fromStdin)?.rerun).toBe('chipledger units return - --reason RMA --idempotency-key k-1  # with the same file on stdin');
  });
});

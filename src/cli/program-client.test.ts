/**
 * Client commands through the command line's entry function, against a small HTTP server that
 * records what it is asked: usage errors exit 2 before any request, and a server that is not
 * the chipledger API, or a file that is not a file, is one line on stderr with exit 1, no stack.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startStandInApi, type StandInApi } from '../../test/support/stand-in-api.ts';
import type { Output } from './output.ts';
import { main } from './program.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-program-client-'));
const requests: string[] = [];
/** The Idempotency-Key of each request that had one. */
const keys: string[] = [];
/** What the server answers to every request: a web server that is not ours, by default. */
let answer: { status: number; type: string; body: string; headers?: Record<string, string> } = { status: 200, type: 'text/html', body: '<html><body>It works!</body></html>' };
let api: StandInApi;
let url: string;

beforeAll(async () => {
  api = await startStandInApi((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    if (typeof request.headers['idempotency-key'] === 'string') keys.push(request.headers['idempotency-key']);
    request.resume();
    request.on('end', () => response.writeHead(answer.status, { 'content-type': answer.type, ...answer.headers }).end(answer.body));
  });
  url = api.url;
});
afterAll(async () => {
  await api?.close();
  rmSync(folder, { recursive: true, force: true });
});
beforeEach(() => {
  requests.length = 0;
  keys.length = 0;
  answer = { status: 200, type: 'text/html', body: '<html><body>It works!</body></html>' };
});

async function run(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const output: Output = { out: (line) => out.push(line), err: (line) => err.push(line), errStream: { isTTY: false, write: (text) => err.push(text) > 0 } };
  const code = await main(args, { CHIPLEDGER_DATA_DIR: join(folder, 'data'), CHIPLEDGER_URL: url, CHIPLEDGER_TOKEN: 'clt_test' }, output);
  return { code, stderr: err.join('\n'), stdout: out.join('\n') };
}

function expectOneLine(result: { code: number; stderr: string }, code: number): string {
  expect(result.code).toBe(code);
  expect(result.stderr).not.toContain('unexpected error');
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stderr.split('\n')).toHaveLength(1);
  return result.stderr;
}

describe('client commands', () => {
  it('say in one line when JSON answers are not the API\'s: nested too deep to print, or of another shape', async () => {
    const deep = `{"title":"Bad Request","status":400,"extra":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    answer = { status: 400, type: 'application/problem+json', body: deep };
    const refused = await run(['licences', 'list']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).not.toMatch(/RangeError|\n\s+at /);
    expect(refused.stderr).toContain('extra: (too large or nested too deep to print)');
    answer = { status: 200, type: 'application/json', body: `{"id":"L-1","x":${'['.repeat(20_000)}${']'.repeat(20_000)}}` };
    expect(expectOneLine(await run(['licences', 'show', 'L-1']), 1)).toMatch(/too large or nests too deep to print .*is CHIPLEDGER_URL the chipledger API\?$/);
    for (const [args, body] of [[['shipments', 'list'], '{"status":"ok"}'], [['report', 'utilisation'], '{"items":{"a":1},"nextCursor":null}'], [['licences', 'list'], '{"items":[1,2],"nextCursor":null}']] as const) {
      answer = { status: 200, type: 'application/json', body };
      expect(expectOneLine(await run([...args]), 1), args.join(' ')).toMatch(/answered with something other than a page of records \(items and nextCursor\); is CHIPLEDGER_URL the chipledger API\?$/);
    }
    answer = { status: 201, type: 'application/json', body: '{"status":"ok"}' };
    expect(expectOneLine(await run(['shipments', 'book', '--export-allocation', 'A-1', '--import-allocation', 'A-2', '--product', 'P-1', '--units', '1']), 1))
      .toMatch(/a success that is not a booking .* the outcome is unknown/);
  });

  it('hold a booking and a shipment\'s step to the API\'s schema before anything is sent (exit 2), never quoting a token\'s secret', async () => {
    const book = (...more: string[]) => ['shipments', 'book', '--export-allocation', 'A-1', '--import-allocation', 'A-2', '--product', 'P-1', '--units', '1', ...more];
    const cases: Array<[string[], RegExp]> = [
      [['shipments', 'book', '--export-allocation', 'A-1', '--import-allocation', 'A-2', '--product', 'P-1', '--units', '99999999999999999999999'], /^chipledger: --units must be a whole number from 1 to /],
      [book('--reference', 'x'.repeat(5_000)), /^chipledger: --reference \(reference\): /],
      [['shipments', 'book', '--export-allocation', 'A 1', '--import-allocation', 'A-2', '--product', 'P-1', '--units', '1'], /^chipledger: --export-allocation \(exportAllocationId\): must be an id/],
      [['shipments', 'ship', 'S-1', '--reason', 'late\u0007'], /^chipledger: --reason \(reason\): must be free of control characters/],
      [['shipments', 'cancel', 'S-1', '--reason', 'x'.repeat(5_000)], /^chipledger: --reason \(reason\): /],
      // A return states why (commander refuses one without --reason, exit 2, with the command's usage).
      [['shipments', 'return', 'S-1', '--reason', ''], /^chipledger: --reason \(reason\): /],
      [['licences', 'show', 'clt_TOK-7_s3cr3tS3cr3t'], /^chipledger: a token's secret was given where an id goes .*chipledger token revoke TOK-7$/],
      [['events', 'list', '--subject', 'clt_TOK-7_s3cr3tS3cr3t'], /^chipledger: --subject must be the id of a record, such as S-12, L-7 or SITE-3; got \(a token's secret, not shown\)$/],
    ];
    for (const [args, said] of cases) {
      const result = await run(args);
      expect(expectOneLine(result, 2), args.join(' ')).toMatch(said);
      expect(result.stderr).not.toContain('s3cr3t');
    }
    expect(requests).toEqual([]);
  });

  it('say when CHIPLEDGER_URL answers with something other than the API', async () => {
    for (const args of [['licences', 'list'], ['shipments', 'show', 'S-1'], ['report', 'utilisation']]) {
      const message = expectOneLine(await run(args), 1);
      expect(message).toMatch(/^chipledger: http:\/\/127\.0\.0\.1:\d+ answered GET \/v1\/\S+ with 200 and text\/html, not a JSON object; is CHIPLEDGER_URL the chipledger API\?$/);
    }
  });

  it('refuse "." and ".." as ids (a URL resolves them) before any request', async () => {
    for (const args of [['shipments', 'cancel', '..'], ['shipments', 'show', '.'], ['licences', 'show', '..'], ['manifest', 'import', '..', join(folder, 'x.csv')]]) {
      expect(expectOneLine(await run(args), 2)).toMatch(/^chipledger: "\.\.?" is not an id/);
    }
    expect(requests).toEqual([]);
  });

  it('refuse a --limit that is not a page size as a usage error, before any request', async () => {
    for (const limit of ['abc', '0', '501', '1e2']) {
      expect(expectOneLine(await run(['shipments', 'list', '--limit', limit]), 2)).toBe(`chipledger: --limit must be a whole number from 1 to 500; got "${limit}"`);
    }
    expect(requests).toEqual([]);
    answer = { status: 200, type: 'application/json', body: JSON.stringify({ items: [{ id: 'S-1', status: 'booked' }], nextCursor: null }) };
    expect((await run(['shipments', 'list', '--limit', '500'])).code).toBe(0);
    expect(requests).toEqual(['GET /v1/shipments?limit=500']);
  });

  it('name a serial file that cannot be read (a folder) in one line', async () => {
    const message = expectOneLine(await run(['manifest', 'import', 'S-1', folder]), 1);
    expect(message).toBe(`chipledger: couldn't read ${folder}: EISDIR: illegal operation on a directory, read`);
    expect(requests).toEqual([]);
  });

  it('refuse a deployment file with a gpu_uuid column, like any bad serial file: exit 1, the problem by line, nothing sent', async () => {
    const file = join(folder, 'deploy-uuids.csv');
    writeFileSync(file, 'serial,gpu_uuid\nSN1,GPU-12345678-aaaa-bbbb-cccc-123456789012\n');
    const result = await run(['deploy', 'SITE-1', file]);
    expect(result.code).toBe(1);
    // After the progress note, which a file this small (and stderr not a terminal) makes one line.
    expect(result.stderr.split('\n').filter((line) => line !== '').slice(-3)).toEqual([
      // A deployment report is sent, not imported: the message says what did not happen.
      `${file}: 1 bad line; nothing was sent`,
      `  ${file}:1: has a gpu_uuid column, but this command sends serials alone, so the GPU UUIDs would not be checked; remove the column (the header must be "serial")`,
      `chipledger: ${file} was not sent`,
    ]);
    expect(requests).toEqual([]);
  });

  it('show the next cursor of a list without the control characters a server put in it', async () => {
    answer = { status: 200, type: 'application/json', body: JSON.stringify({ items: [{ id: 'S-1', status: 'booked' }], nextCursor: 'c\u001b[2J\u009b2J' }) };
    const result = await run(['shipments', 'list']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('(more: add --cursor c [2J 2J)');
  });

  it('list the allocations of one licence with --licence, as the API\'s licenceId filter', async () => {
    answer = { status: 200, type: 'application/json', body: JSON.stringify({ items: [{ id: 'A-3', licenceId: 'L-7', recipientId: 'ORG-5', units: 10 }], nextCursor: null }) };
    const result = await run(['allocations', 'list', '--licence', 'L-7', '--limit', '50']);
    expect(result.code, result.stderr).toBe(0);
    expect(requests).toEqual(['GET /v1/allocations?licenceId=L-7&limit=50']);
    expect(result.stdout).toContain('A-3  L-7');
  });

  it('send a change answered 503 again with the same key, then print the key and the exact command that reruns it', async () => {
    const detail = 'the database did not confirm the change; retry with the same Idempotency-Key to learn the outcome';
    answer = { status: 503, type: 'application/problem+json', body: JSON.stringify({ title: 'Service Unavailable', status: 503, code: 'unavailable', detail }), headers: { 'retry-after': '0' } };
    const result = await run(['shipments', 'book', '--export-allocation', 'A-35', '--import-allocation', 'A-38', '--product', 'PRD-21', '--units', '10', '--reference', "Q3 o'brien"]);
    expect(result.code).toBe(1);
    expect(requests).toEqual(Array(3).fill('POST /v1/shipments'));
    expect(new Set(keys).size).toBe(1);
    const [key] = keys;
    const lines = result.stderr.split('\n');
    expect(lines.filter((line) => line.startsWith('note: '))).toEqual([
      'note: the server answered 503 (unavailable); sending it again in 0 ms with the same Idempotency-Key (attempt 2 of 3)',
      'note: the server answered 503 (unavailable); sending it again in 0 ms with the same Idempotency-Key (attempt 3 of 3)',
    ]);
    expect(lines).toContain(`chipledger: the outcome is unknown: the change may have been made or not (sent 3 times with Idempotency-Key ${key}).`);
    // The deadline as it was sent (30d from then), so the rerun sends the same body under the key.
    const rerun = lines.at(-1)!;
    expect(rerun).toMatch(new RegExp(`^ {2}chipledger shipments book --export-allocation A-35 --import-allocation A-38 --product PRD-21 --units 10 --deadline \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z --reference 'Q3 o'\\\\''brien' --idempotency-key ${key}$`));

    // The rerun, as printed, sends that key and the same body.
    requests.length = 0;
    keys.length = 0;
    answer = { status: 201, type: 'application/json', body: JSON.stringify({ shipmentId: 'S-9', units: 10 }) };
    const words = rerun.trim().split(' ').slice(1);
    const again = await run([...words.slice(0, 13), "Q3 o'brien", ...words.slice(-2)]);
    expect(again.code, again.stderr).toBe(0);
    expect(keys).toEqual([key]);
  });

  it('send the --idempotency-key given with every change, and refuse one the server would refuse, before any request', async () => {
    const csv = join(folder, 'keyed.csv');
    writeFileSync(csv, 'serial\nSN1\n');
    // One answer that reads as each change's (a booking's shipmentId and units among them).
    answer = { status: 200, type: 'application/json', body: JSON.stringify({ shipmentId: 'S-1', units: 1, status: 'shipped', added: 1, deployed: 1 }) };
    const changes = [['shipments', 'ship', 'S-1'], ['shipments', 'cancel', 'S-1'], ['manifest', 'import', 'S-1', csv], ['deploy', 'SITE-1', csv],
      ['shipments', 'book', '--export-allocation', 'A-1', '--import-allocation', 'A-2', '--product', 'P-1', '--units', '1']];
    for (const args of changes) {
      const result = await run([...args, '--idempotency-key', 'rerun-7']);
      expect(result.code, result.stderr).toBe(0);
    }
    expect(keys).toEqual(Array(changes.length).fill('rerun-7'));
    requests.length = 0;
    for (const key of ['has space', 'k'.repeat(129), 'é']) {
      expect(expectOneLine(await run(['shipments', 'ship', 'S-1', '--idempotency-key', key]), 2)).toMatch(/^chipledger: --idempotency-key must be 1 to 128 visible ASCII characters/);
    }
    expect(requests).toEqual([]);
  });

  it('say a redirect as one, naming where it points, and follow none: nothing is cancelled by a GET', async () => {
    answer = { status: 302, type: 'text/plain', body: '', headers: { location: 'https://ledger.example/v1/shipments/S-82/cancel' } };
    const message = expectOneLine(await run(['shipments', 'cancel', 'S-82']), 1);
    expect(message).toBe(`chipledger: ${url} answered POST /v1/shipments/S-82/cancel with 302, a redirect to https://ledger.example/v1/shipments/S-82/cancel; chipledger does not follow redirects (a POST would become a GET, without the token): set CHIPLEDGER_URL to https://ledger.example`);
    expect(requests).toEqual(['POST /v1/shipments/S-82/cancel']);
  });
});

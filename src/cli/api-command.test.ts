/**
 * `chipledger api` against a real server (the API on a test database, listening on a port):
 * a change made, read back and replayed under its key; usage errors and bad bodies exit 2
 * with no request sent; a refusal is printed as every client command prints one, exit 1.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { buildWorld, type World } from '../../test/world.ts';
import { limits } from '../core/limits.ts';
import { systemActor } from '../ledger/permissions.ts';
import { buildServer } from '../server/app.ts';
import { apiCommand } from './api-command.ts';
import { jsonProblem, lineAndColumn } from './json-body.ts';
import { ApiClient, UnexpectedAnswerError, unknownOutcomeOf } from './http.ts';
import { Failure } from './output.ts';
import { main } from './program.ts';
import { serialCsvBytesMax } from './serials-csv.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-api-command-'));
let database: TestDatabase;
let world: World;
let app: FastifyInstance;
let url: string;
/** A recipient's token: recipients register sites. */
let token: string;
/** Every request the server received, as METHOD /path. */
const requests: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  world = await buildWorld(database.pool);
  token = String((await world.run('token.create', { organisationId: world.actors.alpha.orgId, role: 'recipient', label: 'api command test' }, systemActor)).secret);
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

async function run(args: string[], secret = token): Promise<{ code: number; stdout: string; stderr: string }> {
  const { output, out, err } = recordingOutput();
  const code = await main(args, { CHIPLEDGER_DATA_DIR: join(folder, 'data'), CHIPLEDGER_URL: url, CHIPLEDGER_TOKEN: secret }, output);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

function file(name: string, content: string | Buffer): string {
  const path = join(folder, name);
  writeFileSync(path, content);
  return path;
}

const site = { name: 'Ulanqab DC 7', province: 'Inner Mongolia', city: 'Ulanqab', latitude: 41, longitude: 113.1, capacityUnits: 5_000 };

describe('chipledger api', () => {
  it('registers a site from a body file, reads it back, and answers a replay under the same key as the first time', async () => {
    const body = file('site.json', `${JSON.stringify(site, null, 2)}\n`);
    const made = await run(['api', 'POST', '/v1/sites', '--body', body, '--idempotency-key', 'site-7-once']);
    expect(made.code, made.stderr).toBe(0);
    const answer = JSON.parse(made.stdout) as { siteId: string };
    expect(answer.siteId).toMatch(/^SITE-\d+$/);
    expect(made.stdout).toContain('\n  "siteId"'); // indented by default

    const read = await run(['api', 'GET', `/v1/sites/${answer.siteId}`, '--json']);
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.split('\n')).toHaveLength(1);
    expect(JSON.parse(read.stdout)).toMatchObject({ id: answer.siteId, ...site });

    const again = await run(['api', 'post', '/v1/sites', '--body', body, '--idempotency-key', 'site-7-once']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(made.stdout);
    expect(requests).toEqual(['POST /v1/sites', `GET /v1/sites/${answer.siteId}`, 'POST /v1/sites']);
    const sites = await database.pool.query<{ count: number }>("SELECT count(*)::int AS count FROM sites WHERE name = 'Ulanqab DC 7'");
    expect(sites.rows[0]!.count).toBe(1);
  });

  it('prints a refusal as client commands do, with exit 1: the same key with another body, a body the API refuses, an unknown id', async () => {
    const first = await run(['api', 'POST', '/v1/sites', '--body', file('first.json', JSON.stringify({ ...site, name: 'Keyed DC' })), '--idempotency-key', 'reused-key']);
    expect(first.code, first.stderr).toBe(0);
    const reused = await run(['api', 'POST', '/v1/sites', '--body', file('other.json', JSON.stringify({ ...site, name: 'Other DC' })), '--idempotency-key', 'reused-key']);
    expect(reused.code).toBe(1);
    expect(reused.stdout).toBe('');
    expect(reused.stderr).toBe('error: 422 Idempotency key reused with a different request (idempotency_mismatch)\n'
      + '  idempotency key reused-key was used before with a different request; use a new key for a new request\n  rule: invariant-6');

    const refused = await run(['api', 'POST', '/v1/sites', '--body', file('far.json', JSON.stringify({ ...site, latitude: 91 }))]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: 400 .*\(invalid_input\)\n.*latitude/);

    const missing = await run(['api', 'GET', '/v1/sites/SITE-999999']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: 404 .*\(not_found\)\n.*SITE-999999/);
    expect(requests).toHaveLength(4);
  });

  it('refuses a method or a path it would not send as it reads, with exit 2 and no request', async () => {
    const refusals: Array<[string[], RegExp]> = [
      [['api', 'DELETE', '/v1/sites/SITE-1'], /^chipledger: METHOD must be GET or POST .*; got "DELETE"$/],
      [['api', 'GET', '/sites'], /^chipledger: PATH must start with \/v1\/, .*; got "\/sites"$/],
      [['api', 'GET', `${url}/v1/sites`], /^chipledger: PATH must start with \/v1\//],
      [['api', 'GET', 'v1/sites'], /^chipledger: PATH must start with \/v1\//],
      [['api', 'GET', '/v1/../healthz'], /^chipledger: PATH must not hold a "\." or "\.\." segment/],
      [['api', 'POST', '/v1/shipments/%2E%2e/cancel'], /^chipledger: PATH must not hold a "\." or "\.\." segment/],
      [['api', 'GET', '/v1/sites/./SITE-1'], /^chipledger: PATH must not hold a "\." or "\.\." segment/],
      [['api', 'GET', '/v1/sites\\..\\..\\healthz'], /^chipledger: PATH must be visible ASCII characters without spaces, backslashes or '#'/],
      [['api', 'GET', '/v1/organisations?name=a b'], /^chipledger: PATH must be visible ASCII characters/],
      [['api', 'GET', '/v1/sites', '--body', 'x.json'], /^chipledger: --body is for POST/],
      [['api', 'GET', '/v1/sites', '--idempotency-key', 'k-1'], /^chipledger: --idempotency-key is for POST/],
      [['api', 'POST', '/v1/sites', '--all'], /^chipledger: --all is for GET/],
      [['api', 'POST', '/v1/sites', '--idempotency-key', 'has space'], /^chipledger: --idempotency-key must be 1 to 128 visible ASCII characters/],
      [['api', 'POST', '/v1/sites', '--idempotency-key', 'clt_TOK-3_abcdefghijklmnopqrstuvwxyz012345'], /^chipledger: --idempotency-key starts with clt_ .* chipledger token revoke TOK-3$/],
    ];
    for (const [args, message] of refusals) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(message);
      expect(result.stderr.split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stderr).not.toContain('abcdefghijklmnopqrstuvwxyz');
    }
    expect(requests).toEqual([]);
  });

  it('refuses a body that is not JSON as written, naming its line and column, with exit 2 and no request', async () => {
    const bodies: Array<[string, string | Buffer, string]> = [
      ['syntax.json', '{\n  "name": "DC",\n  "city": }\n', 'syntax.json:3:11: expected a value'],
      ['comma.json', '{"name": "DC",}', 'comma.json:1:15: expected a name in double quotes'],
      ['open.json', '{"name": "DC"\n', "open.json:2:1: the JSON ends where ',' or '}' was expected"],
      ['empty.json', '', 'empty.json:1:1: the JSON ends where a value was expected'],
      ['cut.json', '{\n', 'cut.json:2:1: the JSON ends where a name was expected'],
      ['after.json', '{}\n{}', 'after.json:2:1: there is more after the JSON value'],
      // JSON.parse keeps the last of a repeated name without a word; the server refuses it.
      ['twice.json', '{"capacityUnits": 10,\n "capacityUnits": 100000}', 'twice.json:2:2: the name "capacityUnits" appears twice in one object'],
      ['escaped-twice.json', '{"a": 1, "\\u0061": 2}', 'escaped-twice.json:1:10: the name "a" appears twice'],
      // JSON.parse reads it as Infinity, which would be sent as null.
      ['huge.json', '{"capacityUnits": 1e400}', 'huge.json:1:19: the number 1e400 is too large to send'],
      ['latin1.json', Buffer.from('{"name": "K\xf6ln"}', 'latin1'), 'latin1.json is not UTF-8 text, as a JSON body must be'],
    ];
    for (const [name, content, message] of bodies) {
      const path = file(name, content);
      const result = await run(['api', 'POST', '/v1/sites', '--body', path]);
      expect(result.code, name).toBe(2);
      expect(result.stderr, name).toContain(`chipledger: ${join(folder, message)}`);
      expect(result.stderr, name).toContain('nothing was sent');
    }
    expect(requests).toEqual([]);
  });

  it('sends a body from stdin with --body -, and refuses one past the bound the manifest import reads, having read no further', async () => {
    const client = new ApiClient({ baseUrl: url, token });
    const { output, out } = recordingOutput();
    // A byte order mark from an editor is not part of the JSON.
    const stdin = Readable.from([Buffer.from(`\uFEFF${JSON.stringify({ ...site, name: 'Piped DC' })}`)]);
    expect(await apiCommand(client, 'POST', '/v1/sites', { body: '-', json: true }, output, stdin)).toBe(0);
    expect(JSON.parse(out[0]!)).toMatchObject({ siteId: expect.stringMatching(/^SITE-/) });

    let pulled = 0;
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const endless = (async function* () {
      for (;;) {
        pulled += 1;
        yield chunk;
      }
    })();
    const max = serialCsvBytesMax.toLocaleString('en-US');
    await expect(apiCommand(client, 'POST', '/v1/sites', { body: '-' }, recordingOutput().output, endless))
      .rejects.toThrow(new Failure(`stdin holds more than ${max} bytes (reading stopped there); a request body may have at most ${max}`));
    expect(pulled).toBe(serialCsvBytesMax / chunk.length + 1);
    expect(requests).toEqual(['POST /v1/sites']);
  });

  it('prints one page of a list, saying there is more; with --all, every page up to the bound, then where to go on from', async () => {
    for (let index = 0; index < limits.reportPagesMax + 2; index += 1) {
      await world.run('site.register', { ...site, name: `Paged DC ${index}` }, world.actors.alpha);
    }
    const total = Number((await database.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM sites WHERE org_id = $1', [world.actors.alpha.orgId])).rows[0]!.count);
    expect(total).toBeGreaterThan(limits.reportPagesMax);

    const one = await run(['api', 'GET', '/v1/sites?limit=2']);
    expect(one.code, one.stderr).toBe(0);
    const page = JSON.parse(one.stdout) as { items: unknown[]; nextCursor: string };
    expect(page.items).toHaveLength(2);
    expect(one.stderr).toBe(`(more: add --all, or cursor=${page.nextCursor} to the query)`);

    requests.length = 0;
    const all = await run(['api', 'GET', '/v1/sites', '--all', '--json']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stderr).toBe('');
    // The first page as the path asks for it (pages after it are of the API's largest size: see below).
    expect(requests).toEqual(['GET /v1/sites']);
    expect(JSON.parse(all.stdout)).toEqual({ items: expect.any(Array), nextCursor: null });
    expect((JSON.parse(all.stdout) as { items: unknown[] }).items).toHaveLength(total);

    requests.length = 0;
    const bounded = await run(['api', 'GET', '/v1/sites?limit=1', '--all']);
    // Exit 1: what was printed is not the whole list.
    expect(bounded.code, bounded.stderr).toBe(1);
    expect(requests).toHaveLength(limits.reportPagesMax);
    const stopped = JSON.parse(bounded.stdout) as { items: unknown[]; nextCursor: string };
    expect(stopped.items).toHaveLength(limits.reportPagesMax);
    expect(bounded.stderr).toBe(`chipledger: stopped after ${limits.reportPagesMax} pages, before the end of the list, so the answer is incomplete (exit 1); go on with --all and cursor=${stopped.nextCursor} in the query`);
    // Going on from there reads the rest.
    const rest = await run(['api', 'GET', `/v1/sites?limit=1&cursor=${stopped.nextCursor}`, '--all', '--json']);
    expect((JSON.parse(rest.stdout) as { items: unknown[] }).items).toHaveLength(total - limits.reportPagesMax);
  });

  it("takes an authority's first steps as the README gives them: a product, an exporter, a licence drafted and issued, an allocation", async () => {
    const admin = String((await world.run('token.create', { organisationId: world.actors.bis.orgId, role: 'authority_admin', label: 'README steps' }, systemActor)).secret);
    const post = async (path: string, body?: unknown) => {
      const args = ['api', 'POST', path, '--json', ...(body === undefined ? [] : ['--body', file(`step-${requests.length}.json`, JSON.stringify(body))])];
      const result = await run(args, admin);
      expect(result.code, `${path}: ${result.stderr}`).toBe(0);
      return JSON.parse(result.stdout) as Record<string, string>;
    };
    const { productId } = await post('/v1/products', {
      model: 'H200 NVL', vendor: 'NVIDIA',
      parameters: { denseTops: 1670.5, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4800, memoryGb: 141, designedForDatacenter: true },
    });
    const { organisationId } = await post('/v1/organisations', { name: 'Example Systems Inc.', country: 'US', roles: ['exporter'] });
    const { licenceId } = await post('/v1/licences', {
      reference: 'BIS-2026-0107', direction: 'export', holderId: organisationId, productIds: [productId], origin: 'US', destination: 'CN',
      authorisedUnits: 2_000, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z',
      parties: [{ organisationId: world.actors.alpha.orgId, role: 'end_user' }],
    });
    expect(await post(`/v1/licences/${licenceId}/issue`)).toMatchObject({ licenceId });
    const { allocationId } = await post('/v1/allocations', { licenceId, recipientId: world.actors.alpha.orgId, units: 500 });
    const read = await run(['api', 'GET', `/v1/licences/${licenceId}`, '--json'], admin);
    expect(JSON.parse(read.stdout)).toMatchObject({ id: licenceId, status: 'issued', authorisedUnits: 2_000, allocatedUnits: 500 });
    expect(allocationId).toMatch(/^A-\d+$/);
  });

  it('says to ask for smaller pages when an answer is more than the CLI reads, with the limit it was asked for', async () => {
    // A server's answer past the bound (the API's pages of long rows end at limits.pageBytesMax; another server's need not).
    const asked: string[] = [];
    const fetch = (async (input: URL) => {
      asked.push(`${input.pathname}${input.search}`);
      return new Response('{}', { headers: { 'content-type': 'application/json', 'content-length': String(limits.apiResponseBytesMax + 1) } });
    }) as unknown as typeof globalThis.fetch;
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch });
    const tooLarge = `http://ledger.test answered GET %s with 200: the answer is more than ${limits.apiResponseBytesMax} bytes, the most chipledger reads; `
      + 'if /v1/licences/L-7/versions is a list, ask for smaller pages: give the path a smaller limit=, such as limit=%d (this page was asked for with limit=%d)';
    // --all without a limit asks for its first page as the path gives it, at the API's default size.
    for (const [path, options, sent, smaller, limit] of [
      ['/v1/licences/L-7/versions', { all: true }, ['/v1/licences/L-7/versions'], limits.pageSizeDefault / 5, limits.pageSizeDefault],
      ['/v1/licences/L-7/versions?limit=500', { all: true }, ['/v1/licences/L-7/versions?limit=500'], 100, 500],
      ['/v1/licences/L-7/versions', {}, ['/v1/licences/L-7/versions'], limits.pageSizeDefault / 5, limits.pageSizeDefault],
    ] as const) {
      asked.length = 0;
      const failed = await apiCommand(client, 'GET', path, options, recordingOutput().output).catch((error: unknown) => error);
      expect(asked, path).toEqual(sent);
      expect(failed, path).toBeInstanceOf(UnexpectedAnswerError);
      expect((failed as Error).message, path).toBe(tooLarge.replace('%s', sent.at(-1)!).replace('%d', String(smaller)).replace('%d', String(limit)));
    }
  });

  it('--all takes the first page as the path asks for it, then the largest pages, and a page too large for the CLI again at the default size', async () => {
    const asked: string[] = [];
    const fetch = (async (input: URL) => {
      asked.push(`${input.pathname}${input.search}`);
      const cursor = input.searchParams.get('cursor');
      if (input.searchParams.get('limit') === String(limits.pageSizeMax) && cursor === 'c1') {
        return new Response('{}', { headers: { 'content-type': 'application/json', 'content-length': String(limits.apiResponseBytesMax + 1) } });
      }
      return Response.json(cursor === null ? { items: [1, 2], nextCursor: 'c1' } : { items: [3], nextCursor: null });
    }) as unknown as typeof globalThis.fetch;
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch });
    const out = recordingOutput();
    expect(await apiCommand(client, 'GET', '/v1/events', { all: true, json: true }, out.output)).toBe(0);
    expect(asked).toEqual(['/v1/events', `/v1/events?limit=${limits.pageSizeMax}&cursor=c1`, `/v1/events?limit=${limits.pageSizeDefault}&cursor=c1`]);
    expect(JSON.parse(out.out.join('\n'))).toEqual({ items: [1, 2, 3], nextCursor: null });
  });

  it('stops --all at a cursor the server gave before, instead of printing the same pages again', async () => {
    for (const cursors of [['c1', 'c1'], ['c1', 'c2', 'c1']]) {
      let page = 0;
      const fetch = (async () => Response.json({ items: [{ page }], nextCursor: cursors[Math.min(page++, cursors.length - 1)] })) as typeof globalThis.fetch;
      const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch });
      const failed = await apiCommand(client, 'GET', '/v1/sites', { all: true }, recordingOutput().output).catch((error: unknown) => error);
      expect((failed as Error).message, cursors.join(' ')).toBe(`/v1/sites answered page ${cursors.length} with a cursor it gave before (c1), so its pages would go round for ever; is CHIPLEDGER_URL the chipledger API?`);
      expect(page, cursors.join(' ')).toBe(cursors.length);
    }
  });

  it('gives a change whose outcome is unknown the command that sends the same body again under its key', async () => {
    const fetch = (async () => new Response('', { status: 503, headers: { 'retry-after': '0' } })) as typeof globalThis.fetch;
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch, newKey: () => 'k-1' });
    const body = file('rerun.json', '{"licenceId": "L-7"}');
    const fromFile = await apiCommand(client, 'POST', '/v1/licences/L-7/issue', { body }, recordingOutput().output).catch((error: unknown) => error);
    expect(unknownOutcomeOf(fromFile)?.rerun).toBe(`chipledger api POST /v1/licences/L-7/issue --body ${body} --idempotency-key k-1`);
    const bare = await apiCommand(client, 'POST', '/v1/ledger/sweep', { idempotencyKey: 'mine' }, recordingOutput().output).catch((error: unknown) => error);
    expect(unknownOutcomeOf(bare)?.rerun).toBe('chipledger api POST /v1/ledger/sweep --idempotency-key mine');
    const piped = await apiCommand(client, 'POST', '/v1/sites', { body: '-' }, recordingOutput().output, Readable.from([Buffer.from('{}')])).catch((error: unknown) => error);
    expect(unknownOutcomeOf(piped)?.rerun).toBe('chipledger api POST /v1/sites --body - --idempotency-key k-1  # with the same body on stdin');
    // A script that read the answer on one line reads the rerun's so too.
    const scripted = await apiCommand(client, 'POST', '/v1/licences/L-7/issue', { body, json: true }, recordingOutput().output).catch((error: unknown) => error);
    expect(unknownOutcomeOf(scripted)?.rerun).toBe(`chipledger api POST /v1/licences/L-7/issue --body ${body} --json --idempotency-key k-1`);
  });
});

describe('jsonProblem', () => {
  it('takes what JSON.parse takes, as it reads it', () => {
    for (const text of ['{}', '[]', ' {"a": [1, -2.5e3, true, false, null, "x\\n\\u00e9"], "b": {"a": {}}} ', '"text"', '0', '[{"a":1},{"a":1}]']) {
      expect(jsonProblem(text), text).toBeUndefined();
      expect(() => JSON.parse(text)).not.toThrow();
    }
  });

  it('refuses what JSON.parse refuses', () => {
    for (const text of ['{a: 1}', "{'a': 1}", '[1,]', '[01]', '"\u0001"', '"\\x41"', '[1 2]', '{"a" 1}', 'nul', '+1', '.5', '[', '"open']) {
      expect(jsonProblem(text), text).toBeDefined();
      expect(() => JSON.parse(text), text).toThrow();
    }
  });

  it('reads strings in one pass: a mistake late in a long string, and a long run of escapes, take milliseconds', () => {
    // With a repeat in a repeat, the time doubled with each character before the tab (40: hours).
    const note = 'a realistic note with a literal tab at the end of forty-odd characters';
    for (const text of [`{"serial": "${note}\t"}`, `{"${note}\t": 1}`, `{"serial": "${note}\\q"}`, `["${note}`]) {
      const started = performance.now();
      expect(jsonProblem(text), text).toMatchObject({ reason: expect.stringMatching(/string is not closed|name in double quotes/) });
      expect(performance.now() - started, text).toBeLessThan(100);
    }
    // 12 MB of escapes, which overflowed the regular expression's stack; JSON.parse takes it.
    const escapes = `{"note": "${'\\u00e9'.repeat(2_000_000)}"}`;
    expect(() => JSON.parse(escapes)).not.toThrow();
    expect(jsonProblem(escapes)).toBeUndefined();
  });

  it('counts nesting up to bodyNestingDepthMax, and refuses one level more', () => {
    const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
    expect(jsonProblem(nested(limits.bodyNestingDepthMax))).toBeUndefined();
    expect(jsonProblem(nested(limits.bodyNestingDepthMax + 1))).toEqual({ offset: limits.bodyNestingDepthMax, reason: `the body nests deeper than ${limits.bodyNestingDepthMax} levels` });
    // Deep enough to end JSON.stringify's stack: only counted, never recursed into.
    expect(jsonProblem('['.repeat(1_000_000))?.offset).toBe(limits.bodyNestingDepthMax);
  });

  it('places an offset by line and column', () => {
    expect(lineAndColumn('ab\ncd\n', 0)).toEqual({ line: 1, column: 1 });
    expect(lineAndColumn('ab\ncd\n', 4)).toEqual({ line: 2, column: 2 });
    expect(lineAndColumn('ab\ncd\n', 6)).toEqual({ line: 3, column: 1 });
  });
});

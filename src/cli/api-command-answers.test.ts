/**
 * `chipledger api` against answers no chipledger server gives, each within the 32 MiB an
 * answer may have: a page of millions of items, pages that pass what --all gathers, an answer
 * nested millions deep, and a change answered 201 with a body it cannot read. Each ends in a
 * line that says what happened, never a stack trace; a change made keeps its key.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { allPagesItemsMax, apiCommand } from './api-command.ts';
import { ApiClient } from './http.ts';
import { Failure } from './output.ts';
import { reportFailure } from './program.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-api-answers-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** A client of a server that answers each request with the next of `answers`, and the URLs asked. */
function clientOf(answers: Array<() => Response>): { client: ApiClient; asked: string[] } {
  const asked: string[] = [];
  const fetch = (async (input: URL | string) => {
    asked.push(String(input));
    const answer = answers.shift();
    if (answer === undefined) throw new Error('no more answers');
    return answer();
  }) as typeof globalThis.fetch;
  return { client: new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, retryDelayMs: 1, newKey: () => 'key-7' }), asked };
}

const jsonAnswer = (text: string, status = 200) => () => new Response(text, { status, headers: { 'content-type': 'application/json' } });

async function failureOf(run: Promise<number>): Promise<Failure> {
  const error = await run.then(() => undefined, (caught: unknown) => caught);
  if (error instanceof Failure) return error;
  throw error ?? new Error('expected the command to fail');
}

describe('chipledger api GET --all', () => {
  it('gathers a page of a million items without reaching the end of the stack', async () => {
    const items = 1_000_000;
    const { client } = clientOf([jsonAnswer(`{"items":[${Array(items).fill('{}').join(',')}],"nextCursor":null}`)]);
    const { output, out } = recordingOutput();
    expect(await apiCommand(client, 'GET', '/v1/products', { all: true, json: true }, output)).toBe(0);
    expect((JSON.parse(out[0]!) as { items: unknown[] }).items).toHaveLength(items);
  });

  it(`stops with the cursor once the pages gathered pass ${limits.apiAllPagesBytesMax} bytes, as at 20 pages`, async () => {
    // Pages of 20 MiB, each under the 32 MiB an answer may have: the fourteenth passes 256 MiB.
    const pageBytes = 20 * 1024 * 1024;
    const page = (index: number) => {
      const head = `{"items":["`;
      const tail = `"],"nextCursor":"c${index + 1}"}`;
      return jsonAnswer(`${head}${'x'.repeat(pageBytes - head.length - tail.length)}${tail}`);
    };
    const { client, asked } = clientOf(Array.from({ length: 20 }, (_, index) => page(index)));
    const { output, out, err } = recordingOutput();
    // Exit 1: the list goes on, and `> list.json` must not be taken for all of it.
    expect(await apiCommand(client, 'GET', '/v1/products', { all: true, json: true }, output)).toBe(1);
    const pages = Math.floor(limits.apiAllPagesBytesMax / pageBytes) + 1;
    expect(asked).toHaveLength(pages);
    expect(err).toEqual([`chipledger: stopped after ${pages} page(s), ${(pages * pageBytes).toLocaleString('en-US')} bytes, past the ${limits.apiAllPagesBytesMax.toLocaleString('en-US')} that --all gathers, before the end of the list, so the answer is incomplete (exit 1); go on with --all and cursor=c${pages} in the query`]);
    const printed = JSON.parse(out[0]!) as { items: string[]; nextCursor: string };
    expect({ items: printed.items.length, nextCursor: printed.nextCursor }).toEqual({ items: pages, nextCursor: `c${pages}` });
  });

  it(`stops with the cursor once the items gathered pass ${allPagesItemsMax}: bytes alone do not bound them (three bytes an object)`, async () => {
    const page = (index: number) => jsonAnswer(`{"items":[${Array(allPagesItemsMax + 1).fill('{}').join(',')}],"nextCursor":"c${index + 1}"}`);
    const { client, asked } = clientOf(Array.from({ length: 3 }, (_, index) => page(index)));
    const { output, out, err } = recordingOutput();
    expect(await apiCommand(client, 'GET', '/v1/products', { all: true, json: true }, output)).toBe(1);
    expect(asked).toHaveLength(1);
    expect(err).toEqual([`chipledger: stopped after 1 page(s), ${(allPagesItemsMax + 1).toLocaleString('en-US')} items, past the ${allPagesItemsMax.toLocaleString('en-US')} that --all gathers, before the end of the list, so the answer is incomplete (exit 1); go on with --all and cursor=c1 in the query`]);
    expect((JSON.parse(out[0]!) as { nextCursor: string }).nextCursor).toBe('c1');
  });
});

describe('chipledger api, an answer nested a million deep', () => {
  it('is a one-line failure, not a stack trace', async () => {
    const depth = 1_000_000;
    for (const all of [false, true]) {
      const { client } = clientOf([jsonAnswer(`{"items":[${'['.repeat(depth)}${']'.repeat(depth)}],"nextCursor":null}`)]);
      const failure = await failureOf(apiCommand(client, 'GET', '/v1/products', { all }, recordingOutput().output));
      expect(failure.message).toBe('the answer is too large or nests too deep to print (Maximum call stack size exceeded); no answer of the chipledger API is either: is CHIPLEDGER_URL the chipledger API?');
    }
  });
});

describe('chipledger api POST answered 201 with a body it cannot read', () => {
  it('says the change was made when its JSON answer is past the bound, its outcome unknown when the answer is not JSON, and prints its key and the command that reads its answer', async () => {
    const body = join(folder, 'site.json');
    writeFileSync(body, '{"name":"x"}');
    const html = () => new Response('<html>created</html>', { status: 201, headers: { 'content-type': 'text/html' } });
    const huge = () => new Response('{}', { status: 201, headers: { 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024) } });
    const first = {
      // Not JSON: perhaps not chipledger at all (a catch-all page), so nothing says it was made.
      html: 'chipledger: the outcome is unknown: the change may have been made or not (sent once with Idempotency-Key key-7).',
      huge: 'chipledger: the change was made (answered 201), but its answer could not be read (sent once with Idempotency-Key key-7).',
    };
    for (const [name, answer] of [['html', html], ['huge', huge]] as const) {
      const { client } = clientOf([answer]);
      const error = await apiCommand(client, 'POST', '/v1/sites', { body }, recordingOutput().output, (async function* () {})()).catch((caught: unknown) => caught);
      const { output, err } = recordingOutput();
      expect(reportFailure(error, output)).toBe(1);
      expect(err[1]!.split('\n')[0]).toBe(first[name]);
      expect(err.join('\n').split('\n').at(-1)).toBe(`  chipledger api POST /v1/sites --body ${body} --idempotency-key key-7`);
    }
  });
});

describe('chipledger api GET of a text/plain route (the log key, an event\'s serial list)', () => {
  const textAnswer = (text: string) => () => new Response(text, { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  const terminal = { isTerminal: () => true };
  const pipe = { isTerminal: () => false };

  it('prints the answer as it came, byte for byte (the serial list is what serialsSha256 is taken over), with --all too', async () => {
    const key = 'chipledger.demo/log+1a2b3c4d+AbCdEf0123456789abcdef0123456789ABCDEFabcdefg=\n';
    const serials = 'SN-0001 GPU-abcdef12-3456-7890-abcd-ef1234567890\nSN-0002\n';
    for (const [path, text, all] of [['/v1/log/key', key, false], ['/v1/events/91/serials', serials, false], ['/v1/events/91/serials', serials, true]] as const) {
      const { client } = clientOf([textAnswer(text)]);
      const { output, out, err } = recordingOutput();
      expect(await apiCommand(client, 'GET', path, { all }, output, undefined, terminal)).toBe(0);
      // output.out ends each line with a newline: what was printed is exactly the answer.
      expect(out.map((line) => `${line}\n`).join('')).toBe(text);
      expect(err).toEqual([]);
    }
    const { client } = clientOf([textAnswer('')]);
    const { output, out } = recordingOutput();
    expect(await apiCommand(client, 'GET', '/v1/events/3/serials', {}, output, undefined, pipe)).toBe(0);
    expect(out).toEqual([]);
  });

  it('asks a route that is no list, with --all, once and as typed: the API refuses a limit such a route does not take', async () => {
    // As the API answers: a route with no page refuses any query (400 "Unrecognized key").
    const refusingQueries = (answer: () => Response) => (async (input: URL | string) => {
      asked.push(String(input));
      return new URL(String(input)).search === '' ? answer() : Response.json({ status: 400, detail: 'Unrecognized key: "limit"' }, { status: 400 });
    }) as typeof globalThis.fetch;
    const asked: string[] = [];
    const serials = 'SN-0001\nSN-0002\n';
    for (const [path, answer] of [['/v1/log/key', textAnswer('chipledger.demo/log+1a2b3c4d+AbCd=\n')], ['/v1/events/62/serials', textAnswer(serials)], ['/v1/licences/L-87', jsonAnswer('{"id":"L-87"}')]] as const) {
      asked.length = 0;
      const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch: refusingQueries(answer) });
      const { output, out } = recordingOutput();
      expect(await apiCommand(client, 'GET', path, { all: true, json: true }, output, undefined, pipe), path).toBe(0);
      expect(asked, path).toEqual([`http://ledger.test${path}`]);
      expect(out.length, path).toBeGreaterThan(0);
    }
  });

  it('refuses to print to a terminal text holding a control or bidi character, which it prints unchanged into a file or a pipe', async () => {
    for (const hostile of ['SN-1\u009b2J\n', 'SN-\u202e1\n', 'SN-1\u001b[31m\n']) {
      const refused = await failureOf(apiCommand(clientOf([textAnswer(hostile)]).client, 'GET', '/v1/events/9/serials', {}, recordingOutput().output, undefined, terminal));
      expect(refused.message).toBe('/v1/events/9/serials answered text holding characters a terminal would act on (control or bidi characters); it is printed only into a file or a pipe: add > FILE');
      const { output, out } = recordingOutput();
      expect(await apiCommand(clientOf([textAnswer(hostile)]).client, 'GET', '/v1/events/9/serials', {}, output, undefined, pipe)).toBe(0);
      expect(`${out.join('\n')}\n`).toBe(hostile);
    }
  });

  it('still refuses an answer that is neither JSON nor text/plain as not the API\'s', async () => {
    const html = () => new Response('<html>portal</html>', { status: 200, headers: { 'content-type': 'text/html' } });
    await expect(apiCommand(clientOf([html]).client, 'GET', '/v1/log/key', {}, recordingOutput().output, undefined, pipe)).rejects.toThrow(/not a JSON object; is CHIPLEDGER_URL the chipledger API\?/);
  });
});

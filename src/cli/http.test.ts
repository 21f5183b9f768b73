import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, NetworkError, UnexpectedAnswerError, formatApiError } from './http.ts';

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

function fakeFetch(answers: Array<Response | Error>): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetch = (async (input: URL | string, init?: RequestInit) => {
    const body = init?.body instanceof ReadableStream ? await new Response(init.body).text() : String(init?.body ?? '');
    calls.push({ url: String(input), method: init?.method ?? 'GET', headers: init?.headers as Record<string, string>, body });
    const answer = answers.shift();
    if (answer === undefined) throw new Error('no more answers');
    if (answer instanceof Error) throw answer;
    return answer;
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

const json = (status: number, body: unknown, type = 'application/json') => new Response(JSON.stringify(body), { status, headers: { 'content-type': type } });

describe('ApiClient', () => {
  it('sends the bearer token and a fresh idempotency key per POST', async () => {
    const { fetch, calls } = fakeFetch([json(201, { shipmentId: 'S-1' }), json(201, { shipmentId: 'S-2' })]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch });
    await client.post('/v1/shipments', { units: 1 });
    await client.post('/v1/shipments', { units: 1 });
    expect(calls[0]!.headers.authorization).toBe('Bearer clt_x');
    expect(calls[0]!.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(calls[0]!.headers['idempotency-key']).not.toBe(calls[1]!.headers['idempotency-key']);
  });

  it('retries once after a network error with the same key and body', async () => {
    const { fetch, calls } = fakeFetch([new TypeError('fetch failed'), json(200, { ok: true })]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, retryDelayMs: 1 });
    expect(await client.post('/v1/shipments/S-1/manifest', { serials: ['A'] }, { onUpload: () => {} })).toEqual({ ok: true });
    expect(calls).toHaveLength(2);
    expect(calls[1]!.headers['idempotency-key']).toBe(calls[0]!.headers['idempotency-key']);
    expect(calls[1]!.body).toBe('{"serials":["A"]}');
  });

  it('gives up after the second network error', async () => {
    const { fetch } = fakeFetch([new TypeError('fetch failed'), Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, retryDelayMs: 1 });
    await expect(client.get('/v1/licences')).rejects.toThrow(new NetworkError("couldn't reach http://ledger.test for GET /v1/licences (tried twice): ECONNREFUSED"));
  });

  it('does not retry a refusal, and reads problem+json', async () => {
    const problem = { type: 'about:blank', title: 'Conflict', status: 409, code: 'insufficient_units', detail: 'allocation A-3 of licence L-1 has 1,200 units available; 5,000 requested', rule: 'invariant-2', details: { availableUnits: 1200 } };
    const { fetch, calls } = fakeFetch([json(409, problem, 'application/problem+json')]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch });
    const error = await client.post('/v1/shipments', {}).catch((caught: unknown) => caught);
    expect(calls).toHaveLength(1);
    expect(error).toBeInstanceOf(ApiError);
    expect(formatApiError(error as ApiError)).toBe([
      'error: 409 Conflict (insufficient_units)',
      '  allocation A-3 of licence L-1 has 1,200 units available; 5,000 requested',
      '  rule: invariant-2',
      '  details: {"availableUnits":1200}',
    ].join('\n'));
  });

  it('prints no control characters a server sent: an escape sequence must not reach the terminal', async () => {
    const hostile = { title: 'Bad\u001b]0;owned\u0007', status: 400, code: 'x\u001b[2J', detail: 'line\u001b[1A\rover', 'evil\u001bkey': 'v\u009b31m' };
    const { fetch } = fakeFetch([json(400, hostile, 'application/problem+json'), new Response('proxy \u001b[31mdown', { status: 502, headers: { 'content-type': 'text/html' } })]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch });
    for (let answer = 0; answer < 2; answer += 1) {
      const printed = formatApiError(await client.get('/v1/licences').catch((caught: unknown) => caught) as ApiError);
      expect(printed).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
      expect(printed).toMatch(answer === 0 ? /error: 400 Bad .*\n {2}line .*over\n {2}evil key: v 31m/ : /proxy  \[31mdown/);
    }
  });

  it('says so when a success is not JSON (CHIPLEDGER_URL pointing at another web server)', async () => {
    const html = new Response('<html>welcome</html>', { status: 200, headers: { 'content-type': 'text/html' } });
    const { fetch } = fakeFetch([html, new Response('', { status: 200 })]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch });
    await expect(client.get('/v1/licences')).rejects.toThrow(new UnexpectedAnswerError('http://ledger.test answered GET /v1/licences with 200 and text/html, not a JSON object; is CHIPLEDGER_URL the chipledger API?'));
    await expect(client.post('/v1/shipments', {})).rejects.toThrow(UnexpectedAnswerError);
  });

  it('names a connection lost while the answer was read as a network error', async () => {
    const broken = new Response(new ReadableStream({ pull: (controller) => controller.error(Object.assign(new TypeError('terminated'), { cause: { code: 'ECONNRESET' } })) }), { status: 200, headers: { 'content-type': 'application/json' } });
    const { fetch } = fakeFetch([broken]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch });
    await expect(client.get('/v1/licences')).rejects.toThrow(new NetworkError('lost the connection to http://ledger.test while reading the answer to GET /v1/licences: ECONNRESET'));
  });

  it('reports upload progress to the end', async () => {
    const { fetch } = fakeFetch([json(200, {})]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch });
    const seen: number[] = [];
    const serials = Array.from({ length: 20_000 }, (_, index) => `SERIAL${index}`);
    await client.post('/v1/units/deploy', { siteId: 'SITE-1', serials }, { onUpload: (sent) => seen.push(sent) });
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.at(-1)).toBe(Buffer.byteLength(JSON.stringify({ siteId: 'SITE-1', serials })));
  });
});

import { createServer, type Server } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { limits } from '../core/limits.ts';
import { ApiClient, ApiError, InterruptedError, NetworkError, UnexpectedAnswerError, chipledgerCommand, formatApiError, formatUnknownOutcome, unknownOutcomeOf } from './http.ts';

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

  it(`gives up after ${limits.requestAttemptsMax} network errors`, async () => {
    const refused = () => Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const { fetch, calls } = fakeFetch([new TypeError('fetch failed'), refused(), refused()]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, retryDelayMs: 1 });
    const error = await client.get('/v1/licences').catch((caught: unknown) => caught);
    expect(error).toEqual(new NetworkError("couldn't reach http://ledger.test for GET /v1/licences: ECONNREFUSED (3 attempts)"));
    expect(calls).toHaveLength(limits.requestAttemptsMax);
    // A GET changes nothing: no key, no outcome to learn.
    expect(unknownOutcomeOf(error)).toBeUndefined();
  });

  it('says a change none of whose attempts could connect was not sent, and that running it again is safe: no key to learn an outcome by', async () => {
    const refused = () => Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const { fetch, calls } = fakeFetch([refused(), refused(), refused()]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, retryDelayMs: 1 });
    const error = await client.post('/v1/shipments', { units: 1 }).catch((caught: unknown) => caught);
    expect(calls).toHaveLength(limits.requestAttemptsMax);
    expect(error).toEqual(new NetworkError(`couldn't reach http://ledger.test for POST /v1/shipments: ECONNREFUSED (3 attempts); the change was not sent (no attempt could connect), so nothing was done, and running the command again is safe`));
    expect(unknownOutcomeOf(error)).toBeUndefined();
    // An attempt that may have reached the server before the refusals still leaves the outcome unknown.
    const { fetch: lostFirst } = fakeFetch([new TypeError('fetch failed'), refused(), refused()]);
    const unknown = await new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch: lostFirst, retryDelayMs: 1 }).post('/v1/shipments', {}).catch((caught: unknown) => caught);
    expect((unknown as Error).message).not.toContain('not sent');
    expect(unknownOutcomeOf(unknown)).toMatchObject({ attempts: 3 });
  });

  it('listens for Ctrl-C and SIGTERM only while a POST is awaited (http-interrupt.test.ts sends them)', async () => {
    const before = { SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') };
    let answer!: (response: Response) => void;
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch: (async () => new Promise<Response>((done) => (answer = done))) as typeof fetch });
    const posted = client.post('/v1/shipments', {});
    try {
      await new Promise((done) => setImmediate(done));
      expect({ SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') }).toEqual({ SIGINT: before.SIGINT + 1, SIGTERM: before.SIGTERM + 1 });
    } finally {
      // Answered whatever the check found: a POST left waiting would keep its listeners on
      // this worker, which runs the files after this one.
      answer(json(201, { shipmentId: 'S-1' }));
    }
    expect(await posted).toEqual({ shipmentId: 'S-1' });
    expect({ SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') }).toEqual(before);
    // A refusal too.
    const refusing = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch: fakeFetch([json(409, { status: 409, code: 'x' }, 'application/problem+json')]).fetch });
    await expect(refusing.post('/v1/shipments', {})).rejects.toThrow(ApiError);
    expect({ SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') }).toEqual(before);
  });

  it('takes a signal within a second of the first as the same Ctrl-C (npm forwards a copy), and exits at once with its code on a later one', async () => {
    // In process, with process.exit and the clock mocked: http-interrupt.test.ts sends its
    // second signal 20 ms after the first, once the key is printed, so it cannot tell the window.
    const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') };
    const added = (name: 'SIGINT' | 'SIGTERM') => process.listeners(name).filter((listener) => !before[name].includes(listener)) as Array<(signal: string) => void>;
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_000_000);
    try {
      const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch: (() => new Promise<Response>(() => {})) as typeof fetch });
      const posted = client.post('/v1/shipments', {});
      for (const listener of added('SIGINT')) listener('SIGINT');
      await expect(posted).rejects.toBeInstanceOf(InterruptedError);
      now.mockReturnValue(1_000_000 + 1_000);
      for (const listener of added('SIGINT')) listener('SIGINT');
      expect(exit).not.toHaveBeenCalled();
      now.mockReturnValue(1_000_000 + 1_001);
      for (const listener of added('SIGTERM')) listener('SIGTERM');
      expect(exit.mock.calls).toEqual([[143]]);
    } finally {
      for (const name of ['SIGINT', 'SIGTERM'] as const) for (const listener of added(name)) process.off(name, listener);
      exit.mockRestore();
      now.mockRestore();
    }
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
    const proxyPage = () => new Response('proxy \u001b[31mdown', { status: 502, headers: { 'content-type': 'text/html' } });
    // A 502 is asked again, limits.requestAttemptsMax times in all, before it is said.
    const { fetch } = fakeFetch([json(400, hostile, 'application/problem+json'), ...Array.from({ length: limits.requestAttemptsMax }, proxyPage)]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, retryDelayMs: 1 });
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
    await expect(client.get('/v1/licences')).rejects.toThrow(new UnexpectedAnswerError('http://ledger.test answered GET /v1/licences with 200 and text/html, not a JSON object; is CHIPLEDGER_URL the chipledger API?', 'not-json'));
    await expect(client.post('/v1/shipments', {})).rejects.toThrow(UnexpectedAnswerError);
  });

  it('prints the content type of such an answer made printable: a server may send control bytes in it', async () => {
    const odd = new Response('x', { status: 200, headers: { 'content-type': 'text/\u009b2Jhtml' } });
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch: fakeFetch([odd]).fetch });
    const error: Error = await client.get('/v1/licences').then(() => expect.fail('expected a failure'), (caught: unknown) => caught as Error);
    expect(error).toBeInstanceOf(UnexpectedAnswerError);
    expect(error.message).toContain('with 200 and text/');
    expect(error.message).not.toMatch(/[\u0080-\u009f]/);
  });

  it(`reads an answer only up to ${limits.apiResponseBytesMax} bytes, also one sent without a length, and says what it is`, async () => {
    let pulled = 0;
    const chunk = new TextEncoder().encode(`"${'x'.repeat(64 * 1024 - 2)}",`);
    const endless = new Response(new ReadableStream({
      start: (controller) => controller.enqueue(new TextEncoder().encode('{"items":[')),
      pull(controller) {
        pulled += chunk.length;
        if (pulled <= limits.apiResponseBytesMax + chunk.length) return controller.enqueue(chunk);
        controller.enqueue(new TextEncoder().encode('""]}')); // a valid JSON object, only too long
        controller.close();
      },
    }), { status: 200, headers: { 'content-type': 'application/json' } });
    const { fetch, calls } = fakeFetch([endless]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch });
    await expect(client.get('/v1/licences')).rejects.toThrow(new UnexpectedAnswerError(`http://ledger.test answered GET /v1/licences with 200: the answer is more than ${limits.apiResponseBytesMax} bytes, the most chipledger reads`, 'too-large'));
    expect(calls).toHaveLength(1);
    expect(pulled).toBeLessThan(limits.apiResponseBytesMax + 4 * chunk.length);
  });

  it('names a connection lost while the answer was read as a network error, after asking again', async () => {
    const broken = () => new Response(new ReadableStream({ pull: (controller) => controller.error(Object.assign(new TypeError('terminated'), { cause: { code: 'ECONNRESET' } })) }), { status: 200, headers: { 'content-type': 'application/json' } });
    const { fetch } = fakeFetch(Array.from({ length: limits.requestAttemptsMax }, broken));
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, retryDelayMs: 1 });
    await expect(client.get('/v1/licences')).rejects.toThrow(new NetworkError(`lost the connection to http://ledger.test while reading the answer to GET /v1/licences: ECONNRESET (${limits.requestAttemptsMax} attempts)`));
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

  it('sends a POST answered 503 again with the same key, waiting what Retry-After asks, and says the key when it gives up', async () => {
    const unavailable = () => new Response(JSON.stringify({ status: 503, code: 'unavailable', detail: 'the database did not confirm the change; retry with the same Idempotency-Key to learn the outcome' }), {
      status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '2' },
    });
    const { fetch, calls } = fakeFetch([unavailable(), unavailable(), unavailable()]);
    const slept: number[] = [];
    const notes: string[] = [];
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, sleep: async (ms) => void slept.push(ms), onRetry: (note) => void notes.push(note), newKey: () => 'key-1' });
    const error = await client.post('/v1/shipments', { units: 10 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(calls.map((call) => call.headers['idempotency-key'])).toEqual(['key-1', 'key-1', 'key-1']);
    expect(calls.map((call) => call.body)).toEqual(Array(3).fill('{"units":10}'));
    expect(slept).toEqual([2000, 2000]);
    expect(notes[0]).toBe(`the server answered 503 (unavailable); sending it again in 2000 ms with the same Idempotency-Key (attempt 2 of ${limits.requestAttemptsMax})`);
    const outcome = unknownOutcomeOf(error)!;
    expect(outcome).toEqual({ idempotencyKey: 'key-1', attempts: 3 });
    expect(formatUnknownOutcome(outcome)).toMatch(/^chipledger: the outcome is unknown: the change may have been made or not \(sent 3 times with Idempotency-Key key-1\)\.\n {2}Send the same request again with Idempotency-Key key-1/);
  });

  it('says the key of a change whose first attempt got no answer or a 503 when later ones are answered 429: the first may have been done', async () => {
    const tooMany = () => new Response(JSON.stringify({ status: 429, code: 'too_many_requests', rule: 'sequencer-queue-serials-organisation', detail: 'organisation ORG-1 has 150000 serials waiting' }), {
      status: 429, headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
    });
    const unavailable = () => new Response('{"status":503,"code":"unavailable"}', { status: 503, headers: { 'content-type': 'application/problem+json' } });
    for (const first of [new TypeError('fetch failed'), unavailable()]) {
      const { fetch, calls } = fakeFetch([first, tooMany(), tooMany()]);
      const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, sleep: async () => {}, newKey: () => 'key-lost' });
      const error = await client.post('/v1/shipments/S-1/manifest', { serials: ['A'] }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ApiError);
      expect(calls.map((call) => call.headers['idempotency-key'])).toEqual(['key-lost', 'key-lost', 'key-lost']);
      expect(unknownOutcomeOf(error)).toEqual({ idempotencyKey: 'key-lost', attempts: 3 });
      expect(formatApiError(error as ApiError)).toBe('error: 429 (too_many_requests)\n  organisation ORG-1 has 150000 serials waiting\n  rule: sequencer-queue-serials-organisation');
    }
    // A redirect after a lost attempt (the address moved meanwhile) keeps the key too.
    const moved = new Response(null, { status: 308, headers: { location: 'https://ledger.test/v1/sites' } });
    const { fetch } = fakeFetch([new TypeError('fetch failed'), moved]);
    const error = await new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, sleep: async () => {}, newKey: () => 'key-moved' }).post('/v1/sites', {}).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: 'UnexpectedAnswerError', failure: 'redirect' });
    expect(unknownOutcomeOf(error)).toEqual({ idempotencyKey: 'key-moved', attempts: 2 });
  });

  it('sends a change again after a 502, a 504 and a lost answer, and learns its outcome', async () => {
    const lost = new Response(new ReadableStream({ pull: (controller) => controller.error(Object.assign(new TypeError('terminated'), { cause: { code: 'ECONNRESET' } })) }), { status: 201, headers: { 'content-type': 'application/json' } });
    for (const first of [new Response('bad gateway', { status: 502 }), new Response('', { status: 504 }), lost]) {
      const { fetch, calls } = fakeFetch([first, json(201, { shipmentId: 'S-1' })]);
      const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, retryDelayMs: 1, newKey: () => 'key-2' });
      expect(await client.post('/v1/shipments', {})).toEqual({ shipmentId: 'S-1' });
      expect(calls.map((call) => call.headers['idempotency-key'])).toEqual(['key-2', 'key-2']);
    }
  });

  it('does not wait longer than retryAfterMsMax: a longer Retry-After ends the attempts, and the key says how to learn the outcome', async () => {
    const { fetch, calls } = fakeFetch([new Response('{"code":"overloaded"}', { status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': String(limits.retryAfterMsMax / 1000 + 25) } })]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, sleep: async () => { throw new Error('must not wait'); } });
    const error = await client.post('/v1/units/deploy', {}, { idempotencyKey: 'mine' }).catch((caught: unknown) => caught);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.headers['idempotency-key']).toBe('mine');
    const outcome = unknownOutcomeOf(error)!;
    expect(outcome).toEqual({ idempotencyKey: 'mine', attempts: 1, retryAfterMs: limits.retryAfterMsMax + 25_000 });
    expect(formatUnknownOutcome({ ...outcome, rerun: 'chipledger deploy SITE-1 d.csv --idempotency-key mine' }, {})).toBe([
      `chipledger: the outcome is unknown: the change may have been made or not (sent once with Idempotency-Key mine; the server asked to wait 30 s before another try, longer than chipledger waits (${limits.retryAfterMsMax / 1000} s)).`,
      '  To learn it, rerun the command with the same key: if the change was made, the answer says so and nothing is done twice; if not, it is made then:',
      '  chipledger deploy SITE-1 d.csv --idempotency-key mine',
    ].join('\n'));
  });

  it('keeps the key of a change answered with a success it cannot read: past the bound, it was made and the key reads its answer; not JSON, its outcome is unknown (the server may not be chipledger)', async () => {
    const html = () => new Response('<html>created</html>', { status: 201, headers: { 'content-type': 'text/html' } });
    const huge = () => new Response('{}', { status: 201, headers: { 'content-type': 'application/json', 'content-length': String(limits.apiResponseBytesMax + 1) } });
    const rerun = 'chipledger api POST /v1/sites --body site.json --idempotency-key key-9';
    const said = {
      'not-json': [
        'chipledger: the outcome is unknown: the change may have been made or not (sent 2 times with Idempotency-Key key-9).',
        '  To learn it, rerun the command with the same key: if the change was made, the answer says so and nothing is done twice; if not, it is made then:',
        `  ${rerun}`,
      ],
      'too-large': [
        'chipledger: the change was made (answered 201), but its answer could not be read (sent 2 times with Idempotency-Key key-9).',
        '  To read its answer, rerun the command with the same key: the change is not made twice:',
        `  ${rerun}`,
      ],
    };
    for (const [answer, failure] of [[html, 'not-json'], [huge, 'too-large']] as const) {
      const { fetch } = fakeFetch([new Response('', { status: 502 }), answer()]);
      const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, retryDelayMs: 1, newKey: () => 'key-9' });
      const error = await client.post('/v1/sites', {}).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ name: 'UnexpectedAnswerError', failure });
      expect(unknownOutcomeOf(error)).toEqual({ idempotencyKey: 'key-9', attempts: 2, ...(failure === 'too-large' ? { answeredStatus: 201 } : {}) });
      expect(formatUnknownOutcome({ ...unknownOutcomeOf(error)!, rerun }, {})).toBe(said[failure].join('\n'));
      // A read changes nothing: there is no key to keep.
      const read = await new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch: fakeFetch([answer()]).fetch }).get('/v1/sites').catch((caught: unknown) => caught);
      expect(read).toBeInstanceOf(UnexpectedAnswerError);
      expect(unknownOutcomeOf(read)).toBeUndefined();
    }
  });

  it('says the rerun as the user started chipledger: through the repository\'s npm script, where no `chipledger` is on PATH, or as chipledger', () => {
    const outcome = { idempotencyKey: 'mine', attempts: 1, rerun: "chipledger shipments cancel S-7 --reason 'wrong site' --idempotency-key mine" };
    const rerunLine = (env: NodeJS.ProcessEnv) => formatUnknownOutcome(outcome, env).split('\n').at(-1);
    // `npm run chipledger -- shipments cancel …` in the repository (npm's variables for that script).
    expect(rerunLine({ npm_package_name: 'chipledger', npm_lifecycle_event: 'chipledger' })).toBe("  npm run -s chipledger -- shipments cancel S-7 --reason 'wrong site' --idempotency-key mine");
    // A linked chipledger, or one run from another package's script (which has no chipledger script): as typed.
    expect(rerunLine({})).toBe("  chipledger shipments cancel S-7 --reason 'wrong site' --idempotency-key mine");
    expect(rerunLine({ npm_package_name: 'their-tools', npm_lifecycle_event: 'chipledger' })).toBe("  chipledger shipments cancel S-7 --reason 'wrong site' --idempotency-key mine");
    expect(rerunLine({ npm_package_name: 'chipledger', npm_lifecycle_event: 'test' })).toBe("  chipledger shipments cancel S-7 --reason 'wrong site' --idempotency-key mine");
    expect(chipledgerCommand({ npm_package_name: 'chipledger', npm_lifecycle_event: 'start' })).toBe('npm run -s chipledger --');
  });

  it('says how often a read was sent, and the longer wait asked for, when it gives up on a 503', async () => {
    const overloaded = () => new Response('{"status":503,"code":"overloaded","detail":"busy"}', { status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '1' } });
    const { fetch } = fakeFetch([overloaded(), overloaded(), overloaded()]);
    const client = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch, sleep: async () => {} });
    const error = await client.get('/v1/licences').then(() => expect.fail('expected a failure'), (caught: unknown) => caught as ApiError);
    expect(unknownOutcomeOf(error)).toBeUndefined();
    expect(formatApiError(error).split('\n').at(-1)).toBe(`  sent ${limits.requestAttemptsMax} times`);
    const long = new Response('{"status":503,"code":"overloaded"}', { status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '30' } });
    const once = await new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_x', fetch: fakeFetch([long]).fetch }).get('/v1/licences').catch((caught: unknown) => caught as ApiError);
    expect(formatApiError(once as ApiError).split('\n').at(-1)).toBe(`  sent once; the server asked to wait 30 s before another try, longer than chipledger waits (${limits.retryAfterMsMax / 1000} s)`);
  });

  it('does not follow a redirect: a 3xx is an error naming its Location, and the place it points to is never asked', async () => {
    const asked: string[] = [];
    const listen = async (handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> => {
      const server = createServer(handler);
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      const address = server.address();
      return { server, url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}` };
    };
    const target = await listen((request, response) => {
      asked.push(`${request.method} ${request.url}`);
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"cancelled"}');
    });
    const moved = await listen((request, response) => void response.writeHead(302, { location: `${target.url}${request.url}` }).end());
    try {
      const client = new ApiClient({ baseUrl: moved.url, token: 'clt_x' });
      for (const request of [() => client.get('/v1/shipments'), () => client.post('/v1/shipments/S-1/cancel', {})]) {
        const error = await request().catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(UnexpectedAnswerError);
        expect((error as Error).message).toMatch(new RegExp(`^${moved.url} answered (GET|POST) /v1/shipments(/S-1/cancel)? with 302, a redirect to ${target.url}/v1/shipments\\S*; chipledger does not follow redirects \\(a POST would become a GET, without the token\\): set CHIPLEDGER_URL to ${target.url}$`));
      }
      expect(asked).toEqual([]);
    } finally {
      await Promise.all([moved, target].map(({ server }) => new Promise((done) => server.close(done))));
    }
  });
});

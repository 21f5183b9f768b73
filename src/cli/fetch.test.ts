/** The shared transport's own rules; the clients' tests (http.test.ts, log/client.test.ts) cover retries through them. */
import { describe, expect, it } from 'vitest';
import { HttpError, fetchBlockedPorts, retryAfterMsOf, send, type HttpAnswer, type Transport } from './fetch.ts';

const transport = (answer: Response): Transport => ({
  fetch: (async () => answer) as typeof globalThis.fetch, timeoutMs: 1_000, responseBytesMax: 64, addressSetting: '--url', sleep: async () => {},
});
const failureOf = (answer: Response): Promise<HttpError> => send(transport(answer), { method: 'GET', url: new URL('http://server.test/v1/x?page=2') })
  .then(() => { throw new Error('expected a failure'); }, (caught: unknown) => caught as HttpError);

describe('send', () => {
  it('refuses an answer whose Content-Length passes the bound before reading it', async () => {
    const error = await failureOf(new Response('{}', { headers: { 'content-length': '65' } }));
    expect([error.failure, error.status, error.message]).toEqual(['too-large', 200, 'http://server.test answered GET /v1/x?page=2 with 200: the answer is more than 64 bytes, the most chipledger reads']);
  });

  it("names an error status with the server's detail, or the start of its text, made printable", async () => {
    const problem = await failureOf(Response.json({ title: 'Not found', detail: 'no \u001b[2Jsuch' }, { status: 404 }));
    expect([problem.failure, problem.status, problem.problem?.title, problem.message]).toEqual(['status', 404, 'Not found', 'http://server.test/v1/x?page=2 answered 404: no  [2Jsuch']);
    expect((await failureOf(new Response('plain words', { status: 500 }))).message).toBe('http://server.test/v1/x?page=2 answered 500: plain words');
  });

  it('cuts an error answer short instead of refusing it, so that a 503 with a large page is still sent again', async () => {
    // A proxy's error page of 1 MiB, sent without a length, then the answer.
    const page = () => new Response(new ReadableStream({
      start(controller) {
        for (let i = 0; i < 16; i += 1) controller.enqueue(new Uint8Array(64 * 1024).fill(0x41));
        controller.close();
      },
    }), { status: 503, headers: { 'retry-after': '1' } });
    const answers = [page(), page(), Response.json({ ok: true })];
    const slept: number[] = [];
    const sent: HttpAnswer = await send({ ...transport(answers[0]!), fetch: (async () => answers.shift()!) as typeof globalThis.fetch, sleep: async (ms) => void slept.push(ms) }, { method: 'GET', url: new URL('http://server.test/v1/x') });
    expect([sent.status, JSON.parse(sent.body.toString())]).toEqual([200, { ok: true }]);
    expect(slept).toEqual([1000, 1000]);
    // Given up, the error keeps the status and the start of the page.
    const error = await send({ ...transport(page()), fetch: (async () => page()) as typeof globalThis.fetch }, { method: 'GET', url: new URL('http://server.test/v1/x') })
      .then(() => expect.fail('expected a failure'), (caught: unknown) => caught as HttpError);
    expect([error.failure, error.status, error.outcomeUnknown, error.attempts]).toEqual(['status', 503, true, 3]);
    expect(error.message).toBe(`http://server.test/v1/x answered 503: ${'A'.repeat(500)}`);
  });

  it('sends a request refused for now (429: its organisation\'s share of the server is full) again after Retry-After, as a 503; its outcome is known: not done', async () => {
    const tooMany = () => Response.json({ status: 429, code: 'too_many_requests', detail: 'organisation ORG-1 holds 64.0 MiB of request bodies' }, { status: 429, headers: { 'retry-after': '2' } });
    const answers = [tooMany(), Response.json({ ok: true }, { status: 201 })];
    const slept: number[] = [];
    const retries: string[] = [];
    const request = { method: 'POST' as const, url: new URL('http://server.test/v1/sites'), headers: { 'idempotency-key': 'k-429' } };
    const sent = await send({ ...transport(answers[0]!), fetch: (async () => answers.shift()!) as typeof globalThis.fetch, sleep: async (ms) => void slept.push(ms), onRetry: (line) => void retries.push(line) }, request);
    expect([sent.status, sent.attempts, slept]).toEqual([201, 2, [2000]]);
    expect(retries).toEqual(['the server answered 429 (too_many_requests); sending it again in 2000 ms with the same Idempotency-Key (attempt 2 of 3)']);
    const error = await send({ ...transport(tooMany()), fetch: (async () => tooMany()) as typeof globalThis.fetch }, request)
      .then(() => expect.fail('expected a failure'), (caught: unknown) => caught as HttpError);
    expect([error.failure, error.status, error.outcomeUnknown, error.attempts]).toEqual(['status', 429, false, 3]);
    // Without an Idempotency-Key a POST is sent once, whatever the answer.
    const once = await send({ ...transport(tooMany()), fetch: (async () => tooMany()) as typeof globalThis.fetch }, { ...request, headers: {} })
      .then(() => expect.fail('expected a failure'), (caught: unknown) => caught as HttpError);
    expect(once.attempts).toBe(1);
  });

  it('keeps the outcome unknown after an attempt that got no answer or a 503, whatever the later attempts are answered (429: checked before the key is looked up)', async () => {
    const tooMany = () => Response.json({ status: 429, code: 'too_many_requests', rule: 'sequencer-queue-serials-organisation' }, { status: 429, headers: { 'retry-after': '1' } });
    const notFound = () => Response.json({ status: 404, code: 'not_found' }, { status: 404 });
    const request = { method: 'POST' as const, url: new URL('http://server.test/v1/shipments/S-1/manifest'), headers: { 'idempotency-key': 'k-lost' } };
    const attempt = (answers: Array<Response | Error>, sent = request) => send({ ...transport(new Response()), fetch: (async () => {
      const answer = answers.shift()!;
      if (answer instanceof Error) throw answer;
      return answer;
    }) as typeof globalThis.fetch }, sent).then(() => expect.fail('expected a failure'), (caught: unknown) => caught as HttpError);
    for (const first of [new TypeError('fetch failed'), new Response('', { status: 503 })]) {
      const error = await attempt([first, tooMany(), tooMany()]);
      expect([error.failure, error.status, error.outcomeUnknown, error.attempts]).toEqual(['status', 429, true, 3]);
    }
    // Unknown after the last attempt only, too; and a refusal that ends the attempts keeps it.
    expect((await attempt([tooMany(), tooMany(), new Response('', { status: 504 })])).outcomeUnknown).toBe(true);
    const refused = await attempt([new Response('', { status: 502 }), notFound()]);
    expect([refused.status, refused.outcomeUnknown, refused.worthRetrying, refused.attempts]).toEqual([404, true, false, 2]);
    // 429s alone: not done.
    expect((await attempt([tooMany(), tooMany(), tooMany()])).outcomeUnknown).toBe(false);
  });

  it('does not send again a request fetch refused for its port, and says why', async () => {
    const retries: string[] = [];
    const refused = (port: number) => send({ ...transport(new Response()), fetch: globalThis.fetch, onRetry: (line) => void retries.push(line) }, { method: 'GET', url: new URL(`http://127.0.0.1:${port}/v1/licences`) })
      .then(() => expect.fail('expected a failure'), (caught: unknown) => caught as HttpError);
    const error = await refused(6000);
    expect([error.failure, error.outcomeUnknown, error.attempts, retries]).toEqual(['not-sent', false, 1, []]);
    expect(error.message).toBe('couldn\'t reach http://127.0.0.1:6000 for GET /v1/licences: fetch refuses port 6000 (a "bad port" of the Fetch standard, blocked against cross-protocol attacks); run the server on another port and set --url to it');
    // Node's fetch refuses every port of the list, before connecting: nothing listens on them here.
    for (const port of fetchBlockedPorts) expect((await refused(port)).failure, String(port)).toBe('not-sent');
  });

  it('says a redirect without a Location as one', async () => {
    const error = await failureOf(new Response(null, { status: 301 }));
    expect(error.message).toBe('http://server.test answered GET /v1/x?page=2 with 301, a redirect without a Location; chipledger does not follow redirects: is --url the chipledger API?');
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(retryAfterMsOf('1', 0)).toBe(1000);
    expect(retryAfterMsOf('Thu, 01 Jan 1970 00:00:03 GMT', 1000)).toBe(2000);
    expect(retryAfterMsOf('soon', 0)).toBeUndefined();
    // Neither delay-seconds nor a date: the default pause, not none.
    for (const odd of ['1.5', '-1', '+3', '1e3']) expect(retryAfterMsOf(odd, Date.parse('2026-06-01T00:00:00Z')), odd).toBeUndefined();
    expect(retryAfterMsOf(null, 0)).toBeUndefined();
  });

  it('reads the three HTTP-date forms as UTC in any local time zone (asctime has no zone and is UTC), and no other date', () => {
    const now = Date.parse('1994-11-06T08:49:30Z');
    const zone = process.env.TZ;
    try {
      // Node reads TZ again when it is set: what Date.parse did with asctime moved by the zone (in New York, 5 h).
      for (const tz of ['UTC', 'America/New_York', 'Asia/Shanghai']) {
        process.env.TZ = tz;
        expect(retryAfterMsOf('Sun, 06 Nov 1994 08:49:37 GMT', now), `IMF-fixdate in ${tz}`).toBe(7000);
        expect(retryAfterMsOf('Sunday, 06-Nov-94 08:49:37 GMT', now), `RFC 850 in ${tz}`).toBe(7000);
        expect(retryAfterMsOf('Sun Nov  6 08:49:37 1994', now), `asctime in ${tz}`).toBe(7000);
        expect(retryAfterMsOf('Sun Nov 16 08:49:37 1994', now), `asctime, two-digit day, in ${tz}`).toBe(10 * 86_400_000 + 7000);
      }
      for (const tz of ['UTC', 'America/New_York']) {
        process.env.TZ = tz;
        // Not an HTTP-date: no zone, another zone, ISO 8601, a day or an hour out of range, lower case.
        for (const odd of ['Sun Nov 6 08:49:37 1994', 'Sun, 06 Nov 1994 08:49:37', 'Sun, 06 Nov 1994 08:49:37 +0100', 'Sun, 06 Nov 1994 08:49:37 PST',
          'Sun, 06 Nov 1994 08:49:37 UTC', 'Sunday, 06-Nov-94 08:49:37 EST', '1994-11-06T08:49:37Z',
          'Thu, 31 Feb 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 24:00:00 GMT', 'sun, 06 nov 1994 08:49:37 gmt', 'Nov 6 1994']) {
          expect(retryAfterMsOf(odd, now), `${odd} in ${tz}`).toBeUndefined();
        }
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('reads an RFC 850 two-digit year as the latest past year ending in those digits once it is more than 50 years ahead', () => {
    const now = Date.parse('2026-06-01T00:00:00Z');
    expect(retryAfterMsOf('Monday, 01-Jun-26 00:00:05 GMT', now)).toBe(5000);
    // 2094 is more than 50 years ahead of 2026: 1994, long past, so no wait at all.
    expect(retryAfterMsOf('Sunday, 06-Nov-94 08:49:37 GMT', now)).toBe(0);
  });

  it('reads an RFC 850 year exactly 50 years ahead as ahead: only one more than 50 is taken back a century', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(retryAfterMsOf('Wednesday, 01-Jan-76 00:00:00 GMT', now)).toBe(Date.UTC(2076, 0, 1) - now);
    expect(retryAfterMsOf('Thursday, 01-Jan-77 00:00:00 GMT', now)).toBe(0);
  });

  it('reads second 60, a leap second, in each form, and no second past it', () => {
    const now = Date.UTC(1994, 10, 6, 8, 49, 0);
    expect(retryAfterMsOf('Sun, 06 Nov 1994 08:49:60 GMT', now)).toBe(60_000);
    expect(retryAfterMsOf('Sunday, 06-Nov-94 08:49:60 GMT', now)).toBe(60_000);
    expect(retryAfterMsOf('Sun Nov  6 08:49:60 1994', now)).toBe(60_000);
    expect(retryAfterMsOf('Sun, 06 Nov 1994 08:49:61 GMT', now)).toBeUndefined();
  });
});

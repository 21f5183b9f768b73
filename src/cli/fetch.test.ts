/** The shared transport's own rules; the clients' tests (http.test.ts, log/client.test.ts) cover retries through them. */
import { describe, expect, it } from 'vitest';
import { HttpError, retryAfterMsOf, send, type Transport } from './fetch.ts';

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

  it('says a redirect without a Location as one', async () => {
    const error = await failureOf(new Response(null, { status: 301 }));
    expect(error.message).toBe('http://server.test answered GET /v1/x?page=2 with 301, a redirect without a Location; chipledger does not follow redirects: is --url the chipledger API?');
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(retryAfterMsOf('1', 0)).toBe(1000);
    expect(retryAfterMsOf('Thu, 01 Jan 1970 00:00:03 GMT', 1000)).toBe(2000);
    expect(retryAfterMsOf('soon', 0)).toBeUndefined();
    expect(retryAfterMsOf(null, 0)).toBeUndefined();
  });
});

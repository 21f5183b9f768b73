/**
 * The log client sends as the API client does (one transport, ../fetch.ts): a GET whose
 * outcome is unknown is asked again, waiting what Retry-After asks, and a POST without an
 * Idempotency-Key (a cosignature) is not.
 */
import { describe, expect, it } from 'vitest';
import { limits } from '../../core/limits.ts';
import { LogClient, LogFetchError } from './client.ts';

const checkpoint = 'log.test\n1\nAAAA\n';
const unavailable = (retryAfter: string) => Response.json({ title: 'Unavailable', detail: 'the database is away' }, { status: 503, headers: { 'retry-after': retryAfter } });
const refused = () => Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });

function answering(answers: Array<Response | Error>): { fetch: typeof fetch; asked: string[] } {
  const asked: string[] = [];
  const fetch = (async (input: URL | string, init?: RequestInit) => {
    asked.push(`${init?.method ?? 'GET'} ${String(input)}`);
    const answer = answers.shift() ?? new Error('no more answers');
    if (answer instanceof Error) throw answer;
    return answer;
  }) as typeof globalThis.fetch;
  return { fetch, asked };
}

describe('LogClient sending', () => {
  it('asks a GET answered 503 again after the Retry-After, and after network errors, up to the attempts bound', async () => {
    const { fetch, asked } = answering([unavailable('2'), refused(), new Response(checkpoint)]);
    const slept: number[] = [];
    const client = new LogClient({ baseUrl: 'http://log.test', fetch, sleep: async (ms) => void slept.push(ms) });
    expect(await client.checkpoint()).toBe(checkpoint);
    expect(asked).toEqual(Array(limits.requestAttemptsMax).fill('GET http://log.test/v1/log/checkpoint'));
    expect(slept).toEqual([2000, 500]);
  });

  it('gives up at once on a Retry-After longer than it waits, with the status and the detail', async () => {
    const { fetch, asked } = answering([unavailable(String(limits.retryAfterMsMax / 1000 + 1))]);
    const client = new LogClient({ baseUrl: 'http://log.test', fetch, sleep: async () => { throw new Error('must not wait'); } });
    const error = await client.checkpoint().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LogFetchError);
    expect((error as LogFetchError).status).toBe(503);
    expect((error as Error).message).toBe('http://log.test/v1/log/checkpoint answered 503: the database is away');
    expect(asked).toHaveLength(1);
  });

  it('says a timeout with its bound, and does not send a cosignature twice', async () => {
    const timedOut = () => Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });
    const { fetch, asked } = answering([timedOut(), timedOut(), timedOut(), refused()]);
    const client = new LogClient({ baseUrl: 'http://log.test', fetch, sleep: async () => {} });
    await expect(client.checkpoint()).rejects.toThrow(new LogFetchError('http://log.test/v1/log/checkpoint', undefined, `couldn't reach http://log.test for GET /v1/log/checkpoint: no answer within ${limits.logRequestTimeoutMs / 1000} s (${limits.requestAttemptsMax} attempts)`));
    await expect(client.postCosignature(checkpoint)).rejects.toThrow("couldn't reach http://log.test for POST /v1/log/cosignatures: ECONNREFUSED (1 attempt)");
    expect(asked.filter((line) => line.startsWith('POST'))).toHaveLength(1);
  });
});

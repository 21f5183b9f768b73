/**
 * Small helpers for tests that drive several `chipledger serve` processes at once: bounded
 * concurrency, time bounds, and a POST that retries a 503 (overloaded / unavailable, which
 * commit nothing) with the same Idempotency-Key, counting how often it had to.
 */
import type { HttpAnswer, HttpClient } from './http-client.ts';

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** Runs `work` over `items`, at most `limit` at a time; the results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  }));
  return results;
}

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
export function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${timeoutMs} ms`)), timeoutMs)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `probe` every `everyMs` until it returns a value (not undefined), at most `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, everyMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

export interface RetryStats {
  /** 503 answers that were retried. */
  retried503: number;
}

/**
 * POSTs with an Idempotency-Key; a 503 (nothing was committed) is retried with the same key
 * and body after a short pause, up to `attempts` times. Any other answer is returned.
 */
export async function postRetrying(client: HttpClient, path: string, key: string, body: unknown, stats: RetryStats, attempts = 40): Promise<HttpAnswer> {
  for (let attempt = 1; ; attempt += 1) {
    const answer = await client.send('POST', path, { body, headers: { 'idempotency-key': key } });
    if (answer.status !== 503 || attempt >= attempts) return answer;
    stats.retried503 += 1;
    await sleep(20 + 10 * attempt);
  }
}

import type { PoolClient } from '../../src/store/pool.ts';

/**
 * Lets the client's next text that ends in COMMIT run on the server, then fails it in the
 * client once its reply is in: how a batch meets a failure that proves nothing about its
 * COMMIT. `fail` says how (it may also cut the connection) and returns the error thrown.
 */
export function failAfterCommitReply(client: PoolClient, fail: (text: string) => Error): void {
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  let done = false;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    const text = args[0];
    if (done || typeof text !== 'string' || !text.endsWith('COMMIT')) return result;
    done = true;
    return result.then(() => {
      throw fail(text);
    });
  };
}

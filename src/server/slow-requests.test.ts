/**
 * A slow answer is logged at warn, but not a slow 503: it waited for a database that is away,
 * which the sequencer and the signer say once per outage, and every 503 is counted by route in
 * /metrics. Logged, a 15 s freeze under 250 clients wrote 253 lines, one per request that
 * waited, none saying why (the observability review).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { limits } from '../core/limits.ts';
import type { Pool } from '../store/pool.ts';
import { buildServer } from './app.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => { world = made; database = madeDatabase; });

/** The pool, its first query answered after more than slowRequestMs: as it was, or failing as a database going away fails. */
function slowPool(pool: Pool, answer: 'as it was' | 'away'): Pool {
  let slowed = false;
  return new Proxy(pool, {
    get(target, property, receiver) {
      if (property !== 'query') return Reflect.get(target, property, receiver);
      return async (...args: unknown[]) => {
        if (!slowed) await new Promise((resume) => setTimeout(resume, limits.slowRequestMs + 100));
        slowed = true;
        if (answer === 'away') throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
        return (target.query as (...rest: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Pool;
}

describe('slow requests', () => {
  it('are logged once each when answered, but not when answered 503: a read refused for the database is said once a minute instead', async () => {
    const lines: Array<{ msg: string; status?: number; route?: string }> = [];
    const logger = pino({ level: 'warn' }, new Writable({ write(chunk, _encoding, done) { lines.push(JSON.parse(String(chunk)) as { msg: string }); done(); } }));
    for (const answer of ['as it was', 'away'] as const) {
      const app = await buildServer({ ledger: world.ledger, pool: slowPool(database.pool, answer), logger });
      try {
        // Three of them: a read refused for the database is said once (read-refusals.ts), not once a request.
        for (let request = 0; request < (answer === 'away' ? 3 : 1); request += 1) {
          const response = await app.inject({ method: 'GET', url: '/v1/log/keys' });
          expect(response.statusCode, response.body).toBe(answer === 'away' ? 503 : 200);
        }
      } finally {
        await app.close();
      }
    }
    expect(lines.map(({ msg, status, route }) => ({ msg, status, route }))).toEqual([
      { msg: 'slow request', status: 200, route: '/v1/log/keys' },
      { msg: 'answered 503 for the database: the database is unreachable or not answering (1 such answer(s) since the last line of this reason; at most one a minute)', status: undefined, route: '/v1/log/keys' },
    ]);
  });
});

/**
 * loadDemo's wait for another chipledger's demo load is bounded and said: the loader's lock is
 * held by a session, which a load frozen or cut off keeps for as long as that lasts (no
 * timeout of PostgreSQL's ends an idle session). Small bounds here; the real ones are in limits.ts.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { withTimeout } from '../core/timeout.ts';
import { Ledger } from '../ledger/ledger.ts';
import { DemoLoadError, demoState, loadDemo } from './load.ts';
import { testSealingKey } from '../../test/support/sealing-key.ts';

let database: TestDatabase;
let ledger: Ledger;
beforeAll(async () => {
  database = await createTestDatabase();
  ledger = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool });
});
afterAll(async () => {
  await ledger?.close();
  await database?.drop();
});

describe("loading the demo while another chipledger's load holds its lock", () => {
  it('says after a few seconds (here 200 ms) who holds it, and fails in one line naming that session when the bound runs out', async () => {
    const holder = new pg.Client({ connectionString: database.url, application_name: 'frozen-chipledger' });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(7201964012)');
      const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const lines: string[] = [];
      const started = performance.now();
      const refusal = await withTimeout(loadDemo(ledger, { lockWaitMs: 800, lockWaitNoticeAfterMs: 200, log: (line) => lines.push(line) }), 8_000, 'loadDemo waited without a bound')
        .then(() => expect.fail('loaded the demo while another load held its lock'), (error: unknown) => error);
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(refusal).toBeInstanceOf(DemoLoadError);
      expect((refusal as Error).message).toMatch(new RegExp(`^couldn't load the demo: waited 800 ms for another chipledger's demo load, whose lock is still held by PostgreSQL session ${pid} \\(frozen-chipledger, idle for \\d+ s\\); run this command again once that load has finished, or if it is frozen or gone, stop it, or end its session \\(SELECT pg_terminate_backend\\(${pid}\\)\\)$`));
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^waiting for another chipledger's demo load: its lock is held by PostgreSQL session ${pid} \\(frozen-chipledger, idle for \\d+ s\\); waiting at most 800 ms in all$`))]);
    } finally {
      await holder.end();
    }
    expect(await demoState(database.pool)).toBe('absent');
  });
});

/**
 * What the signer says and keeps for an operator. With the log signing lock held by another
 * session past the signing's wait, its log line named only "statement timeout"; now it names
 * the lock and the session that holds it, once an outage, as a start that cannot take the lock
 * does (the observability review held pg_advisory_lock from psql for 40 s). And each tick keeps
 * the log's newest checkpoint, whichever process signed it, for /metrics: a server that loses
 * the signing race to another showed a backlog that did not exist.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';
import { generateSignerKey, parseSignerKey } from '../../tlog/index.ts';
import { Checkpointer } from './checkpointer.ts';
import { Ledger } from '../ledger.ts';
import { until } from '../../../test/support/until.ts';
import { logSigningLockKey } from '../../store/tlog-tables.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => { world = made; database = madeDatabase; });

const logKey = generateSignerKey('log.chipledger.test').signerKey;
const untilMsMax = 20_000;

const book = (ledger: Ledger) => ledger.submit('shipment.book', {
  exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
}, world.actors.exporter);

describe('the signer while another session holds the log signing lock', () => {
  it('names the lock and the session holding it, once, then says it signs again', async () => {
    const ledger = await Ledger.open({ pool: database.pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKey, checkpointIntervalMs: 3_600_000 });
    const errors: Array<{ code: unknown; context: string }> = [];
    const recoveries: string[] = [];
    const checkpointer = new Checkpointer({
      pool: database.pool, signer: parseSignerKey(logKey), intervalMs: 20, signingWaitMs: 250,
      onError: (error, context) => errors.push({ code: (error as { code?: unknown }).code, context }),
      onRecovered: (message) => recoveries.push(message),
    });
    const holder = new pg.Client({ connectionString: database.url, application_name: 'psql-held-by-hand' });
    await holder.connect();
    let held = false;
    try {
      const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await holder.query('SELECT pg_advisory_lock($1)', [logSigningLockKey]);
      held = true;
      expectOk(await book(ledger));
      checkpointer.start();
      await until('three failed ticks', () => checkpointer.stats.failedTicks >= 3, { withinMs: untilMsMax });
      expect(errors).toHaveLength(1);
      expect(['55P03', '57014']).toContain(errors[0]!.code);
      expect(errors[0]!.context).toMatch(new RegExp(`^couldn't sign a checkpoint: waited 250 ms for the log signing lock, held by PostgreSQL session ${pid} \\(psql-held-by-hand, idle for \\d+ s\\) \\(each reason is said once until signing works again\\)$`));
      await holder.query('SELECT pg_advisory_unlock($1)', [logSigningLockKey]);
      held = false;
      await until('the recovery', () => recoveries.length === 1, { withinMs: untilMsMax });
      expect(errors).toHaveLength(1);
    } finally {
      if (held) await holder.query('SELECT pg_advisory_unlock($1)', [logSigningLockKey]);
      await holder.end();
      await checkpointer.stop();
      await ledger.close();
    }
  });
});

describe('the signer\'s view of the log', () => {
  it('keeps the newest checkpoint another process signed, not only its own', async () => {
    const ledger = await Ledger.open({ pool: database.pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKey, checkpointIntervalMs: 3_600_000 });
    const other = new Checkpointer({ pool: database.pool, signer: parseSignerKey(logKey), intervalMs: 3_600_000 });
    const watching = new Checkpointer({ pool: database.pool, signer: parseSignerKey(logKey), intervalMs: 20 });
    try {
      expectOk(await book(ledger));
      const signed = (await other.checkpointNow())!;
      watching.start();
      await until('a tick', () => watching.stats.logSeen !== undefined, { withinMs: untilMsMax });
      // Covered by the other's checkpoint: this one signs nothing, and sees no backlog.
      expect(watching.stats.signed).toBe(0);
      expect(watching.stats.logSeen).toMatchObject({ headSize: signed.size, newest: { size: signed.size } });
      expect(watching.stats.logSeen!.newest!.ageMs).toBeGreaterThanOrEqual(0);
      // Its own signing is kept too, as the newest, at the head it signed.
      expectOk(await book(ledger));
      await until('its own signing', () => watching.stats.signed === 1, { withinMs: untilMsMax });
      expect(watching.stats.logSeen).toMatchObject({ headSize: signed.size + 1, newest: { size: signed.size + 1 } });
    } finally {
      await watching.stop();
      await ledger.close();
    }
  });
});

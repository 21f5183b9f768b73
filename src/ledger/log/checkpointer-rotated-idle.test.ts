/**
 * A server with nothing to sign (no event came since its last checkpoint) learns at its next
 * tick that another process rotated the log's key, not only once an event gives it something
 * to sign: until then an idle server served the retired key as the log's (GET /v1/log/key,
 * cosigned proof bundles), while /healthz, which reads the key, already answered 503.
 */
import { expect, it } from 'vitest';
import { openSigningLedger } from '../../../test/support/signing-ledger.ts';
import { until } from '../../../test/support/until.ts';
import { worldPerFile, type World } from '../../../test/world.ts';
import type { TestDatabase } from '../../../test/database.ts';
import { createPool } from '../../store/pool.ts';
import { formatKeyId, generateSignerKey, parseSignerKey } from '../../tlog/index.ts';
import { Ledger } from '../ledger.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, db) => { world = made; database = db; });

const origin = 'log.rotated-idle.test';
/** The idle signer's tick: short, so its next turn comes within the test. */
const tickMs = 100;

it('stops an idle signer at its next tick once another process retired its key, and it signs nothing more', async () => {
  const retiringKey = generateSignerKey(origin);
  const newKey = generateSignerKey(origin);
  const pool = createPool({ url: database.url, connectionsMax: 3, applicationName: 'idle-signer' });
  const idle = await Ledger.open({ pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: retiringKey.signerKey, checkpointIntervalMs: tickMs });
  try {
    await idle.checkpointer!.checkpointNow(); // the head covered: nothing left for it to sign
    const rotating = await openSigningLedger(database.url, world.clock, newKey.signerKey, retiringKey.signerKey, 'rotating');
    try {
      expect(idle.checkpointer!.retired).toBeUndefined();
      await until('the idle signer finds its key retired', () => idle.checkpointer!.retired !== undefined, { withinMs: 20 * tickMs + 5_000 });
      expect(idle.checkpointer!.retired!.message).toBe(`the log key ${parseSignerKey(retiringKey.signerKey).verifierKey} is no longer the log's key (now ${parseSignerKey(newKey.signerKey).verifierKey}); this process stopped signing checkpoints, since a retired key never signs again`);
      // An event after it: the retired signer, ticking still if it had not stopped, signs none.
      const { exporter } = world.actors;
      await world.run('shipment.book', { exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-03-01T00:00:00Z' }, exporter);
      await new Promise((done) => setTimeout(done, 10 * tickMs));
      const after = await database.pool.query('SELECT size FROM tlog_checkpoints WHERE key_id = $1 AND size > (SELECT announced_size FROM tlog_keys WHERE key_id = $2)',
        [formatKeyId(parseSignerKey(retiringKey.signerKey).keyId), formatKeyId(parseSignerKey(newKey.signerKey).keyId)]);
      expect(after.rows).toEqual([]);
    } finally {
      await rotating.close();
    }
  } finally {
    await idle.close();
    await pool.end();
  }
});

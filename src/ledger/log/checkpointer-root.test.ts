/**
 * A head whose root is not the stored tree's is never signed (HeadRootMismatch). The writer role
 * may update log_head: s26's attack review appended a junk event and set the head's root to one
 * no tree has, and the server signed it within a second, bricking the log (the start-up check
 * then refuses it for ever, and monitors hold the log to it).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateSignerKey, parseSignerKey } from '../../tlog/index.ts';
import { adoptLogKey } from './keys.ts';
import { openSigningLedger } from '../../../test/support/signing-ledger.ts';
import { worldPerFile, type World } from '../../../test/world.ts';
import type { TestDatabase } from '../../../test/database.ts';
import { HeadRootMismatch } from './checkpointer.ts';
import { HeadSealer } from './head-seal.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

describe('the checkpointer and the head’s root', () => {
  it('signs a head whose root is the stored tree’s, and refuses one that is not, signing nothing; a key’s announcement too', async () => {
    const key = generateSignerKey('root.chipledger.test');
    const ledger = await openSigningLedger(database.writerUrl, world.clock, key.signerKey);
    try {
      const signed = await ledger.checkpointer!.checkpointNow();
      const { rows: [head] } = await database.pool.query<{ size: string }>('SELECT size FROM log_head');
      expect(signed?.size).toBe(Number(head!.size));
      // One more event, then its root replaced, as a writer may (the trigger checks times, not roots).
      await world.run('site.register', { name: 'DC-root', province: 'Hebei', city: 'Zhangjiakou', latitude: 40.8, longitude: 114.9, capacityUnits: 10 }, world.actors.alpha);
      const { rows: [before] } = await database.writerPool.query<{ size: string; root: Buffer }>('SELECT size, root FROM log_head');
      await setRoot(before!, createHash('sha256').update('any root').digest());
      try {
        const refused = await ledger.checkpointer!.checkpointNow().then(() => undefined, (error: unknown) => error);
        expect(refused).toBeInstanceOf(HeadRootMismatch);
        expect((refused as Error).message).toBe(`refused to sign the log's head: at size ${before!.size} its root is ${createHashHex('any root')}, but the stored tiles give ${before!.root.toString('hex')}; nothing was signed (run chipledger check)`);
        const { rows: [newest] } = await database.pool.query<{ size: string }>('SELECT max(size) AS size FROM tlog_checkpoints');
        expect(Number(newest!.size)).toBe(Number(head!.size));
      } finally {
        await setRoot(before!, before!.root);
      }
      expect((await ledger.checkpointer!.checkpointNow())?.size).toBe(Number(before!.size));

      // A key's announcement is signed for good too: a rotation over such a root is refused, and nothing is written.
      const next = generateSignerKey('root.chipledger.test');
      await setRoot(before!, createHash('sha256').update('any root').digest());
      try {
        const rotation = await adoptLogKey(database.writerPool, parseSignerKey(next.signerKey), key.signerKey, 5_000, (size, client) => ledger.log.rootAt(size, client), ledger.sealer)
          .then(() => undefined, (error: unknown) => error);
        expect(rotation).toBeInstanceOf(HeadRootMismatch);
        expect((await database.pool.query('SELECT 1 FROM tlog_keys WHERE verifier_key = $1', [next.verifierKey])).rowCount).toBe(0);
      } finally {
        await setRoot(before!, before!.root);
      }
    } finally {
      await ledger.close();
    }
  });
});

/**
 * Sets the head's root, sealed as a holder of the log's key would seal it: a bug of the server's
 * own, which the seal cannot catch (a head sealed by no key holder is refused before: head-seal.test.ts).
 */
async function setRoot(head: { size: string }, root: Buffer): Promise<void> {
  const seal = new HeadSealer(testSealingKey).seal({ size: Number(head.size), root });
  await database.writerPool.query('UPDATE log_head SET root = $1, seal = $2', [root, seal]);
}

function createHashHex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The checkpoint signer reports a failing tick once per outage and once when it recovers,
 * not at every tick (ops review, defect 3: 55 stack traces a minute while the database was
 * gone). The outage here: another transaction holds the log signing lock, so every tick gives
 * up after its wait bound, as it does while the database is away.
 */
import { describe, expect, it } from 'vitest';
import { worldPerFile, expectOk, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import { inLogSigningTransaction } from '../store/tlog-tables.ts';
import { generateSignerKey, parseSignerKey } from '../tlog/index.ts';
import { Checkpointer } from './checkpointer.ts';
import { Ledger } from './ledger.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, made2) => {
  world = made;
  database = made2;
});

const logKey = generateSignerKey('log.chipledger.test').signerKey;

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resume) => setTimeout(resume, 5));
}

/** Holds the log signing lock in another transaction until the returned function runs. */
async function holdSigningLock(): Promise<() => Promise<void>> {
  let release!: () => void;
  let held!: () => void;
  const holding = new Promise<void>((resolve) => (held = resolve));
  const holder = inLogSigningTransaction(database.pool, () => {
    held();
    return new Promise<void>((resolve) => (release = resolve));
  });
  await holding;
  return async () => {
    release();
    await holder;
  };
}

describe('the checkpoint signer through an outage', () => {
  it('reports the first failing tick of each outage, then its end once, and nothing in between', async () => {
    const ledger = await Ledger.open({ pool: database.pool, clock: world.clock, logSignerKey: logKey, checkpointIntervalMs: 3_600_000 });
    const errors: string[] = [];
    const recoveries: string[] = [];
    const checkpointer = new Checkpointer({
      pool: database.pool, signer: parseSignerKey(logKey), intervalMs: 20, signingWaitMs: 50,
      onError: (_error, context) => errors.push(context),
      onRecovered: (message) => recoveries.push(message),
    });
    const book = async () => expectOk(await ledger.submit('shipment.book', {
      exportAllocationId: world.allocations.betaExport, importAllocationId: world.allocations.betaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    }, world.actors.exporter));
    let release: (() => Promise<void>) | undefined;
    try {
      checkpointer.start();
      for (const outage of [1, 2]) {
        await book();
        release = await holdSigningLock();
        const failedBefore = checkpointer.stats.failedTicks;
        await until(() => checkpointer.stats.failedTicks >= failedBefore + 5);
        expect(errors, `outage ${outage}`).toHaveLength(outage);
        expect(errors[outage - 1]).toMatch(/^couldn't sign a checkpoint/);
        expect(recoveries).toHaveLength(outage - 1);
        await release();
        release = undefined;
        const signedBefore = checkpointer.stats.signed;
        await until(() => checkpointer.stats.signed > signedBefore);
        await until(() => recoveries.length === outage);
        expect(recoveries[outage - 1]).toMatch(/^checkpoint signing works again, after \d+ failed ticks over \d+\.\d s$/);
        expect(errors).toHaveLength(outage);
      }
    } finally {
      await release?.();
      await checkpointer.stop();
      await ledger.close();
    }
  });

  it('says each new reason within an outage once: a second failure is not hidden behind the first', async () => {
    // A pool that fails every connect: first as the database away, then for another reason.
    let reason = 'the database is away';
    const failing = { connect: async () => { throw new Error(reason); }, query: async () => { throw new Error(reason); } } as unknown as typeof database.pool;
    const errors: string[] = [];
    const checkpointer = new Checkpointer({ pool: failing, signer: parseSignerKey(logKey), intervalMs: 10, signingWaitMs: 50, onError: (error) => errors.push((error as Error).message) });
    try {
      checkpointer.start();
      await until(() => checkpointer.stats.failedTicks >= 5);
      expect(errors).toEqual(['the database is away']);
      reason = 'the log key was replaced';
      const failedBefore = checkpointer.stats.failedTicks;
      await until(() => checkpointer.stats.failedTicks >= failedBefore + 5);
      expect(errors).toEqual(['the database is away', 'the log key was replaced']);
    } finally {
      await checkpointer.stop();
    }
  });
});

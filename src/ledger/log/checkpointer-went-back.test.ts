/**
 * A database that went back under a running server (a failover to a replica without the
 * newest commits) and then took other events: the server that published a checkpoint of the
 * lost commits must not sign the fork with the same key. Here the server's pool is switched
 * from the original to a copy taken before its last commands (the "replica"), as a virtual
 * address or a connection pooler in front of a failover pair switches it; nothing restarts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../core/clock.ts';
import { Ledger } from '../ledger.ts';
import { systemActor } from '../permissions.ts';
import { backupOf, createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { openSigningLedger } from '../../../test/support/signing-ledger.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';
import { until } from '../../../test/support/until.ts';
import type { Pool } from '../../store/pool.ts';
import { listMigrations } from '../../store/migrate.ts';
import { healthFault, readHealth } from '../../server/health.ts';
import { generateSignerKey } from '../../tlog/index.ts';
import { LogWentBack, logWentBackRule } from './checkpointer.ts';

const key = generateSignerKey('went-back.chipledger.test');
const databases: TestDatabase[] = [];

/**
 * An original database with the log's key adopted and a first checkpoint signed, and a copy
 * of it taken then: the replica a failover will promote without what the original takes next.
 * Each test makes its own: a server's tiles in memory must be a prefix of the replica's log.
 */
async function failoverPair(): Promise<{ original: TestDatabase; replica: TestDatabase; copiedAt: number }> {
  const original = await createTestDatabase();
  databases.push(original);
  const first = await openSigningLedger(original.writerUrl, systemClock, key.signerKey);
  try {
    await register(first, 'Before the copy', 2);
    await first.checkpointer!.checkpointNow();
  } finally {
    await first.close();
  }
  const replica = await backupOf(original);
  databases.push(replica);
  return { original, replica, copiedAt: await logSize(replica) };
}

afterAll(async () => {
  for (const database of databases.splice(0)) await database.drop();
});

/** A pool that hands out the connections of whichever pool it is switched to. */
function switchable(first: Pool): { pool: Pool; switchTo(next: Pool): void } {
  let current = first;
  const pool = new Proxy(first, {
    get(_target, property) {
      const value: unknown = Reflect.get(current, property, current);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(current) : value;
    },
  });
  return { pool, switchTo: (next) => { current = next; } };
}

async function register(ledger: Ledger, prefix: string, count: number): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    const answer = await ledger.submit('organisation.register', { name: `${prefix} ${index}`, country: 'GB', roles: ['auditor'] }, systemActor);
    if (!answer.ok) throw new Error(answer.error.message);
  }
}

async function logSize(database: TestDatabase): Promise<number> {
  return Number((await database.pool.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
}

async function newestCheckpointSize(database: TestDatabase): Promise<number> {
  return Number((await database.pool.query<{ size: string | null }>('SELECT max(size) AS size FROM tlog_checkpoints')).rows[0]!.size ?? 0);
}

describe('a server whose database went back under it', () => {
  it('signs nothing its published checkpoint is not part of, says why (and /healthz with it), and signs again once the database extends it', async () => {
    const { original, replica, copiedAt } = await failoverPair();
    const { pool, switchTo } = switchable(original.writerPool);
    const ledger = await Ledger.open({ pool, clock: systemClock, logSignerKey: key.signerKey, logSealingKey: testSealingKey, checkpointIntervalMs: 3_600_000 });
    try {
      // Published on the original: three commands the replica never gets.
      await register(ledger, 'Lost', 3);
      const published = await ledger.checkpointer!.checkpointNow();
      expect(published?.size).toBe(copiedAt + 3);

      switchTo(replica.writerPool);
      // Covered as the replica holds it: nothing to sign, nothing refused.
      expect((await ledger.checkpointer!.checkpointNow())?.size).toBe(copiedAt);
      // Other commands at the sizes the lost ones had: first shorter than the published checkpoint, then past it.
      await register(ledger, 'After the failover', 1);
      const shorter = await ledger.checkpointer!.checkpointNow().then(() => undefined, (error: unknown) => error);
      expect(shorter).toBeInstanceOf(LogWentBack);
      expect((shorter as LogWentBack).message).toContain(`the database's transparency log holds ${copiedAt + 1} entries, so it no longer extends the checkpoint of size ${copiedAt + 3} this server signed`);
      expect((shorter as LogWentBack).rule).toBe(logWentBackRule);
      await register(ledger, 'After the failover, more', 3);
      const forked = await ledger.checkpointer!.checkpointNow().then(() => undefined, (error: unknown) => error);
      expect(forked).toBeInstanceOf(LogWentBack);
      expect((forked as LogWentBack).message).toContain(`gives the root `);
      expect((forked as LogWentBack).message).toContain(`at that size, not ${published!.root.toString('hex')}, so it no longer extends the checkpoint of size ${copiedAt + 3}`);
      expect(await logSize(replica)).toBe(copiedAt + 4);
      expect(await newestCheckpointSize(replica)).toBe(copiedAt);
      // /healthz answers 503 with it.
      const knownNewest = listMigrations().at(-1)!.version;
      expect(healthFault(ledger, await readHealth(ledger, pool, knownNewest, 5_000), knownNewest)).toBe(ledger.checkpointer!.wentBack);
      expect(ledger.checkpointer!.wentBack).toBe(forked);

      // The original back: its log extends the published checkpoint, and the next one is signed.
      switchTo(original.writerPool);
      await register(ledger, 'Back on the original', 1);
      expect((await ledger.checkpointer!.checkpointNow())?.size).toBe(copiedAt + 4);
      expect(await newestCheckpointSize(original)).toBe(copiedAt + 4);
      expect(ledger.checkpointer!.wentBack).toBeUndefined();
    } finally {
      await ledger.close();
    }
  });

  it('holds a server to the newest checkpoint its ticks saw another process publish', async () => {
    const { original, replica } = await failoverPair();
    // A signs on the original; B, started after, signs nothing there (the head is covered), but
    // its ticks (every 200 ms) read the log's newest checkpoint.
    const a = await openSigningLedger(original.writerUrl, systemClock, key.signerKey, undefined, 'went-back-a');
    let b: Ledger | undefined;
    try {
      await register(a, 'Published by A', 2);
      const published = (await a.checkpointer!.checkpointNow())!;
      const { pool, switchTo } = switchable(original.writerPool);
      b = await Ledger.open({ pool, clock: systemClock, logSignerKey: key.signerKey, logSealingKey: testSealingKey, checkpointIntervalMs: 200 });
      await until('B saw the checkpoint A published', () => b!.checkpointer!.stats.logSeen?.newest?.size === published.size, { withinMs: 10_000 });
      expect(b.checkpointer!.stats.signed).toBe(0);

      switchTo(replica.writerPool);
      const replicaSize = await logSize(replica);
      const replicaNewest = await newestCheckpointSize(replica);
      await register(b, 'B after the failover', published.size - replicaSize + 1);
      await expect(b.checkpointer!.checkpointNow()).rejects.toThrow(`so it no longer extends the checkpoint of size ${published.size} this server saw published`);
      expect(await newestCheckpointSize(replica)).toBe(replicaNewest);
    } finally {
      await b?.close();
      await a.close();
    }
  });
});

/** `count` registrations sent at once: a few batches. */
async function registerAtOnce(ledger: Ledger, prefix: string, count: number): Promise<void> {
  const answers = await Promise.all(Array.from({ length: count }, (_, index) =>
    ledger.submit('organisation.register', { name: `${prefix} ${index}`, country: 'GB', roles: ['auditor'] }, systemActor)));
  const refused = answers.find((answer) => !answer.ok);
  if (refused && !refused.ok) throw new Error(refused.error.message);
}

describe('the tiles a server read before its database went back', () => {
  /**
   * A server on the original that appends 300 entries the replica never gets (past a full
   * tile) and reads them for a root and a proof; then its pool is switched to the
   * replica, where `other`, a process the failover sent there, appends what it is told to.
   */
  async function afterFailover(otherEntries: number) {
    const { original, replica, copiedAt } = await failoverPair();
    const { pool, switchTo } = switchable(original.writerPool);
    const ledger = await Ledger.open({ pool, clock: systemClock, logSignerKey: key.signerKey, logSealingKey: testSealingKey, checkpointIntervalMs: 3_600_000 });
    await registerAtOnce(ledger, 'Lost', 300);
    await ledger.checkpointer!.checkpointNow();
    // Read as a proof reads them: the full level-0 tile of the lost history among them.
    await ledger.log.rootAt(copiedAt + 300);
    await ledger.log.inclusionProof(3, copiedAt + 300);
    switchTo(replica.writerPool);
    const other = await Ledger.open({ pool: replica.writerPool, clock: systemClock, logSealingKey: testSealingKey });
    await registerAtOnce(other, 'On the replica', otherEntries);
    return { ledger, other, copiedAt, close: async () => { await other.close(); await ledger.close(); } };
  }

  /** Its root and an inclusion proof at `size`, as the server answers them and as `other`, which read only the replica, does. */
  async function sameAsReplica(ledger: Ledger, other: Ledger, size: number): Promise<void> {
    expect((await ledger.log.rootAt(size)).toString('hex')).toBe((await other.log.rootAt(size)).toString('hex'));
    expect(await ledger.log.inclusionProof(3, size)).toEqual(await other.log.inclusionProof(3, size));
  }

  it('are forgotten when its next batch finds the log shorter than it committed: what it appends then is proved as the database holds it', async () => {
    const { ledger, other, copiedAt, close } = await afterFailover(0);
    try {
      await registerAtOnce(ledger, 'Its next', 300);
      expect(ledger.log.stats.tilesForgotten).toBe(1);
      await sameAsReplica(ledger, other, copiedAt + 300);
    } finally {
      await close();
    }
  });

  it('are forgotten when its next batch finds the log grown past them with another leaf where it last committed, and the batch commits', async () => {
    // 310: past the lost 300, the replica's root differs from the kept tiles'; 600: a level-1
    // tile wider than the kept one, read afresh, gives the root right, and only the leaf
    // where the server last committed tells that the full level-0 tile it kept is another's.
    for (const otherEntries of [310, 600]) {
      const { ledger, other, copiedAt, close } = await afterFailover(otherEntries);
      try {
        await register(ledger, 'Its next', 1);
        expect(ledger.log.stats.tilesForgotten, `${otherEntries}`).toBe(1);
        await sameAsReplica(ledger, other, copiedAt + otherEntries + 1);
      } finally {
        await close();
      }
    }
  });

  it('are forgotten when the lost commits were another process\'s, proved by its start-up check', async () => {
    const { original, replica, copiedAt } = await failoverPair();
    // Another process appends what the replica never gets, and stops.
    const writer = await openSigningLedger(original.writerUrl, systemClock, key.signerKey);
    await registerAtOnce(writer, 'Lost, by another', 300);
    await writer.close();
    // The server starts after it: its start-up check proves the lost entries, and a proof reads them.
    const { pool, switchTo } = switchable(original.writerPool);
    const ledger = await Ledger.open({ pool, clock: systemClock, logSealingKey: testSealingKey });
    const other = await Ledger.open({ pool: replica.writerPool, clock: systemClock, logSealingKey: testSealingKey });
    try {
      await ledger.log.inclusionProof(3, copiedAt + 300);
      switchTo(replica.writerPool);
      await registerAtOnce(other, 'On the replica', 600);
      await register(ledger, 'Its first', 1);
      expect(ledger.log.stats.tilesForgotten).toBe(1);
      await sameAsReplica(ledger, other, copiedAt + 601);
    } finally {
      await other.close();
      await ledger.close();
    }
  });

  it('are forgotten by a signing that finds the database went back, before any batch: its proofs are the database\'s', async () => {
    const { ledger, other, copiedAt, close } = await afterFailover(310);
    try {
      await expect(ledger.checkpointer!.checkpointNow()).rejects.toBeInstanceOf(LogWentBack);
      expect(ledger.log.stats.tilesForgotten).toBe(1);
      await sameAsReplica(ledger, other, copiedAt + 310);
    } finally {
      await close();
    }
  });
});

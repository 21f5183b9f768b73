/**
 * A signer whose recorder is behind (the server's published-checkpoint not written: a full
 * disk, a read-only remount) signs nothing new until what it owes is recorded: each signing
 * asks the recorder to catch up first and fails, having signed nothing, while it cannot; the
 * ticks keep reading the log, and say that signing is held (for /metrics). Before (the files
 * review) a failed record only failed its tick, and the next tick signed on.
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../core/errors.ts';
import type { TestDatabase } from '../../../test/database.ts';
import { worldPerFile, type World } from '../../../test/world.ts';
import { systemActor } from '../permissions.ts';
import { generateSignerKey } from '../../tlog/index.ts';
import { Ledger } from '../ledger.ts';
import type { CheckpointRecorder, SignedCheckpoint } from './checkpointer.ts';
import { until } from '../../../test/support/until.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => { world = made; database = madeDatabase; });

const logKey = generateSignerKey('log.chipledger.test').signerKey;

/** A recorder whose writes fail while `failing`, owing the newest checkpoint it could not write. */
class Recorder implements CheckpointRecorder {
  failing = false;
  recorded: number[] = [];
  owed: SignedCheckpoint | undefined;
  catchUps = 0;

  get behind(): DomainError | undefined {
    return this.owed === undefined ? undefined : new DomainError('unavailable', `owes ${this.owed.size}`, { rule: 'test-behind' });
  }

  async record(checkpoint: SignedCheckpoint): Promise<void> {
    if (this.failing) {
      this.owed = checkpoint;
      throw new Error('the disk is full');
    }
    this.recorded.push(checkpoint.size);
    if (this.owed !== undefined && checkpoint.size >= this.owed.size) this.owed = undefined;
  }

  async catchUp(): Promise<void> {
    this.catchUps += 1;
    if (this.owed !== undefined) await this.record(this.owed);
  }
}

async function register(ledger: Ledger, name: string): Promise<void> {
  const answer = await ledger.submit('organisation.register', { name, country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor);
  if (!answer.ok) throw new Error(answer.error.message);
}

const stored = async (): Promise<number> => (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tlog_checkpoints')).rows[0]!.n;

describe('the signer while its recorder is behind', () => {
  it('signs nothing new until what it owes is recorded, then records that first and signs the head', async () => {
    const ledger = await Ledger.open({ pool: database.pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKey, checkpointIntervalMs: 3_600_000 });
    const checkpointer = ledger.checkpointer!;
    const recorder = new Recorder();
    checkpointer.recordWith(recorder);
    try {
      await register(ledger, 'Held One Ltd.');
      recorder.failing = true;
      await expect(checkpointer.checkpointNow()).rejects.toThrow('the disk is full');
      const owed = recorder.owed!.size;
      expect(checkpointer.held).toMatchObject({ rule: 'test-behind' });
      expect(checkpointer.stats.logSeen?.signingHeld).toBe(true);
      const rows = await stored();

      await register(ledger, 'Held Two Ltd.');
      await expect(checkpointer.checkpointNow()).rejects.toThrow('the disk is full');
      expect(await stored()).toBe(rows);

      recorder.failing = false;
      const signed = await checkpointer.checkpointNow();
      expect(signed!.size).toBe(owed + 1);
      expect(recorder.recorded.slice(-2)).toEqual([owed, owed + 1]);
      expect(checkpointer.held).toBeUndefined();
      expect(checkpointer.stats.logSeen?.signingHeld).toBe(false);
    } finally {
      await ledger.close();
    }
  });

  it('tries to catch up at every tick while held, with or without anything to sign, and says the outage once, and its end once it is over', async () => {
    const errors: string[] = [];
    const recoveries: string[] = [];
    const ledger = await Ledger.open({
      pool: database.pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: logKey, checkpointIntervalMs: 100,
      onError: (error, context) => errors.push(`${context}: ${(error as Error).message}`), onRecovered: (message) => recoveries.push(message),
    });
    const checkpointer = ledger.checkpointer!;
    const recorder = new Recorder();
    checkpointer.recordWith(recorder);
    try {
      recorder.failing = true;
      await register(ledger, 'Held Three Ltd.');
      await until('a tick signs and fails to record', () => recorder.owed !== undefined, { withinMs: 10_000 });
      const rows = await stored();
      // Nothing to sign: the head is the checkpoint owed. Before, such a tick counted as signing
      // working again, said so, and the next failure began another outage.
      let catchUps = recorder.catchUps;
      await until('idle ticks ask to catch up', () => recorder.catchUps >= catchUps + 2, { withinMs: 10_000 });
      expect(recoveries).toEqual([]);
      await register(ledger, 'Held Four Ltd.');
      catchUps = recorder.catchUps;
      await until('ticks ask to catch up', () => recorder.catchUps >= catchUps + 2, { withinMs: 10_000 });
      expect(await stored()).toBe(rows);
      expect(checkpointer.stats.logSeen).toMatchObject({ signingHeld: true });
      expect(checkpointer.stats.logSeen!.headSize).toBeGreaterThan(recorder.owed!.size);
      expect(errors).toEqual(["couldn't sign a checkpoint (each reason is said once until signing works again): the disk is full"]);
      expect(recoveries).toEqual([]);
      recorder.failing = false;
      await until('the head is signed', () => checkpointer.held === undefined && checkpointer.stats.logSeen?.newest?.size === checkpointer.stats.logSeen?.headSize, { withinMs: 10_000 });
      expect(await stored()).toBe(rows + 1);
      await until('said once', () => recoveries.length > 0, { withinMs: 10_000 });
      expect(recoveries).toEqual([expect.stringMatching(/^checkpoint signing works again, after \d+ failed ticks over /)]);
    } finally {
      await ledger.close();
    }
  });
});

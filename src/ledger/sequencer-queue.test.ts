/**
 * The sequencer's queue is bounded by the serials its commands carry
 * (limits.sequencerQueueSerialsMax), not only by their count: each queued command holds its
 * parsed input, and 50,000 queued 100,000-serial commands would take gigabytes. Past the
 * bound a command with serials is refused 'overloaded' at once, nothing of it queued; one
 * without serials is not; and one with serials always fits a queue that holds none. The count
 * of commands waiting has its own bound (limits.sequencerQueueMax), refused the same way.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { worldPerFile, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import type { Answer } from './batch-apply.ts';
import { Sequencer } from './sequencer.ts';
import { TransparencyLog } from './log/transparency-log.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, made2) => {
  world = made;
  database = made2;
});

/** The bound under test: one command of 3 serials and one of 2 fit, a second of 3 does not. */
const queueSerialsMax = 5;
let sequencer: Sequencer;

beforeAll(() => {
  sequencer = new Sequencer({ pool: database.pool, clock: world.clock, logAppender: new TransparencyLog(database.pool), queueSerialsMax });
});
afterAll(async () => {
  await sequencer?.close();
});

/** A booking carrying `count` fresh serials (none: a booking without a manifest). */
function book(count: number): Promise<Answer> {
  const serials = Array.from({ length: count }, () => `Q-${randomUUID().toUpperCase()}`);
  const input = {
    exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId,
    units: Math.max(1, count), deadline: '2026-06-01T00:00:00Z', ...(count === 0 ? {} : { serials }),
  };
  return sequencer.submit('shipment.book', input, world.actors.exporter, `queue-${randomUUID()}`);
}

const outcome = (answer: Answer) => (answer.ok ? 'accepted' : answer.error.code);

describe('the sequencer queue\'s bound on serials', () => {
  it('refuses at once a command whose serials do not fit beside those queued, and queues those that fit', async () => {
    // Submitted in one turn: none is taken off the queue before the last is queued.
    const [first, second, withoutSerials, fitting] = [book(3), book(3), book(0), book(2)];
    const refused = await second;
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect({ code: refused.error.code, rule: refused.error.rule }).toEqual({ code: 'overloaded', rule: 'sequencer-queue-serials' });
    expect(refused.error.message).toMatch(/3 serials waiting .* its bound is 5; this shipment\.book carries 3/);
    expect((await Promise.all([first, withoutSerials, fitting])).map(outcome)).toEqual(['accepted', 'accepted', 'accepted']);
  });

  it('takes a command larger than the bound into a queue that holds no serials, and counts serials out as batches take them', async () => {
    // Everything before has been answered: the queue holds no serials.
    expect(outcome(await book(queueSerialsMax + 2))).toBe('accepted');
    const [first, second] = [book(3), book(3)];
    expect((await Promise.all([first, second])).map(outcome)).toEqual(['accepted', 'overloaded']);
    expect(outcome(await book(3))).toBe('accepted');
  });
});

describe('the sequencer queue\'s bound on commands', () => {
  it('refuses at once, naming its rule and the numbers, a command past the commands waiting; nothing of it is run', async () => {
    const bounded = new Sequencer({ pool: database.pool, clock: world.clock, logAppender: new TransparencyLog(database.pool), queueMax: 2 });
    try {
      const eventsBefore = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
      const key = `queue-commands-${randomUUID()}`;
      const input = { exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z' };
      // Submitted in one turn: none is taken off the queue before the last is queued.
      const answers = [0, 1, 2].map((n) => bounded.submit('shipment.book', input, world.actors.exporter, n === 2 ? key : `${key}-${n}`));
      const refused = await answers[2]!;
      expect(refused.ok).toBe(false);
      if (refused.ok) return;
      expect({ code: refused.error.code, rule: refused.error.rule, details: refused.error.details }).toEqual({ code: 'overloaded', rule: 'sequencer-queue-commands', details: { queueDepth: 2, queueMax: 2 } });
      expect(refused.error.message).toMatch(/2 commands waiting, its bound is 2/);
      expect((await Promise.all(answers.slice(0, 2))).map(outcome)).toEqual(['accepted', 'accepted']);
      const eventsAfter = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
      expect(eventsAfter.rows[0]!.n - eventsBefore.rows[0]!.n).toBe(2);
      // Not remembered under its key: sent again once there is room, it runs.
      expect(outcome(await bounded.submit('shipment.book', input, world.actors.exporter, key))).toBe('accepted');
    } finally {
      await bounded.close();
    }
  });
});

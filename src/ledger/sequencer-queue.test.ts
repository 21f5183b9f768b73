/**
 * The sequencer's queue is bounded by the serials its commands carry
 * (limits.sequencerQueueSerialsMax), not only by their count: each queued command holds its
 * parsed input, and 50,000 queued 100,000-serial commands would take gigabytes. Past the
 * bound a command with serials is refused 'overloaded' at once, nothing of it queued; one
 * without serials is not; and one with serials always fits a queue that holds none.
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

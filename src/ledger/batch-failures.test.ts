/**
 * Which organisations run alone (batch-failures.ts Culprits): each for its own period after
 * its last failure, up to and not including the period's end, whatever other organisations
 * fail meanwhile. The sequencer's use of it (who is made a culprit, when its command runs)
 * is sequencer-fairness.test.ts's.
 */
import { describe, expect, it } from 'vitest';
import { Culprits } from './batch-failures.ts';

describe('Culprits', () => {
  it('keeps an organisation alone for its whole period when another fails after it: a second culprit wipes out no first', () => {
    const culprits = new Culprits(5_000);
    culprits.failed('ORG-A', 0);
    culprits.failed('ORG-B', 1_000);
    expect([2_000, 4_999].map((nowMs) => culprits.runsAlone('ORG-A', nowMs))).toEqual([true, true]);
    expect(culprits.runsAlone('ORG-B', 5_999)).toBe(true);
  });

  it('ends the period at failure + aloneMs: alone just before it, sharing batches from it on', () => {
    const culprits = new Culprits(5_000);
    culprits.failed('ORG-A', 1_000);
    expect([5_999, 6_000, 6_001].map((nowMs) => culprits.runsAlone('ORG-A', nowMs))).toEqual([true, false, false]);
  });

  it('starts the period again at each repeat, and drops only the periods over as a new one comes', () => {
    const culprits = new Culprits(5_000);
    culprits.failed('ORG-A', 0);
    culprits.failed('ORG-B', 4_000);
    culprits.failed('ORG-A', 4_500);
    expect([culprits.runsAlone('ORG-A', 9_499), culprits.runsAlone('ORG-B', 8_999), culprits.runsAlone('ORG-B', 9_000)]).toEqual([true, true, false]);
    expect(culprits.runsAlone('ORG-C', 0)).toBe(false);
  });
});

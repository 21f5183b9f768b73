import { describe, expect, it } from 'vitest';
import { limits } from '../../core/limits.ts';
import { tickPeriodMs } from './checkpointer.ts';

describe('the checkpoint signer\'s tick', () => {
  it('leaves a signing\'s time inside the interval, so the worst lag (a tick plus a signing) stays within it', () => {
    expect(tickPeriodMs(1_000)).toBe(1_000 - limits.checkpointSigningMarginMs);
    expect(tickPeriodMs(1_000) + limits.checkpointSigningMarginMs).toBeLessThanOrEqual(1_000);
    expect(tickPeriodMs(3_600_000)).toBe(3_600_000 - limits.checkpointSigningMarginMs);
  });

  it('ticks at half a short interval rather than not at all', () => {
    expect(tickPeriodMs(50)).toBe(25);
    expect(tickPeriodMs(1)).toBe(1);
  });
});

import { describe, expect, it } from 'vitest';
import { ReadRefusals } from './read-refusals.ts';

describe('ReadRefusals', () => {
  it('says a reason at once, then at most once an interval, counting the refusals it stands for', () => {
    let now = 0;
    const refusals = new ReadRefusals(() => now, 1_000);
    expect(refusals.refused('away')).toBe(1);
    expect(refusals.refused('away')).toBeUndefined();
    expect(refusals.refused('55P03')).toBe(1);
    now = 999;
    expect(refusals.refused('away')).toBeUndefined();
    now = 1_000;
    expect(refusals.refused('away')).toBe(3);
    expect(refusals.refused('away')).toBeUndefined();
  });
});

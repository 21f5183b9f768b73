import { describe, expect, it } from 'vitest';
import { KeptPromise } from './kept-promise.ts';

describe('a kept promise', () => {
  it('is made once and given to every caller while it holds', async () => {
    const kept = new KeptPromise<number>();
    let made = 0;
    const make = async () => ++made;
    expect(await Promise.all([kept.get(make), kept.get(make)])).toEqual([1, 1]);
    expect(await kept.get(make)).toBe(1);
    expect(made).toBe(1);
  });

  it('is made again after it rejected, the failure given to those who waited for it', async () => {
    const kept = new KeptPromise<string>();
    const failing = kept.get(async () => {
      throw new Error('not installed');
    });
    const waiting = kept.get(async () => 'never made');
    await expect(failing).rejects.toThrow('not installed');
    await expect(waiting).rejects.toThrow('not installed');
    expect(await kept.get(async () => 'made again')).toBe('made again');
  });

  it('is let go by take, which hands it over once', async () => {
    const kept = new KeptPromise<string>();
    await kept.get(async () => 'first');
    expect(await kept.take()).toBe('first');
    expect(kept.take()).toBeUndefined();
    expect(await kept.get(async () => 'second')).toBe('second');
  });
});

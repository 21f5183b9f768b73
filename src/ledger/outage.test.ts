/**
 * An outage's bookkeeping (outage.ts), on a clock set by hand: each reason said once, at most
 * limits.outageReasonsMax of them, and one recovery line with the counts and the duration, worded by
 * the caller's nouns; nothing said when something works without an outage before it.
 */
import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { Outage, type OutageWords } from './outage.ts';

const ticks: OutageWords = { again: 'checkpoint signing works again', failure: ['failed tick', 'failed ticks'] };
const batches: OutageWords = { again: 'the ledger commits again', failure: ['batch', 'batches'], part: ["command answered 'unavailable'", "commands answered 'unavailable'"] };

/** An outage whose clock the test moves. */
function outage(words: OutageWords): { outage: Outage; advanceMs: (ms: number) => void } {
  let nowMs = 1_000_000;
  return { outage: new Outage(words, () => nowMs), advanceMs: (ms) => { nowMs += ms; } };
}

describe('an outage', () => {
  it('says a reason once while it lasts, and says it again in the next outage', () => {
    const { outage: signing } = outage(ticks);
    expect(signing.failed('the database is slow or away')).toBe('began');
    expect(signing.failed('the database is slow or away')).toBe('nothing new');
    expect(signing.failed('LogKeyError: the log key was replaced')).toBe('new reason');
    expect(signing.failed('LogKeyError: the log key was replaced')).toBe('nothing new');
    expect(signing.failed('the database is slow or away')).toBe('nothing new');
    expect(signing.recovered()).toMatch(/^checkpoint signing works again, after 5 failed ticks/);
    expect(signing.failed('the database is slow or away')).toBe('began');
  });

  it('says at most outageReasonsMax reasons, the first of them included', () => {
    const { outage: signing } = outage(ticks);
    const news = Array.from({ length: limits.outageReasonsMax + 3 }, (_, index) => signing.failed(`reason ${index}`));
    expect(news).toEqual(['began', ...Array<string>(limits.outageReasonsMax - 1).fill('new reason'), 'nothing new', 'nothing new', 'nothing new']);
    // Past the bound a reason is not said, but its failure is still counted.
    expect(signing.recovered()).toMatch(new RegExp(`after ${limits.outageReasonsMax + 3} failed ticks`));
  });

  it('ends in one recovery line with its counts and its duration', () => {
    const { outage: ledger, advanceMs } = outage(batches);
    ledger.failed('the database is slow or away', 1);
    advanceMs(4_000);
    ledger.failed('the database is slow or away', 3);
    advanceMs(11_349);
    ledger.failed('unavailable: the lock was not had', 2);
    expect(ledger.recovered()).toBe("the ledger commits again, after 3 batches of 6 commands answered 'unavailable' over 15.3 s");
    expect(ledger.recovered()).toBeUndefined();
  });

  it('counts one failure in the singular, and without parts when the words count none', () => {
    const { outage: signing, advanceMs } = outage(ticks);
    signing.failed('the database is slow or away', 7);
    advanceMs(250);
    expect(signing.recovered()).toBe('checkpoint signing works again, after 1 failed tick over 0.3 s');
    const { outage: ledger } = outage(batches);
    ledger.failed('the database is slow or away', 1);
    expect(ledger.recovered()).toBe("the ledger commits again, after 1 batch of 1 command answered 'unavailable' over 0.0 s");
  });

  it('says nothing on recovery without an outage', () => {
    const { outage: ledger } = outage(batches);
    expect(ledger.recovered()).toBeUndefined();
    ledger.failed('the database is slow or away');
    expect(ledger.recovered()).toBeDefined();
    expect(ledger.recovered()).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { isLockTimeout, isTransientDatabaseError } from '../ledger/refusals.ts';
import { isWaitBoundError } from './advisory-locks.ts';
import { isDatabaseUnavailable } from './database-unavailable.ts';
import { meaningOf, sqlStateMeanings, sqlStateOf, transientDatabaseErrorWords } from './sqlstate.ts';

const passing = 'a passing condition of the database';
const operator = 'an operator ending or cancelling the statement';
const statementTimeout = 'canceling statement due to statement timeout';

/**
 * What each predicate answered before the SQLSTATE meanings were one table (refusals.ts's
 * inline list, pool.ts's unavailableStates and words, the 55P03 and 57014 tests), for every
 * code those lists named, a code of each class they matched by prefix, and neighbours they
 * did not match. `message`: the error's (a 57014 is a bound of ours only with these words).
 */
const before: ReadonlyArray<{ code: string; message?: string; transient: boolean; unavailable: boolean; words: string; lockTimeout?: true; waitBound?: true }> = [
  { code: '08000', transient: true, unavailable: true, words: 'a connection failure' },
  { code: '08006', transient: true, unavailable: true, words: 'a connection failure' },
  { code: '08P01', transient: true, unavailable: true, words: 'a connection failure' },
  { code: '40001', transient: true, unavailable: false, words: 'a serialization failure (another session changed what this transaction read)' },
  { code: '40P01', transient: true, unavailable: false, words: 'a deadlock with another session, which PostgreSQL broke by failing this statement' },
  { code: '40002', transient: true, unavailable: false, words: 'a transaction rolled back' },
  { code: '57014', message: statementTimeout, transient: true, unavailable: true, words: 'a statement cancelled', waitBound: true },
  { code: '57014', message: 'canceling statement due to user request', transient: true, unavailable: false, words: 'a statement cancelled' },
  { code: '57P01', transient: true, unavailable: true, words: operator },
  { code: '57P02', transient: true, unavailable: true, words: operator },
  { code: '57P03', transient: true, unavailable: true, words: operator },
  { code: '57P04', transient: true, unavailable: false, words: operator },
  { code: '57000', transient: true, unavailable: false, words: operator },
  { code: '53100', transient: true, unavailable: false, words: "the database's disk full" },
  { code: '53200', transient: true, unavailable: false, words: 'the database out of memory' },
  { code: '53300', transient: true, unavailable: true, words: 'every connection slot taken' },
  { code: '53400', transient: false, unavailable: false, words: passing },
  { code: '53000', transient: false, unavailable: false, words: passing },
  { code: '55P03', transient: true, unavailable: false, words: 'a lock not had in time (another session holds what the statement needs)', lockTimeout: true, waitBound: true },
  { code: '55000', transient: false, unavailable: false, words: passing },
  { code: '25P03', transient: true, unavailable: false, words: 'a transaction left idle past idle_in_transaction_session_timeout' },
  { code: '25006', transient: true, unavailable: true, words: 'a read-only connection (a standby)' },
  { code: '25001', transient: false, unavailable: false, words: passing },
  { code: '23505', transient: false, unavailable: false, words: passing },
  { code: '22001', transient: false, unavailable: false, words: passing },
  { code: '54000', transient: false, unavailable: false, words: passing },
  { code: '42501', transient: false, unavailable: false, words: passing },
  { code: '28P01', transient: false, unavailable: false, words: passing },
  { code: '3D000', transient: false, unavailable: false, words: passing },
  { code: 'ECONNREFUSED', transient: false, unavailable: true, words: passing },
];

describe('the SQLSTATE table', () => {
  it('words every code and class it marks "not now", and only those', () => {
    // A transient code without words would be said as "a passing condition of the database";
    // words on a code that is not transient would never be said.
    for (const code of sqlStateMeanings.keys()) {
      const { transient, words } = meaningOf(code);
      expect({ code, worded: words !== undefined }).toEqual({ code, worded: transient });
    }
  });

  it('marks "not now" every code it marks unavailable: the write path retries what the API answers 503', () => {
    for (const code of sqlStateMeanings.keys()) {
      const { transient, unavailable } = meaningOf(code);
      if (unavailable) expect({ code, transient }).toEqual({ code, transient: true });
    }
  });

  it('reads a code\'s class where the code has no entry, and the code\'s entry over its class\'s', () => {
    expect(meaningOf('08P01')).toEqual(meaningOf('08'));
    expect(meaningOf('57P01')).toEqual({ ...meaningOf('57'), unavailable: true });
    expect(meaningOf('53400')).toEqual({ transient: false, unavailable: false });
    // Not a SQLSTATE, and no property of a plain object either.
    expect(meaningOf('constructor')).toEqual({ transient: false, unavailable: false });
  });

  it('takes a SQLSTATE from a PostgreSQL error only', () => {
    expect(sqlStateOf(Object.assign(new Error('lock timeout'), { code: '55P03' }))).toBe('55P03');
    for (const error of [Object.assign(new Error('reset'), { code: 'ECONNRESET' }), new TypeError('a bug'), { code: 55 }, null, undefined, 'text']) {
      expect(sqlStateOf(error), String(error)).toBeUndefined();
    }
  });
});

describe('the SQLSTATE predicates', () => {
  it('answer for every code of the old lists as they did before the table', () => {
    for (const { code, message, lockTimeout = false, waitBound = false, ...expected } of before) {
      const error = Object.assign(new Error(message ?? `database error ${code}`), { code });
      const answered = {
        transient: isTransientDatabaseError(code),
        unavailable: isDatabaseUnavailable(error),
        words: transientDatabaseErrorWords(code),
        lockTimeout: isLockTimeout(error),
        waitBound: isWaitBoundError(error),
      };
      expect(answered, `${code} ${message ?? ''}`).toEqual({ ...expected, lockTimeout, waitBound });
    }
  });
});

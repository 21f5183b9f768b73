/** The statement a refusal gives an operator to end the sessions holding a lock. */
import { describe, expect, it } from 'vitest';
import { terminateSql, type LockHolder } from './advisory-locks.ts';

const holder = (pid: number): LockHolder => ({ pid, applicationName: 'chipledger-check', state: 'idle', stateSeconds: 5 });

describe('terminateSql', () => {
  it('ends one session by its pid, several one by one (a second argument of pg_terminate_backend is a timeout), none with no statement', () => {
    expect(terminateSql([holder(4711)])).toBe('SELECT pg_terminate_backend(4711)');
    expect(terminateSql([holder(4711), holder(4712)])).toBe('SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[4711, 4712]) AS pid');
    expect(terminateSql([])).toBeUndefined();
  });
});

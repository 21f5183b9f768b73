import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { isLockTimeout, isWorthRunningAgain, provesNoCommit, toRefusal } from './refusals.ts';

const databaseError = (code: string) => Object.assign(new Error(`database error ${code}`), { code });

describe('toRefusal', () => {
  it('answers "not now" (unavailable, so the caller retries with its key) to errors that say the database could not do it now', () => {
    for (const code of ['08006', '57P01', '57014', '53100', '53200', '53300', '55P03', '40001', '40P01', '25P03', 'ECONNRESET']) {
      expect(toRefusal(databaseError(code)).code, code).toBe('unavailable');
    }
  });

  it('refuses the command for what it wrote, and rethrows the rest as bugs', () => {
    expect(toRefusal(databaseError('23505')).code).toBe('conflict');
    expect(toRefusal(databaseError('22008')).code).toBe('invalid_input');
    for (const code of ['42P01', '42703', 'XX000', '55000', '53400']) expect(() => toRefusal(databaseError(code)), code).toThrow(`database error ${code}`);
  });
});

describe('what a failed batch sent ahead proves, and whether it runs again', () => {
  const serverError = (severity: string, code: string): pg.DatabaseError => Object.assign(new pg.DatabaseError('refused', 0, 'error'), { severity, code });

  it('takes an ERROR the server reported as proof that nothing committed, even with the session lost after it', () => {
    expect(provesNoCommit(serverError('ERROR', 'CLH01'), false)).toBe(true);
    expect(provesNoCommit(serverError('ERROR', '23505'), true)).toBe(true);
    // Translated severities: the session living on (a ROLLBACK went through) proves it.
    expect(provesNoCommit(serverError('FEHLER', '23505'), true)).toBe(true);
    expect(provesNoCommit(serverError('FEHLER', '23505'), false)).toBe(false);
  });

  it('proves nothing by a lost connection or a client that gave up on the reply, even if a ROLLBACK then succeeds', () => {
    expect(provesNoCommit(serverError('FATAL', '57P01'), false)).toBe(false);
    expect(provesNoCommit(new Error('Connection terminated unexpectedly'), false)).toBe(false);
    // node-postgres's query_timeout: the server may have committed; a ROLLBACK after it succeeds.
    expect(provesNoCommit(new Error('Query read timeout'), true)).toBe(false);
  });

  it('runs again for a wrong guess or a refused row, not for a wait or an outage', () => {
    expect(isWorthRunningAgain(serverError('ERROR', 'CLH01'))).toBe(true);
    expect(isWorthRunningAgain(serverError('ERROR', '23505'))).toBe(true);
    expect(isWorthRunningAgain(serverError('ERROR', '22008'))).toBe(true);
    expect(isWorthRunningAgain(serverError('ERROR', '55P03'))).toBe(false);
    expect(isWorthRunningAgain(serverError('ERROR', '53300'))).toBe(false);
    expect(isWorthRunningAgain(new Error('timeout exceeded when trying to connect'))).toBe(false);
    // A batch sent ahead runs again after a lock timeout of its own short wait (the sequencer asks this apart).
    expect(isLockTimeout(serverError('ERROR', '55P03'))).toBe(true);
    expect(isLockTimeout(serverError('ERROR', '57014'))).toBe(false);
  });

  it('answers a moved head that could not be rolled back as unavailable, not as a bug', () => {
    expect(toRefusal(serverError('FEHLER', 'CLH01')).code).toBe('unavailable');
  });
});

import { describe, expect, it } from 'vitest';
import { toRefusal } from './refusals.ts';

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

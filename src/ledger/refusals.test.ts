import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { z } from 'zod';
import { invalidInput, isCommandsOwnRefusal, isLockTimeout, isRefusedWrite, isWorthRunningAgain, provesNoCommit, quotedFieldLengthMax, quotedKeyLengthMax, quotedKeysMax, toRefusal, clockAheadOfDatabaseRule } from './refusals.ts';

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

  it('refuses a value over the database\'s own size limit (54000) as too large, naming the index and table, and runs its batch again in halves to find it', () => {
    // As PostgreSQL reports a text over a btree index's row limit (errtableconstraint).
    const overIndex = Object.assign(databaseError('54000'), { table: 'organisations', constraint: 'organisations_address_index', message: 'index row size 6024 exceeds btree version 4 maximum 2704 for index "organisations_address_index"' });
    const refusal = toRefusal(overIndex);
    expect({ code: refusal.code, rule: refusal.rule, details: refusal.details }).toEqual({ code: 'payload_too_large', rule: 'database-value-size', details: { table: 'organisations', index: 'organisations_address_index' } });
    expect(refusal.message).toContain('index organisations_address_index on organisations');
    expect(refusal.message).toContain('index row size 6024 exceeds');
    expect(isRefusedWrite(overIndex)).toBe(true);
    expect(isWorthRunningAgain(overIndex)).toBe(true);
    // Remembered under the key as the command's own answer only when it names a table of the command's rows.
    expect(isCommandsOwnRefusal(overIndex)).toBe(true);
    expect(isCommandsOwnRefusal(databaseError('54000'))).toBe(false);
    expect(isCommandsOwnRefusal(Object.assign(databaseError('54000'), { table: 'idempotency_keys', constraint: 'idempotency_keys_pkey' }))).toBe(false);
    // Every table the write path keeps for itself, beside the command's rows (store/batch-writes.ts, batch-event-writes.ts, batch-tile-writes.ts).
    for (const table of ['tlog_tiles', 'log_head', 'events', 'event_serials', 'event_subjects', 'event_reader_sets', 'idempotency_keys']) {
      expect(isCommandsOwnRefusal(Object.assign(databaseError('23505'), { table, constraint: `${table}_pkey` })), table).toBe(false);
    }
    expect(isCommandsOwnRefusal(Object.assign(databaseError('23505'), { table: 'units', constraint: 'units_pkey' }))).toBe(true);
    // The rest of class 54 is not a value of the command's: a bug, as before.
    for (const code of ['54001', '54011', '54023']) {
      expect(isRefusedWrite(databaseError(code)), code).toBe(false);
      expect(() => toRefusal(databaseError(code)), code).toThrow(`database error ${code}`);
    }
  });

  it('names invariant 4 when the database refuses a serial listed twice, and other duplicates as unique (a GPU UUID: refusals-gpu-uuid.test.ts)', () => {
    const duplicate = (constraint: string, code = '23505') => Object.assign(databaseError(code), { constraint, detail: 'Key (serial)=(SN-1) already exists.' });
    for (const constraint of ['units_live_in_one_shipment', 'units_pkey']) {
      const refusal = toRefusal(duplicate(constraint));
      expect({ code: refusal.code, rule: refusal.rule }, constraint).toEqual({ code: 'conflict', rule: 'invariant-4' });
      expect(refusal.message).toContain('Key (serial)=(SN-1) already exists.');
    }
    for (const constraint of ['tokens_secret_hash_key', 'products_pkey']) expect(toRefusal(duplicate(constraint)).rule, constraint).toBe('unique');
    // A model is unique by an exclusion constraint (migration 026): a duplicate all the same.
    expect(toRefusal(duplicate('products_model_key', '23P01'))).toMatchObject({ code: 'conflict', rule: 'unique' });
  });

  it('quotes at most 200 characters of the key the database refused, cut between characters', () => {
    const detail = `Key (model)=(${'\u{20000}'.repeat(2_000)}) already exists.`;
    const message = toRefusal(Object.assign(databaseError('23P01'), { constraint: 'products_model_key', detail })).message;
    expect(message.isWellFormed()).toBe(true);
    expect(message.length).toBeLessThan(700);
    expect(message).toContain('…');
  });
});

describe('invalidInput', () => {
  const issuesOf = (schema: z.ZodType, value: unknown) => schema.safeParse(value).error!.issues;
  /** Every character of a refusal a client reads: its detail and its fields. */
  const size = (refusal: ReturnType<typeof invalidInput>) => refusal.message.length + JSON.stringify(refusal.details ?? {}).length;

  it('quotes an unknown key of 11 MB cut to a bound, once in the detail and once in its field', () => {
    const key = 'k'.repeat(11_000_000);
    const refusal = invalidInput('unit.deploy', issuesOf(z.strictObject({ siteId: z.string() }), { siteId: 'SITE-1', [key]: 1 }));
    expect(refusal.code).toBe('invalid_input');
    expect(refusal.message).toMatch(new RegExp(`^couldn't read the unit.deploy request: \\(body\\): Unrecognized key: "k{${quotedKeyLengthMax}}…"$`));
    expect(refusal.details).toEqual({ fields: [{ path: '(body)', message: expect.stringMatching(/^Unrecognized key: "k+…"$/) }] });
    expect(size(refusal)).toBeLessThan(1_000);
  });

  it('quotes the first few of many unknown keys, and says how many more', () => {
    const keys = Object.fromEntries(Array.from({ length: 5_000 }, (_, index) => [`extra${index}${'x'.repeat(300)}`, index]));
    const refusal = invalidInput('site.create', issuesOf(z.strictObject({}), keys));
    expect(refusal.message).toContain(`and ${5_000 - quotedKeysMax} more`);
    expect(refusal.message.match(/"extra\d+x+…"/g)).toHaveLength(quotedKeysMax);
    expect(size(refusal)).toBeLessThan(2_000);
  });

  it('cuts a long path and a long message between characters, in the fields and in the detail', () => {
    const issues = Array.from({ length: 30 }, () => ({ path: Array.from({ length: 10_000 }, () => '\u{20000}'), message: `must be ${'\u{20000}'.repeat(10_000)}` }));
    const refusal = invalidInput('site.create', issues);
    expect(refusal.message.isWellFormed()).toBe(true);
    expect(refusal.message).toMatch(/…: must be .*… \(and 29 more\)$/u);
    const fields = (refusal.details as { fields: Array<{ path: string; message: string }> }).fields;
    expect(fields).toHaveLength(20);
    for (const field of fields) {
      expect(field.path.isWellFormed() && field.message.isWellFormed()).toBe(true);
      expect(Array.from(field.path).length).toBe(quotedFieldLengthMax + 1);
      expect(Array.from(field.message).length).toBe(quotedFieldLengthMax + 1);
    }
    // A list over its bound (413) quotes its path and message cut the same way.
    const overList = invalidInput('manifest.attach', [{ path: ['k'.repeat(10_000)], message: 'x'.repeat(10_000), code: 'too_big', origin: 'array' }]);
    expect(overList.code).toBe('payload_too_large');
    expect(overList.message.length).toBeLessThan(600);
  });

  it('says short ones whole, as before', () => {
    const refusal = invalidInput('shipment.book', issuesOf(z.strictObject({ units: z.number() }), { units: 'x', priority: 'high' }));
    expect(refusal.message).toBe("couldn't read the shipment.book request: units: Invalid input: expected number, received string (and 1 more)");
    expect(refusal.details).toEqual({ fields: [{ path: 'units', message: 'Invalid input: expected number, received string' }, { path: '(body)', message: 'Unrecognized key: "priority"' }] });
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

  it('answers a batch dated too far ahead of the database\'s clock (migration 047) as unavailable, to fix this server\'s clock, in one line', () => {
    const detail = JSON.stringify({ batchAt: '2027-06-01T12:00:00.000Z', databaseAt: '2026-06-01T12:00:00.000Z', aheadMsMax: 300_000 });
    const refusal = toRefusal(Object.assign(serverError('ERROR', 'CLH03'), { detail }));
    expect(refusal).toMatchObject({ code: 'unavailable', rule: clockAheadOfDatabaseRule, details: JSON.parse(detail) });
    expect(refusal.message).toBe("the batch was dated 2027-06-01T12:00:00.000Z (by this server's clock, or by the ledger's newest event when that is later), 31536000 s ahead of the database's clock (2026-06-01T12:00:00.000Z); at most 300 s is taken as clock drift, so nothing was written: check this server's clock and the database host's (NTP), then send the request again");
    // A DETAIL that does not read as the trigger writes it: the message says it instead.
    const bare = toRefusal(Object.assign(serverError('ERROR', 'CLH03'), { detail: 'not json' }));
    expect(bare).toMatchObject({ code: 'unavailable', rule: clockAheadOfDatabaseRule, message: "the batch was dated ahead of the database's clock, so nothing was written: refused; check this server's clock and the database host's (NTP), then send the request again" });
    expect(isWorthRunningAgain(serverError('ERROR', 'CLH03'))).toBe(false);
  });
});

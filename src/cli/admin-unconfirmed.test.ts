/**
 * An admin command or the demo load whose change the database did not confirm: the ledger's
 * answer tells an API client to retry with the same Idempotency-Key, which these callers do not
 * send; they say what to do instead (the s25 crash review: `organisation register` run again
 * after such an answer can make a second organisation).
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../core/errors.ts';
import { unconfirmedChangeMessage } from '../ledger/refusals.ts';
import { refusedError } from '../demo/parties.ts';
import { adminRefusal } from './admin.ts';

const unconfirmed = new DomainError('unavailable', unconfirmedChangeMessage);

describe('an unconfirmed change, said to a caller without an Idempotency-Key', () => {
  it('an admin command: it may have been made, and running it again may make it twice', () => {
    const { message } = adminRefusal('create the token', unconfirmed);
    expect(message).toMatch(/^couldn't create the token \(unavailable\): the database did not confirm the change, so it may have been made; admin commands carry no Idempotency-Key, so running this one again may make it twice: look first/);
    expect(message).not.toContain('retry with the same Idempotency-Key');
  });

  it('the demo load: it stopped part-way, and loads only into an empty database', () => {
    const { message } = refusedError('shipment.book', unconfirmed);
    expect(message).toBe("couldn't load the demo: shipment.book was refused (unavailable): the database did not confirm it, so the load stopped part-way; a demo loads only into an empty database: start again with an empty CHIPLEDGER_DATA_DIR (or DATABASE_URL naming an empty database)");
  });

  it('any other refusal as the ledger said it', () => {
    const refusal = new DomainError('conflict', 'token TOK-9 was already revoked', { rule: 'token-status' });
    expect(adminRefusal('revoke token TOK-9', refusal).message).toBe("couldn't revoke token TOK-9 (conflict, token-status): token TOK-9 was already revoked");
  });
});

/**
 * What of an error a log line may hold: a PostgreSQL error's detail, where and internalQuery
 * quote the rows its statement touched ("Failing row contains (…)"), and pino writes every
 * enumerable field of an error. Found by the observability review's suspicion, confirmed in
 * request-ids.test.ts: the 500's log line held an organisation's name and address.
 */
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { DomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { QueueShares } from '../ledger/queue-shares.ts';
import { fromFrameworkError, internalProblem, problemOf, sendProblem, withoutRowValues } from './problem.ts';

/** A PostgreSQL error as node-postgres makes it, with the fields that quote a row. */
function constraintError(): pg.DatabaseError {
  const error = new pg.DatabaseError('new row for relation "sites" violates check constraint "sites_capacity"', 200, 'error');
  Object.assign(error, {
    severity: 'ERROR', code: '23514', table: 'sites', constraint: 'sites_capacity', schema: 'public',
    detail: 'Failing row contains (SITE-9, Jade Harbour Trading Co., 17 Quay Road)',
    where: 'SQL statement "INSERT INTO sites VALUES (\'Jade Harbour\')"', internalQuery: 'INSERT INTO sites VALUES (\'Jade Harbour\')',
  });
  return error;
}

/** The JSON line pino writes for `error` under `err`. */
function logged(error: unknown): Record<string, unknown> {
  let line = '';
  pino(new Writable({ write(chunk, _encoding, done) { line += String(chunk); done(); } })).error({ err: error }, 'failed');
  return (JSON.parse(line) as { err: Record<string, unknown> }).err;
}

describe('withoutRowValues', () => {
  it('leaves out what quotes rows, and keeps what says what failed: code, constraint, table, message, stack', () => {
    const error = constraintError();
    const line = logged(withoutRowValues(error));
    expect(JSON.stringify(line)).not.toContain('Jade Harbour');
    expect(line).not.toHaveProperty('detail');
    expect(line).not.toHaveProperty('where');
    expect(line).not.toHaveProperty('internalQuery');
    expect(line).toMatchObject({ type: 'DatabaseError', code: '23514', constraint: 'sites_capacity', table: 'sites', severity: 'ERROR', message: error.message, stack: error.stack });
    // The error itself is as it was: its caller may still read it.
    expect(error.detail).toContain('Jade Harbour');
  });

  it('returns anything else as it is: of a cause, pino writes only its message and stack', () => {
    const wrapped = new Error('couldn\'t book', { cause: constraintError() });
    expect(withoutRowValues(wrapped)).toBe(wrapped);
    expect(JSON.stringify(logged(wrapped))).not.toContain('Jade Harbour');
    const plain = new Error('disk on fire');
    expect(withoutRowValues(plain)).toBe(plain);
    expect(withoutRowValues('text')).toBe('text');
  });
});

describe('internalProblem', () => {
  it('names the request id the failure was logged under, in the detail and in details', () => {
    expect(internalProblem('0b3f5c2e-4f4a-4a53-9a53-3f3c1f2f1d7e', '/v1/sites')).toMatchObject({
      status: 500, code: 'internal', instance: '/v1/sites', details: { requestId: '0b3f5c2e-4f4a-4a53-9a53-3f3c1f2f1d7e' },
      detail: 'the server failed to answer this request; the failure was logged under request id 0b3f5c2e-4f4a-4a53-9a53-3f3c1f2f1d7e',
    });
  });
});

describe('Retry-After', () => {
  /** The Retry-After header `error` is answered with. */
  async function retryAfterOf(error: DomainError): Promise<string | undefined> {
    const app = Fastify();
    app.get('/', (_request, reply) => sendProblem(reply, problemOf(error, '/')));
    try {
      return (await app.inject({ method: 'GET', url: '/' })).headers['retry-after'] as string | undefined;
    } finally {
      await app.close();
    }
  }

  // The diff review: a share that frees as a 100,000-serial batch commits (2 to 10 s) asked for
  // 1 s, and the CLI's three tries gave up on an upload the queue would have taken.
  it("asks a command past its organisation's share of the queue's serials to wait for a batch, within what the CLI waits", async () => {
    const shares = new QueueShares(1_000_000, 200_000);
    shares.countIn('ORG-1', 150_000);
    const refusal = shares.refusal('shipment.book', 'ORG-1', 100_000, 1)!;
    expect([refusal.code, refusal.rule]).toEqual(['too_many_requests', 'sequencer-queue-serials-organisation']);
    expect(await retryAfterOf(refusal)).toBe(String(limits.organisationShareRetryAfterSeconds));
    expect(limits.organisationShareRetryAfterSeconds).toBeGreaterThan(limits.retryAfterSeconds);
    // Past the CLI's longest wait, it would not send the command again at all.
    expect(limits.organisationShareRetryAfterSeconds * 1000).toBeLessThanOrEqual(limits.retryAfterMsMax);
  });

  it('keeps 1 s for an overloaded server and 30 s for a clock to put right, and none for a refusal that waiting does not change', async () => {
    expect(await retryAfterOf(new DomainError('overloaded', 'busy'))).toBe(String(limits.retryAfterSeconds));
    expect(await retryAfterOf(new DomainError('unavailable', 'clock', { rule: 'clock-behind-ledger' }))).toBe(String(limits.clockRetryAfterSeconds));
    expect(await retryAfterOf(new DomainError('conflict', 'no'))).toBeUndefined();
  });
});

describe('fromFrameworkError', () => {
  it('gives every client error the framework raises a rule, also one it has no case for', () => {
    const refusal = fromFrameworkError(Object.assign(new Error('Body is not valid'), { statusCode: 400, code: 'FST_ERR_SOMETHING_NEW' }));
    expect(refusal).toBeInstanceOf(DomainError);
    expect(problemOf(refusal as DomainError)).toMatchObject({ status: 400, code: 'invalid_input', rule: 'request', detail: "couldn't read the request: Body is not valid" });
    // A server error of the framework's is not the client's: left to the 500 path.
    expect(fromFrameworkError(Object.assign(new Error('boom'), { statusCode: 500 }))).toBeNull();
  });
});

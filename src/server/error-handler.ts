/**
 * The one error handler: every error a route or hook throws leaves here as problem+json. A
 * refusal keeps its status; the database away, or not answering now, is a 503 a client may
 * retry; anything else is a logged, plain 500 that names the request's id.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { isTransientDatabaseError, sqlStateOf, transientDatabaseErrorWords } from '../store/sqlstate.ts';
import { withoutSecrets } from './log-redaction.ts';
import { defaultBodyMediaType, fromFrameworkError, internalProblem, problemOf, sendProblem, withoutRowValues } from './problem.ts';
import { ReadRefusals } from './read-refusals.ts';

/** Sets the app's error handler, the one place an error becomes an answer. */
export function registerErrorHandler(app: FastifyInstance): void {
  // Said at most once a reason a minute (read-refusals.ts): counted by route in /metrics.
  const readRefusals = new ReadRefusals();
  const sayRefused = (request: FastifyRequest, error: unknown, reason: string): void => {
    const count = readRefusals.refused(reason);
    if (count !== undefined) request.log.warn({ err: withoutRowValues(error), route: request.routeOptions.url, refused: count }, `answered 503 for the database: ${reason} (${count} such answer(s) since the last line of this reason; at most one a minute)`);
  };
  app.setErrorHandler((error, request, reply) => {
    const refusal = fromFrameworkError(error, request.routeOptions.config.accepts ?? defaultBodyMediaType, request.routeOptions.bodyLimit);
    if (refusal !== null) return sendProblem(reply, problemOf(refusal, request.url));
    // The database away (down, frozen past a read's bound, connections refused) is the
    // write path's 503 too: a client may retry, and it is not a fault of ours to log as one.
    if (isDatabaseUnavailable(error)) {
      sayRefused(request, error, 'the database is unreachable or not answering');
      return sendProblem(reply, problemOf(new DomainError('unavailable', 'the database is unreachable or not answering; try again later', { cause: error }), request.url));
    }
    // The write path's other "not now"s (isTransientDatabaseError): a lock not had in time (an
    // operator's lock_timeout while a migration, a VACUUM FULL or an ALTER TABLE holds a
    // table), a deadlock with such DDL, an operator's cancel, a disk or memory short for a
    // moment. Every request that gets here may simply be sent again: a read changed nothing,
    // and a cosignature is stored by an upsert, so a second one stores nothing twice.
    const code = sqlStateOf(error);
    if (code !== undefined && isTransientDatabaseError(code)) {
      sayRefused(request, error, `${transientDatabaseErrorWords(code)} (SQLSTATE ${code})`);
      return sendProblem(reply, problemOf(new DomainError('unavailable', `the database couldn't answer this now: ${transientDatabaseErrorWords(code)} (SQLSTATE ${code}); try again later`, { cause: error }), request.url));
    }
    request.log.error({ err: withoutRowValues(error), method: request.method, route: request.routeOptions.url, ...whoAsked(request) }, 'unhandled error while answering a request');
    return sendProblem(reply, internalProblem(request.id, request.url));
  });
}

/**
 * What a client who reports a 500 knows besides its id, for the log line: its organisation
 * (once the token was verified) and the Idempotency-Key it sent, within the length a key may
 * have (a longer one was never taken as a key); never the token.
 */
function whoAsked(request: FastifyRequest): { organisationId?: string; idempotencyKey?: string } {
  const key = request.headers['idempotency-key'];
  return {
    ...(request.actor === null ? {} : { organisationId: request.actor.orgId }),
    // A token secret sent as a key (commands refuse it; reads never look) is logged cut, as in a URL.
    ...(typeof key === 'string' && key.length <= limits.idempotencyKeyLengthMax ? { idempotencyKey: withoutSecrets(key) } : {}),
  };
}

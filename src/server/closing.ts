/**
 * How the API stops (app.close(), from serve's shutdown): requests that arrive from then on
 * are answered 503 server-closing with Connection: close; those under way get
 * limits.closingGraceMsDefault to finish. Then a request whose body has not arrived whole (an upload
 * trickling in, which may take up to limits.requestTimeoutMs) is answered the same 503: its
 * body was never parsed, so nothing of it is applied, and the client sends it again with its
 * Idempotency-Key. At twice the grace every connection still open is closed, so the close
 * ends well within serve's shutdown bound and the ledger, the pool and PostgreSQL still stop
 * in order after it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { problemOf, sendProblem } from './problem.ts';

/** The answer to a request the closing server will not take (or finish receiving). */
export function serverClosingRefusal(): DomainError {
  return new DomainError('unavailable', 'this server is shutting down; send the request again (its Idempotency-Key makes that safe)', { rule: 'server-closing' });
}

/**
 * Registers, as an onRequest hook, the refusal of requests that arrive while the server
 * closes, and, as a preClose hook, the grace and the cut-offs after it.
 */
export function registerClosing(app: FastifyInstance, graceMs: number = limits.closingGraceMsDefault): void {
  let closing = false;
  // Requests whose body was still arriving when they reached this hook; each leaves the set
  // when its response has finished or its connection has closed ('close' fires once).
  const receiving = new Set<{ request: FastifyRequest; reply: FastifyReply }>();
  app.addHook('onRequest', (request, reply, done) => {
    if (closing) {
      reply.header('connection', 'close');
      // Answered here, the lifecycle ends without done(): fastify's way for a callback hook.
      sendProblem(reply, problemOf(serverClosingRefusal(), request.url));
      return;
    }
    if (!request.raw.complete) {
      const entry = { request, reply };
      receiving.add(entry);
      reply.raw.once('close', () => receiving.delete(entry));
    }
    done();
  });
  app.addHook('preClose', async () => {
    closing = true;
    const answerTimer = setTimeout(() => {
      for (const { request, reply } of receiving) answerUnreceived(request, reply);
    }, graceMs);
    // Whatever is still open then (a request whose body is in but whose answer is slow) is
    // cut: its client sees the connection close, the outcome unknown, and retries.
    const cutTimer = setTimeout(() => app.server.closeAllConnections(), 2 * graceMs);
    // Neither keeps the process alive; both end with the server, which closes once its last
    // connection has.
    answerTimer.unref();
    cutTimer.unref();
    app.server.once('close', () => {
      clearTimeout(answerTimer);
      clearTimeout(cutTimer);
    });
  });
}

/**
 * Answers 503 server-closing a request whose body has not arrived whole, and closes its
 * connection after the answer. Once the answer is sent fastify runs none of the route's
 * steps (they each check reply.sent), and the body's unread rest is dropped with the
 * connection: nothing of it is parsed or applied.
 */
function answerUnreceived(request: FastifyRequest, reply: FastifyReply): void {
  if (request.raw.complete || reply.sent) return;
  reply.header('connection', 'close');
  sendProblem(reply, problemOf(serverClosingRefusal(), request.url));
}

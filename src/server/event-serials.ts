/**
 * GET /v1/events/:seq/serials: the serial list an event records by its digest
 * (input.serialsSha256), one line per entry ("serial" or "serial gpuUuid"), sorted, each
 * ending in a newline: exactly the bytes the digest covers, so
 * `curl … /v1/events/42/serials | sha256sum` recomputes it. The event's readers may read it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { DomainError } from '../core/errors.ts';
import type { Pool } from '../store/pool.ts';
import { findEventSerialLines } from '../store/event-serials.ts';
import { seqInPath, viewerOf } from './queries.ts';

export const eventSerialsPath = '/v1/events/:seq/serials';

/** The list is served whole, so it takes no parameters. */
const noQuery = z.strictObject({});

/**
 * Refuses a query string as every other /v1 GET does (queries.ts), in the same words: a
 * parameter such as ?limit=1 must not be ignored while the client takes the answer for a page.
 */
function refuseQuery(query: unknown): void {
  const parsed = noQuery.safeParse(query ?? {});
  if (parsed.success) return;
  const fields = parsed.error.issues.slice(0, 20).map((issue) => ({ path: issue.path.map(String).join('.') || 'query', message: issue.message }));
  throw new DomainError('invalid_input', `couldn't read the query string: ${fields[0]!.path}: ${fields[0]!.message}`, { details: { fields } });
}

export function registerEventSerialsRoute(app: FastifyInstance, pool: Pool): void {
  app.get(eventSerialsPath, async (request: FastifyRequest<{ Params: { seq: string } }>, reply: FastifyReply) => {
    refuseQuery(request.query);
    const seq = seqInPath(request.params.seq);
    const lines = await findEventSerialLines(pool, viewerOf(request.actor!), seq);
    if (lines === null) throw new DomainError('not_found', `event ${seq} was not found, or it records no serial list`, { details: { event: seq } });
    return reply.type('text/plain; charset=utf-8').send(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
  });
}

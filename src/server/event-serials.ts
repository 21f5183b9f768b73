/**
 * GET /v1/events/:seq/serials: the serial list an event records by its digest
 * (input.serialsSha256), one line per entry ("serial" or "serial gpuUuid"), sorted, each
 * ending in a newline: exactly the bytes the digest covers, so
 * `curl … /v1/events/42/serials | sha256sum` recomputes it. The event's readers may read it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../core/errors.ts';
import type { Pool } from '../store/pool.ts';
import { findEventSerialLines } from '../store/event-serials.ts';
import { seqInPath, viewerOf } from './queries.ts';
import { noQuery, readQueryString } from './query-string.ts';

export const eventSerialsPath = '/v1/events/:seq/serials';

export function registerEventSerialsRoute(app: FastifyInstance, pool: Pool): void {
  app.get(eventSerialsPath, async (request: FastifyRequest<{ Params: { seq: string } }>, reply: FastifyReply) => {
    // The list is served whole, so it takes no parameters: a parameter such as ?limit=1 must
    // not be ignored while the client takes the answer for a page.
    readQueryString(noQuery, request.query);
    const seq = seqInPath(request.params.seq);
    const lines = await findEventSerialLines(pool, viewerOf(request.actor!), seq);
    if (lines === null) throw new DomainError('not_found', `event ${seq} was not found, or it records no serial list`, { details: { event: seq } });
    return reply.type('text/plain; charset=utf-8').send(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
  });
}

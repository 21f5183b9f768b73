/**
 * A bound on the request bodies a server holds at once (limits.requestBodiesInFlightBytesMax).
 * A request reserves its body's size before the body is read, from Content-Length (or, for
 * a body sent in chunks, the largest body the route accepts), and gives it back once it has
 * been answered or its connection has closed. A request that does not fit is refused with
 * 503 + Retry-After, and its body is never read.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../core/errors.ts';

export class BodyBudget {
  private reservedBytes = 0;

  constructor(readonly bytesMax: number) {}

  get reserved(): number {
    return this.reservedBytes;
  }

  /**
   * Reserves the request's body until its reply is done; throws 'overloaded' when it does
   * not fit. A body larger than `bodyLimit` reserves only bodyLimit: the body parser
   * refuses it at that size (413).
   */
  reserve(request: FastifyRequest, reply: FastifyReply, bodyLimit: number): void {
    const bytes = Math.min(declaredBytes(request) ?? bodyLimit, bodyLimit);
    if (bytes === 0) return;
    if (this.reservedBytes + bytes > this.bytesMax) {
      throw new DomainError('overloaded', `the server holds ${formatMiB(this.reservedBytes)} of request bodies, its bound is ${formatMiB(this.bytesMax)}; retry shortly`, {
        rule: 'request-bodies-in-flight', details: { reservedBytes: this.reservedBytes, bytesMax: this.bytesMax, requestBytes: bytes },
      });
    }
    this.reservedBytes += bytes;
    // 'close' fires once: when the response has finished, or when the connection went away first.
    reply.raw.once('close', () => {
      this.reservedBytes -= bytes;
    });
  }
}

/** The body's declared size; undefined for a body sent in chunks (no Content-Length). */
function declaredBytes(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) return request.headers['transfer-encoding'] === undefined ? 0 : undefined;
  const bytes = Number(header);
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined;
}

const formatMiB = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

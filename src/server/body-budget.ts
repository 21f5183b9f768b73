/**
 * A bound on the request bodies a server holds at once (limits.requestBodiesInFlightBytesMax),
 * and on what one organisation's requests hold of it
 * (limits.requestBodiesInFlightPerOrganisationBytesMax). A request reserves its body's size
 * before the body is read, from Content-Length (or, for a body sent in chunks, the largest
 * body the route accepts), and gives it back once it has been answered or its connection has
 * closed, and, for a command, once the command has left the ledger's queue (holdWhile): the
 * queued command holds its parsed input, whether or not its client is still there. A request
 * that does not fit is refused with Retry-After, and its body is never read: 503 overloaded
 * when the server's room is full, 429 too_many_requests when only its organisation's share is
 * (RFC 6585 §4: a bound on one client, not the server down; a load balancer that ejects a
 * backend after consecutive 5xx must not eject healthy ones for one tenant's burst).
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, assert } from '../core/errors.ts';

/** One request's room: given back when nothing holds it any more. */
interface Reservation {
  organisationId: string;
  bytes: number;
  /** The reply until it is done, and the command while the ledger has it (holdWhile). */
  holds: number;
}

export class BodyBudget {
  private reservedBytes = 0;
  private readonly reservedByOrganisation = new Map<string, number>();
  /** Each request's room, kept (with no holds) after it was given back: holdWhile tells the two apart. */
  private readonly reservations = new WeakMap<IncomingMessage, Reservation>();

  constructor(readonly bytesMax: number, readonly organisationBytesMax: number) {
    assert(organisationBytesMax > 0 && organisationBytesMax <= bytesMax, 'an organisation holds at most the whole room for request bodies');
  }

  get reserved(): number {
    return this.reservedBytes;
  }

  /**
   * Reserves the request's body for `organisationId` until its reply is done; throws
   * 'too_many_requests' when it does not fit the organisation's share, 'overloaded' when it
   * does not fit the whole room. A body
   * larger than `bodyLimit` reserves only bodyLimit: the body parser refuses it at that size
   * (413).
   */
  reserve(request: FastifyRequest, reply: FastifyReply, organisationId: string, bodyLimit: number): void {
    const bytes = Math.min(declaredBytes(request) ?? bodyLimit, bodyLimit);
    if (bytes === 0) return;
    this.refuseUnlessFits(organisationId, bytes);
    const reservation: Reservation = { organisationId, bytes, holds: 1 };
    this.reservedBytes += bytes;
    this.reservedByOrganisation.set(organisationId, (this.reservedByOrganisation.get(organisationId) ?? 0) + bytes);
    this.reservations.set(request.raw, reservation);
    // 'close' fires once: when the response has finished, or when the connection went away first.
    // It may have fired already: the client can leave while the token is checked (a database
    // read, awaited before this), and a listener added after it would never run, the room held
    // for good (a few such uploads shut an organisation out of large bodies). Then the room is
    // given back at once, and the command is not run (holdWhile: client-gone).
    if (reply.raw.closed) this.letGo(reservation);
    else reply.raw.once('close', () => this.letGo(reservation));
  }

  /**
   * Runs `work` (a command's ledger.submit) and holds the request's room until it settles:
   * a client that goes away once its body is in does not free room its queued command still
   * takes. A request whose room was already given back (its client went away while the body
   * was parsed or the token checked again) is not run: nobody waits for its answer, and its
   * input would be queued outside the bound. Its client sends it again with its
   * Idempotency-Key. A request that reserved nothing (no body) just runs.
   */
  async holdWhile<T>(request: FastifyRequest, work: () => Promise<T>): Promise<T> {
    const reservation = this.reservations.get(request.raw);
    if (reservation === undefined) return work();
    if (reservation.holds === 0) {
      throw new DomainError('unavailable', 'the client went away before its command reached the ledger: nothing of it was run; send it again with the same Idempotency-Key', { rule: 'client-gone' });
    }
    reservation.holds += 1;
    try {
      return await work();
    } finally {
      this.letGo(reservation);
    }
  }

  /**
   * The server's bound first: when it is full, it is full for everyone. The organisation's
   * share refuses what would fit the server but not the organisation.
   */
  private refuseUnlessFits(organisationId: string, bytes: number): void {
    if (this.reservedBytes + bytes > this.bytesMax) {
      throw new DomainError('overloaded', `the server holds ${formatMiB(this.reservedBytes)} of request bodies, its bound is ${formatMiB(this.bytesMax)}; retry shortly`, {
        rule: 'request-bodies-in-flight', details: { reservedBytes: this.reservedBytes, bytesMax: this.bytesMax, requestBytes: bytes },
      });
    }
    const organisationBytes = this.reservedByOrganisation.get(organisationId) ?? 0;
    if (organisationBytes + bytes > this.organisationBytesMax) {
      throw new DomainError('too_many_requests', `organisation ${organisationId} holds ${formatMiB(organisationBytes)} of request bodies still arriving or not yet answered, and one organisation may hold ${formatMiB(this.organisationBytesMax)} (of the server's ${formatMiB(this.bytesMax)}); this request declares ${formatMiB(bytes)}; retry once your requests in flight are answered`, {
        rule: 'request-bodies-in-flight-per-organisation', details: { organisationReservedBytes: organisationBytes, organisationBytesMax: this.organisationBytesMax, requestBytes: bytes },
      });
    }
  }

  private letGo(reservation: Reservation): void {
    assert(reservation.holds > 0, 'a request body\'s room is given back once');
    reservation.holds -= 1;
    if (reservation.holds > 0) return;
    this.reservedBytes -= reservation.bytes;
    const left = this.reservedByOrganisation.get(reservation.organisationId)! - reservation.bytes;
    if (left === 0) this.reservedByOrganisation.delete(reservation.organisationId);
    else this.reservedByOrganisation.set(reservation.organisationId, left);
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

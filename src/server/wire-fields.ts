/**
 * The scalar fields the API's records and its events' bodies share (src/server/wire.ts,
 * src/server/wire-events.ts): one definition each, so a record and the event that made it
 * describe a status or an instant alike.
 */
import { z } from 'zod';
import type { Eccn } from '../policy/classification.ts';

export const seq = z.number().int().min(0).describe('An event sequence number (= log leaf index).');
export const instant = z.iso.datetime().describe('An instant, ISO 8601 in UTC (2026-02-01T00:00:00.000Z).');
/**
 * An event's nonce (src/ledger/events.ts eventNonce): 16 random bytes, unpadded base64url,
 * so 22 characters, the last of which holds only 2 bits (A, Q, g or w).
 */
export const eventNonce = z.string().regex(/^[A-Za-z0-9_-]{21}[AQgw]$/)
  .describe("16 random bytes (base64url, no padding: 22 characters), this event's alone. The log's leaf hashes are public, and an event's other fields can be guessed from one's own events, so without it a leaf hash would confirm a guess at an event one may not read. Its readers have it in the event's bytes, so they verify as before. Optional: events written before it was added have none, and their bytes stay as the log holds them (changing them would break the log).");
/**
 * A tranche's period is judged in UTC days, by the ledger and the database alike
 * (ledger/handlers/shipment-checks.ts checkBookingPeriod; migrations 015, 023, 035): said here, since
 * an authority's own day (Beijing's, 8 hours ahead) starts and ends at other instants.
 */
export const day = z.iso.date().describe("A calendar day in UTC, YYYY-MM-DD. A tranche's period (periodStart to periodEnd, both days included) holds a booking when the booking's time, taken as a UTC date, is within it: a tranche ending 2026-03-31 takes bookings until 2026-04-01T00:00:00Z, which is 08:00 on 1 April in Beijing.");
export const eccn = z.enum(['3A090.a', '3A090.b', 'not 3A090'] as const satisfies readonly Eccn[]);
export const count = z.number().int().min(0);
export const demo = z.boolean().describe('Demo data (loaded by `chipledger demo`), not a real record.');
export const unitSite = z.string().nullable().describe("The site it is deployed at; null when it is not deployed, and for an exporter: where a unit runs is its recipient's to see (sites answer others 404).");

export const licenceStatus = z.enum(['draft', 'issued', 'suspended', 'revoked', 'surrendered', 'expired', 'exhausted']);
export const shipmentStatus = z.enum(['booked', 'shipped', 'cleared', 'delivered', 'cancelled', 'expired', 'returned']);
export const custody = z.enum(['licensed', 'in_transit', 'delivered', 'deployed', 'decommissioned', 'returned', 'lost']);
export const totalsScope = z.enum(['licence', 'own_allocations'])
  .describe("How far the totals reach: the whole licence, or (for a recipient) only the viewer's own allocations.");

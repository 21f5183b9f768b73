/**
 * The read routes, declared in one table. Each runs the same pipeline: validate the
 * query string (zod, strict: unknown parameters are refused; query-string.ts), load through
 * src/store/read-queries.ts with the caller's tenant filter in SQL, present. A row the
 * caller may not see answers 404 exactly like an unknown id.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { hash as oneShotHash } from 'node:crypto';
import { z } from 'zod';
import { DomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { unitNotFoundMessage } from '../core/serial.ts';
import type { Actor } from '../ledger/permissions.ts';
import { schemaRule } from '../ledger/refusals.ts';
import { id as idSchema, serial as serialSchema } from '../ledger/schemas.ts';
import type { Pool } from '../store/pool.ts';
import * as read from '../store/read-queries.ts';
import { custody, licenceStatus, shipmentStatus } from './wire-fields.ts';
import type { Page, Viewer } from '../store/read-queries.ts';
import * as present from './presenters.ts';
import { noQuery, readQueryString } from './query-string.ts';
import type * as wire from './wire.ts';

export interface QueryContext {
  pool: Pool;
  demo: boolean;
}

export interface QueryRoute {
  path: string;
  summary: string;
  /** The query string's schema; lists add limit and cursor. */
  query: z.ZodObject;
  /** Lists answer { items, nextCursor }. */
  list: boolean;
  /** Lists: the order of their items, which the document gives clients. */
  order?: ListOrder;
  /** What it answers (a list: each item), by its schema's name in src/server/wire.ts. */
  item: wire.ResourceName;
  run(context: QueryContext, viewer: Viewer, params: Record<string, string>, query: Record<string, unknown>): Promise<unknown>;
}

/**
 * How a list's pages follow one another. `by`: the key of its order, in words; a row's key
 * never changes, so a walk through the pages shows each row at most once (store/pages.ts).
 * `filtersThatChange`: its filters on a field a row's changes move it in or out of; keyset
 * pages hold no snapshot, so a walk under one of them can miss a row that leaves the filter
 * and comes back between two pages.
 */
export interface ListOrder {
  by: string;
  filtersThatChange: readonly string[];
}
const byCreation = 'in order of creation (created_seq, the number in the id)';
const bySerial = "in serial order, as the database's collation orders text (byte order on the embedded cluster)";

/**
 * A page size in its one canonical spelling, as the log routes read numbers: decimal digits,
 * no sign, no leading zero, not empty (a coercion read '0x10', '1e2' and '2.0' as numbers,
 * and '' as 0). Any count of digits is that spelling, so a long one is refused by the range
 * check, as too big: past 2^53 it is read as the largest safe integer, still too big, since
 * int() would refuse an unsafe one (or Infinity, past a double) for another reason. The
 * document shows it as the integer it is.
 */
const pageSize = z.string()
  .refine((text) => /^(0|[1-9][0-9]*)$/.test(text), 'must be a whole decimal number without sign or leading zeros')
  .transform((text) => Math.min(Number(text), Number.MAX_SAFE_INTEGER))
  .pipe(z.number().int().min(1).max(limits.pageSizeMax))
  .default(limits.pageSizeDefault)
  .meta({ type: 'integer', minimum: 1, maximum: limits.pageSizeMax, default: limits.pageSizeDefault });
const pageQuery = {
  limit: pageSize,
  cursor: z.string().max(512).optional(),
};

/** Authorities and auditors read everything; a recipient only what is its own. */
export function viewerOf(actor: Actor): Viewer {
  const seesAll = actor.role === 'authority_admin' || actor.role === 'authority_officer' || actor.role === 'auditor';
  return { orgId: seesAll ? null : actor.orgId, allocations: actor.role === 'recipient' ? 'received' : 'related' };
}

/**
 * Cursors are opaque to clients: base64url of the last key of the page and of the list it
 * pages (`of`: a digest of the route, its path ids and its filters). A cursor from another
 * list, or from the same list under another filter, would silently skip rows there: it is
 * refused instead.
 */
export function encodeCursor(key: number | string, list: string): string {
  return Buffer.from(JSON.stringify({ after: key, of: list })).toString('base64url');
}

/** The digest a cursor of this list carries: the route, its path ids and filters, not the page (limit, cursor). */
export function listDigest(route: string, params: Record<string, string>, query: Record<string, unknown>): string {
  const filters = Object.entries(query).filter(([name, value]) => name !== 'limit' && name !== 'cursor' && value !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
  return oneShotHash('sha256', JSON.stringify([route, params, filters]), 'base64url').slice(0, 16);
}

const cursorRefused = (why = '') => new DomainError('invalid_input', `the cursor is not one this API gave out${why === '' ? '' : ` ${why}`}; start again without it`, { rule: 'cursor' });

/** The key a cursor carries, once it is known to be one of this list's: any JSON value, checked by decodeCursor. */
function openCursor(cursor: string | undefined, list: string): unknown {
  if (cursor === undefined) return undefined;
  let opened: { after?: unknown; of?: unknown } | undefined;
  try {
    opened = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as typeof opened;
  } catch {
    opened = undefined;
  }
  if (typeof opened !== 'object' || opened === null || opened.after === undefined) throw cursorRefused();
  if (opened.of !== list) throw cursorRefused('for this list and filter');
  return opened.after;
}

/**
 * The largest number a cursor may carry: keys are sequence numbers (bigint, but never past
 * JavaScript's safe integers) or, for `versionKeyMax`, licence versions (integer). A larger
 * one would reach PostgreSQL as an out-of-range parameter: a 500 instead of a 400.
 */
const seqKeyMax = Number.MAX_SAFE_INTEGER;
export const versionKeyMax = 2_147_483_647;

/**
 * The key a cursor ends at, as the list's keys are. Only keys this API could have given out
 * pass: whole numbers from 0 to `numberMax`, or serials (so no NUL, which PostgreSQL refuses
 * in text, and nothing longer than a serial).
 */
export function decodeCursor<K extends 'number' | 'string'>(after: unknown, type: K, numberMax = seqKeyMax): (K extends 'number' ? number : string) | null {
  if (after === undefined) return null;
  const valid = type === 'number'
    ? Number.isSafeInteger(after) && (after as number) >= 0 && (after as number) <= numberMax
    : serialSchema.safeParse(after).success;
  if (!valid) throw cursorRefused();
  return after as K extends 'number' ? number : string;
}

/** A list route's query as run sees it: `after` is the key its cursor carried (registerQueryRoutes opened it). */
function pageOf<K extends 'number' | 'string'>(query: Record<string, unknown>, type: K, numberMax?: number) {
  return { after: decodeCursor(query.after, type, numberMax), limit: query.limit as number };
}

/** A list's answer before its cursor is sealed to the list (registerQueryRoutes). */
interface ListAnswer {
  items: unknown[];
  nextAfter: number | string | null;
}

function listOf<T, K extends number | string>(page: Page<T, K>, present: (row: T) => unknown): ListAnswer {
  return { items: page.rows.map(present), nextAfter: page.nextAfter };
}

function found<T>(row: T | null, what: string, id: string): T {
  if (row === null) throw new DomainError('not_found', `${what} ${id} was not found`, { details: { [what]: id } });
  return row;
}

/** Path ids are checked like command ids: a malformed one is a 400, not a query. */
function pathId(params: Record<string, string>, schema: z.ZodType<string> = idSchema): string {
  const parsed = schema.safeParse(params.id);
  if (!parsed.success) throw new DomainError('invalid_input', `the id in the path is not valid: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { rule: schemaRule });
  return parsed.data;
}

/** An event's sequence number in a path, as the API writes them: no sign, no leading zeros, no exponent. */
export function seqInPath(raw: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new DomainError('invalid_input', `the event number in the path must be a whole number such as 42, not ${JSON.stringify(raw.slice(0, 40))}`, { rule: schemaRule });
  }
  return Number(raw);
}

export const queryRoutes: readonly QueryRoute[] = [
  {
    path: '/v1/organisations', item: 'Organisation', summary: 'Organisations: its own, and those named on the licences and allocations it reads', list: true, order: { by: byCreation, filtersThatChange: [] }, query: z.strictObject(pageQuery),
    run: async ({ pool }, viewer, _params, query) => listOf(await read.listOrganisations(pool, viewer, pageOf(query, 'number')), present.presentOrganisation),
  },
  {
    path: '/v1/products', item: 'Product', summary: 'The product catalogue with ECCNs', list: true, order: { by: byCreation, filtersThatChange: [] }, query: z.strictObject(pageQuery),
    run: async ({ pool }, _viewer, _params, query) => listOf(await read.listProducts(pool, pageOf(query, 'number')), present.presentProduct),
  },
  {
    path: '/v1/licences', item: 'Licence', summary: `Licences the caller holds or is named on; a page ends early, with a nextCursor, once its licences' conditions and riders pass ${(limits.pageBytesMax / 1024 / 1024).toLocaleString('en')} MiB as text (it always holds one)`, list: true, order: { by: byCreation, filtersThatChange: ['status'] }, query: z.strictObject({ ...pageQuery, status: licenceStatus.optional() }),
    run: async ({ pool }, viewer, _params, query) => listOf(
      await read.listLicences(pool, viewer, pageOf(query, 'number'), query.status === undefined ? {} : { status: query.status as string }),
      present.presentLicence,
    ),
  },
  {
    path: '/v1/licences/:id', item: 'LicenceDetail', summary: 'A licence with its parties and the allocations the caller sees', list: false, query: noQuery,
    run: async ({ pool }, viewer, params) => {
      const id = pathId(params);
      return present.presentLicenceDetail(found(await read.findLicence(pool, viewer, id), 'licence', id));
    },
  },
  {
    path: '/v1/licences/:id/versions', item: 'LicenceVersion', summary: `A licence's versions: every amendment, nothing overwritten; a page ends early, with a nextCursor, once its versions pass ${(limits.pageBytesMax / 1024 / 1024).toLocaleString('en')} MiB as text (it always holds one)`, list: true, order: { by: 'in version order', filtersThatChange: [] }, query: z.strictObject(pageQuery),
    run: async ({ pool }, viewer, params, query) => {
      const id = pathId(params);
      return listOf(found(await read.listLicenceVersions(pool, viewer, id, pageOf(query, 'number', versionKeyMax)), 'licence', id), present.presentLicenceVersion);
    },
  },
  {
    path: '/v1/allocations', item: 'Allocation', summary: 'Allocations the caller receives (recipients), or also those on its licences (exporters)', list: true, order: { by: byCreation, filtersThatChange: [] },
    query: z.strictObject({ ...pageQuery, licenceId: idSchema.optional() }),
    run: async ({ pool }, viewer, _params, query) => listOf(
      await read.listAllocations(pool, viewer, pageOf(query, 'number'), query.licenceId === undefined ? {} : { licenceId: query.licenceId as string }),
      present.presentAllocation,
    ),
  },
  {
    path: '/v1/allocations/:id', item: 'Allocation', summary: 'One allocation', list: false, query: noQuery,
    run: async ({ pool }, viewer, params) => {
      const id = pathId(params);
      return present.presentAllocation(found(await read.findAllocation(pool, viewer, id), 'allocation', id));
    },
  },
  {
    path: '/v1/shipments', item: 'Shipment', summary: 'Shipments the caller exports or receives', list: true, order: { by: byCreation, filtersThatChange: ['status'] }, query: z.strictObject({ ...pageQuery, status: shipmentStatus.optional() }),
    run: async ({ pool }, viewer, _params, query) => listOf(
      await read.listShipments(pool, viewer, pageOf(query, 'number'), query.status === undefined ? {} : { status: query.status as string }),
      present.presentShipment,
    ),
  },
  {
    path: '/v1/shipments/:id', item: 'Shipment', summary: 'One shipment', list: false, query: noQuery,
    run: async ({ pool }, viewer, params) => {
      const id = pathId(params);
      return present.presentShipment(found(await read.findShipment(pool, viewer, id), 'shipment', id));
    },
  },
  {
    path: '/v1/shipments/:id/serials', item: 'Serial', summary: "A shipment's serial manifest with each unit's custody", list: true, order: { by: bySerial, filtersThatChange: [] }, query: z.strictObject(pageQuery),
    run: async ({ pool }, viewer, params, query) => {
      const id = pathId(params);
      return listOf(found(await read.listShipmentSerials(pool, viewer, id, pageOf(query, 'string')), 'shipment', id), present.presentSerial);
    },
  },
  {
    path: '/v1/units', item: 'Unit', summary: 'Units the caller received or exported', list: true, order: { by: bySerial, filtersThatChange: ['siteId', 'custody'] },
    query: z.strictObject({ ...pageQuery, siteId: idSchema.optional(), custody: custody.optional() }),
    run: async ({ pool }, viewer, _params, query) => listOf(
      await read.listUnits(pool, viewer, pageOf(query, 'string'), {
        ...(query.siteId === undefined ? {} : { siteId: query.siteId as string }),
        ...(query.custody === undefined ? {} : { custody: query.custody as string }),
      }),
      present.presentUnit,
    ),
  },
  {
    path: '/v1/units/:id', item: 'Unit', summary: 'One unit by serial number', list: false, query: noQuery,
    run: async ({ pool }, viewer, params) => {
      const serial = pathId(params, serialSchema);
      const unit = await read.findUnit(pool, viewer, serial);
      // Named the capitals where the serial has a lower-case letter (core/serial.ts): new
      // serials are written in capitals; a unit an earlier release made in lower case is found.
      if (unit === null) throw new DomainError('not_found', unitNotFoundMessage(serial), { details: { unit: serial } });
      return present.presentUnit(unit);
    },
  },
  {
    path: '/v1/sites', item: 'Site', summary: "The caller's sites (all sites for authorities and auditors)", list: true, order: { by: byCreation, filtersThatChange: [] }, query: z.strictObject(pageQuery),
    run: async ({ pool }, viewer, _params, query) => listOf(await read.listSites(pool, viewer, pageOf(query, 'number')), present.presentSite),
  },
  {
    path: '/v1/sites/:id', item: 'Site', summary: 'One site', list: false, query: noQuery,
    run: async ({ pool }, viewer, params) => {
      const id = pathId(params);
      return present.presentSite(found(await read.findSite(pool, viewer, id), 'site', id));
    },
  },
  {
    path: '/v1/events', item: 'Event', summary: `Ledger events that name the caller, in log order (leaf index = seq); subjectId gives one record's history (e.g. S-12, SITE-41): the events whose subject it is and those that name it among the further records they are about (the sites units left, each shipment of an ending across several, the licence of an allocation created or resized; not the bookings, ships, cancels and expiries under a licence or allocation, which are their shipments' events), as far as the caller reads them; a page of a history reads at most ${limits.historySeqsScannedMax.toLocaleString('en')} of its events, so it may come short, or empty, with a nextCursor where the reading stopped: the history has ended only when nextCursor is null. Any page of events also ends early, with a nextCursor, once its events pass ${(limits.pageBytesMax / 1024 / 1024).toLocaleString('en')} MiB as stored (it always holds one). organisationIds lists every reader to authorities and auditors, and to any other caller its own id alone`, list: true, order: { by: 'in log order (seq, the leaf index)', filtersThatChange: [] },
    query: z.strictObject({ ...pageQuery, subjectId: idSchema.optional() }),
    run: async ({ pool, demo }, viewer, _params, query) => listOf(
      await read.listEvents(pool, viewer, pageOf(query, 'number'), query.subjectId === undefined ? {} : { subjectId: query.subjectId as string }),
      (row) => present.presentEvent(row, demo),
    ),
  },
  {
    path: '/v1/events/:seq', item: 'Event', summary: 'One ledger event by its seq (= leaf index), if it names the caller; organisationIds as in the list', list: false, query: noQuery,
    run: async ({ pool, demo }, viewer, params) => {
      const seq = seqInPath(params.seq!);
      const row = await read.findEvent(pool, viewer, seq);
      if (row === null) throw new DomainError('not_found', `event ${seq} was not found`, { details: { event: seq } });
      return present.presentEvent(row, demo);
    },
  },
  {
    path: '/v1/reports/utilisation', item: 'Utilisation', summary: `Per licence and allocation: units, allocated, reserved, shipped, available; a page embeds at most ${limits.utilisationPageAllocationsMax.toLocaleString('en')} allocations (a licence at most ${limits.embeddedRowsMax}, then allocationsTruncated) and ends early, with a cursor to the next licence, where one more licence would pass that`, list: true, order: { by: byCreation, filtersThatChange: [] }, query: z.strictObject(pageQuery),
    run: async ({ pool }, viewer, _params, query) => listOf(await read.utilisation(pool, viewer, pageOf(query, 'number')), present.presentUtilisation),
  },
];

export function registerQueryRoutes(app: FastifyInstance, context: QueryContext): void {
  for (const route of queryRoutes) {
    app.get(route.path, async (request: FastifyRequest) => {
      const viewer = viewerOf(request.actor!);
      const query = readQueryString(route.query, request.query) as Record<string, unknown>;
      const params = request.params as Record<string, string>;
      if (!route.list) return route.run(context, viewer, params, query);
      const list = listDigest(route.path, params, query);
      const answer = await route.run(context, viewer, params, { ...query, after: openCursor(query.cursor as string | undefined, list) }) as ListAnswer;
      return { items: answer.items, nextCursor: answer.nextAfter === null ? null : encodeCursor(answer.nextAfter, list) };
    });
  }
}

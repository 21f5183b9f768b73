/**
 * Pages of events and of a licence's versions end early once their rows pass a bound in
 * stored bytes (limits.pageBytesMax), with a cursor, so a page of long rows is never built
 * whole (500 versions or events with long texts made a page of 36-45 MB: session 18's paging
 * review). Walked page by page, every row still comes once, in order. The bound is lowered
 * for this file, so that a few amendments with long riders pass it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { worldPerFile, type World } from '../../test/world.ts';
import type { TestDatabase } from '../../test/database.ts';
import { limits } from '../core/limits.ts';
import { listEvents } from './event-queries.ts';
import type { Page, PageRequest } from './pages.ts';
import { listLicences, listLicenceVersions } from './read-queries.ts';
import type { Viewer } from './visibility.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, db) => {
  world = made;
  database = db;
});

/** As the code reads it; a runtime change of a limit, for this file only. */
const bound = limits as { pageBytesMax: number };
const boundAsShipped = bound.pageBytesMax;
const testBound = 64 * 1024;
const amendments = 12;
/** 20 riders of about 1,000 characters: an amendment's event, and each version after it, holds about 20 KB of them. */
const ridersOf = (round: number): string[] => Array.from({ length: 20 }, (_, index) => `rider ${round}.${index} ${'r'.repeat(1_000)}`);

beforeAll(async () => {
  bound.pageBytesMax = testBound;
  for (let round = 0; round < amendments; round += 1) {
    await world.run('licence.amend', { licenceId: world.exportLicenceId, reason: `calibration ${round}`, riders: ridersOf(round) }, world.actors.bis);
  }
  // Licences with long riders of their own, for the licence list.
  for (let made = 0; made < 6; made += 1) {
    await world.run('licence.create', {
      reference: `BIS-BYTES-${made}`, direction: 'export', holderId: world.actors.exporter.orgId, productIds: [world.productId], origin: 'US', destination: 'CN',
      authorisedUnits: 10, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z', riders: ridersOf(100 + made),
    }, world.actors.bis);
  }
});
afterAll(() => {
  bound.pageBytesMax = boundAsShipped;
});

/** Every page of a list, asked for at the largest page size; each page's rows and whether it was cut short. */
async function walk<T>(read: (page: PageRequest<number>) => Promise<Page<T, number> | null>): Promise<T[][]> {
  const pages: T[][] = [];
  let after: number | null = null;
  do {
    const page = await read({ after, limit: limits.pageSizeMax });
    if (page === null) throw new Error('the list is not visible');
    pages.push(page.rows);
    after = page.nextAfter;
  } while (after !== null && pages.length < 1_000);
  return pages;
}

const everything: Viewer = { orgId: null, allocations: 'related' };

describe('pages bounded by stored bytes', () => {
  it("a licence's history, the whole stream, the licences and a licence's versions come in pages under the bound, every row once and in order", async () => {
    const alpha: Viewer = { orgId: world.actors.alpha.orgId, allocations: 'received' };
    const lists = {
      history: () => walk((page) => listEvents(database.pool, everything, page, { subjectId: world.exportLicenceId })),
      'all events (authority)': () => walk((page) => listEvents(database.pool, everything, page)),
      "all events (a recipient's reader sets)": () => walk((page) => listEvents(database.pool, alpha, page)),
    };
    for (const [what, read] of Object.entries(lists)) {
      const pages = await read();
      const seqs = pages.flat().map((event) => event.seq);
      expect(seqs, what).toEqual([...new Set(seqs)].sort((a, b) => a - b));
      const amendedSeqs = pages.flat().filter((event) => event.kind === 'licence.amend').length;
      expect(amendedSeqs, what).toBe(amendments);
      // The bound cut pages that the row count would not have: more pages than rows / 500.
      expect(pages.length, `${what}: ${pages.map((p) => p.length).join(",")} bytes ${pages.flat().reduce((s, e) => s + e.canonical.length, 0)}`).toBeGreaterThan(1);
      for (const page of pages) {
        // Each page's rows before its last hold fewer stored bytes than the bound.
        const before = page.slice(0, -1).reduce((sum, event) => sum + event.canonical.length, 0);
        expect(before, what).toBeLessThan(testBound);
      }
    }
    const licences = await walk((page) => listLicences(database.pool, everything, page));
    expect(licences.flat().map((licence) => licence.created_seq)).toEqual([...new Set(licences.flat().map((licence) => licence.created_seq))].sort((a, b) => a - b));
    expect(licences.flat()).toHaveLength(8);
    expect(licences.length).toBeGreaterThan(1);
    const versions = await walk((page) => listLicenceVersions(database.pool, everything, world.exportLicenceId, page));
    expect(versions.flat().map((version) => version.version)).toEqual(Array.from({ length: amendments + 1 }, (_, index) => index + 1));
    expect(versions.length).toBeGreaterThan(1);
  });

  it('a page holds its first row however long, and the bound as shipped leaves short rows in pages of the asked size', async () => {
    bound.pageBytesMax = 1;
    try {
      const first = await listEvents(database.pool, everything, { after: null, limit: 5 });
      expect(first.rows).toHaveLength(1);
      expect(first.nextAfter).toBe(first.rows[0]!.seq);
    } finally {
      bound.pageBytesMax = testBound;
    }
    bound.pageBytesMax = boundAsShipped;
    try {
      const page = await listEvents(database.pool, everything, { after: null, limit: 5 });
      expect(page.rows).toHaveLength(5);
    } finally {
      bound.pageBytesMax = testBound;
    }
  });
});

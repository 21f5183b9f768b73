import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readerSetOffsetsMax, readerSetSpanMax, readerSetsOf, type ReaderSetRow } from './reader-sets.ts';

type Event = { seq: number; org_ids: string[] };

/** Every (organisation, seq) pair the rows stand for, in a canonical order. */
const pairsOf = (rows: ReaderSetRow[]): string[] => rows.flatMap((row) => row.offsets.map((offset) => `${row.org_id}@${row.first_seq + offset}`)).sort();
const pairsNamed = (events: Event[]): string[] => [...new Set(events.flatMap((event) => event.org_ids.map((orgId) => `${orgId}@${event.seq}`)))].sort();

/** What migration 012's CHECKs hold, and what the page query relies on (ascending offsets). */
function expectWellFormed(rows: ReaderSetRow[]): void {
  for (const row of rows) {
    expect(row.offsets[0]).toBe(0);
    expect(row.first_seq + row.offsets.at(-1)!).toBe(row.last_seq);
    expect(row.offsets.length).toBeLessThanOrEqual(readerSetOffsetsMax);
    expect(row.last_seq - row.first_seq).toBeLessThanOrEqual(readerSetSpanMax);
    for (let i = 1; i < row.offsets.length; i += 1) expect(row.offsets[i]!).toBeGreaterThan(row.offsets[i - 1]!);
  }
  const byOrg = new Map<string, ReaderSetRow[]>();
  for (const row of rows) byOrg.set(row.org_id, [...(byOrg.get(row.org_id) ?? []), row]);
  for (const own of byOrg.values()) {
    own.sort((a, b) => a.first_seq - b.first_seq);
    for (let i = 1; i < own.length; i += 1) expect(own[i]!.first_seq).toBeGreaterThan(own[i - 1]!.last_seq);
  }
}

const events = fc.array(fc.tuple(fc.integer({ min: 1, max: 40_000 }), fc.array(fc.constantFrom('ORG-1', 'ORG-2', 'ORG-3'), { maxLength: 4 })), { maxLength: 300 })
  .map((steps) => {
    let seq = -1;
    return steps.map(([gap, orgIds]) => ({ seq: (seq += gap), org_ids: orgIds }));
  });

describe('reader sets', () => {
  it('stand for exactly the readers each event names, once each, in well-formed rows that never overlap', () => {
    fc.assert(fc.property(events, (batch) => {
      const rows = readerSetsOf(batch);
      expect(pairsOf(rows)).toEqual(pairsNamed(batch));
      expectWellFormed(rows);
    }), { numRuns: 300 });
  });

  it('write one row per organisation for a batch within the bounds', () => {
    const batch = Array.from({ length: 2_048 }, (_, index) => ({ seq: 5_000 + index, org_ids: index % 2 === 0 ? ['ORG-A', 'ORG-B'] : ['ORG-A'] }));
    const rows = readerSetsOf(batch);
    expect(rows.map((row) => [row.org_id, row.first_seq, row.last_seq, row.offsets.length])).toEqual([['ORG-A', 5_000, 7_047, 2_048], ['ORG-B', 5_000, 7_046, 1_024]]);
  });

  it('start a new row at the 2,049th offset and past the int2 span', () => {
    const many = readerSetsOf(Array.from({ length: 2_049 }, (_, index) => ({ seq: index, org_ids: ['ORG-A'] })));
    expect(many.map((row) => [row.first_seq, row.last_seq, row.offsets.length])).toEqual([[0, 2_047, 2_048], [2_048, 2_048, 1]]);
    const far = readerSetsOf([{ seq: 10, org_ids: ['ORG-A'] }, { seq: 10 + readerSetSpanMax, org_ids: ['ORG-A'] }, { seq: 11 + readerSetSpanMax, org_ids: ['ORG-A'] }]);
    expect(far.map((row) => [row.first_seq, row.last_seq, row.offsets])).toEqual([[10, 10 + readerSetSpanMax, [0, readerSetSpanMax]], [11 + readerSetSpanMax, 11 + readerSetSpanMax, [0]]]);
  });

  it('refuse events out of seq order: a programming error', () => {
    expect(() => readerSetsOf([{ seq: 4, org_ids: ['ORG-A'] }, { seq: 4, org_ids: ['ORG-B'] }])).toThrow(/ascending seq order; 4 came after 4/);
  });
});

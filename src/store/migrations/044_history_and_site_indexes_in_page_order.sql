-- A record's history and a site's units are read by indexes in the order their pages are
-- (s17 scale review, findings 1 and 2).
--
-- 1. events_subject becomes (subject_id, seq). On (subject_id) alone, a page of one record's
--    history (GET /v1/events?subjectId=, store/event-queries.ts eventsOfSubject) fetched every
--    event of the record, sorted them and dropped the repeats before it could stop at the
--    page's end, and seq > cursor could not narrow the index read: every page read the whole
--    history again (8,240 events: 17-24 ms a page for a reader of all of them). In seq order,
--    with the seq in the index, it merges two index-only reads (this one and event_subjects'
--    primary key, 038) from the cursor on and stops at the page: 3-10 ms, however deep.
--    The name stays, as the benchmarks and a test know it (bench/experiments/event-parts.ts
--    drops and remakes it, event-subjects.test.ts looks for it in the plan).
--    Cost: one sort of the events' (subject_id, seq), while CREATE INDEX holds a SHARE lock on
--    events, so the ledger's batches wait for it: 1.2 s at 934,000 events (444 MB, cached,
--    two busy cores; the index is 35 MB), so about 1.5 s at a million, and a few seconds from
--    a cold disk.
CREATE INDEX events_subject_seq ON events (subject_id, seq);
DROP INDEX events_subject;
ALTER INDEX events_subject_seq RENAME TO events_subject;

-- 2. units_site becomes (site_id, serial) over the deployed units. A page of a site's units
--    (GET /v1/units?siteId=, store/read-queries.ts listUnits) is in serial order: on
--    (site_id) alone PostgreSQL walked all units in serial order, or the tenant's, testing the
--    site of each, and read every one of them when the site held few. The other readers of
--    units.site_id still lead with it: ledger_violations' deployed counts (041, GROUP BY
--    site_id) and its invariant-4 part (a join to sites on it). The ledger loads units by
--    serial. Cost: 0.4 s at 224,000 units, 112,000 of them deployed (the index is 4.5 MB),
--    with units locked against writes as above. No index on custody is added: each would be
--    written for every unit a manifest inserts and at every custody change (listUnits says why).
CREATE INDEX units_site_serial ON units (site_id, serial) WHERE site_id IS NOT NULL;
DROP INDEX units_site;
ALTER INDEX units_site_serial RENAME TO units_site;

-- Units in an end state (lost, decommissioned, returned) in serial order, for the pages that
-- look for them ("every lost unit"). Without it such a page walked every unit it may see,
-- testing each: 48–53 ms for 40 lost units among 400,000, against 0.7–1.0 ms with it
-- (bench/experiments/tenant-pages.ts). Partial, so manifests add no entries: a unit enters
-- it once, at the end of its life. Custody is now an indexed column, so a custody change
-- cannot be a heap-only update; none was: units are written full by COPY, and
-- pg_stat_user_tables counted 0 HOT updates among 300,000 custody changes (three 100,000-unit
-- shipments shipped) with or without this index, at the same 1.2–1.6 s a shipment.
CREATE INDEX units_end_states ON units (custody, serial) WHERE custody IN ('lost', 'decommissioned', 'returned');

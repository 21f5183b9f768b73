-- Who may read which event, as one row per organisation and batch instead of one per event
-- and organisation. A row names a run of seqs (first_seq..last_seq) and, as offsets from
-- first_seq in ascending order, the events of the run the organisation may read. Rows of one
-- organisation never overlap, so its rows in last_seq order list its events in seq order,
-- which is how a tenant's page of events is found (store/read-queries.ts, listEvents).
--
-- Why: a row per event and reader cost PostgreSQL about a fifth of what storing a 2,048-event
-- batch costs (bench/experiments/event-parts.ts); a row per batch costs almost nothing more
-- than the events alone. Offsets are int2 and a row holds at most 2,048 of them (about
-- 4 KiB), so storage is PLAIN: never compressed or moved out of line, which a batch's write
-- would otherwise pay for. The writer (store/reader-sets.ts) starts a new row when either
-- bound would be passed.
--
-- events.org_ids stays the per-event record of readers that these rows index; a test pages
-- every tenant against it.
CREATE TABLE event_reader_sets (
  org_id     text   NOT NULL,
  first_seq  bigint NOT NULL CHECK (first_seq >= 0),
  last_seq   bigint NOT NULL,
  offsets    int2[] NOT NULL,
  PRIMARY KEY (org_id, last_seq),
  CHECK (last_seq - first_seq BETWEEN 0 AND 32767),
  CHECK (array_ndims(offsets) = 1 AND cardinality(offsets) BETWEEN 1 AND 2048),
  -- The run starts and ends with an event the organisation reads.
  CHECK (offsets[1] = 0 AND offsets[cardinality(offsets)] = last_seq - first_seq)
);
ALTER TABLE event_reader_sets ALTER COLUMN offsets SET STORAGE PLAIN;

-- The rows so far, in runs of at most 2,048 seqs (so at most 2,048 offsets, all below 32,768).
INSERT INTO event_reader_sets (org_id, first_seq, last_seq, offsets)
SELECT org_id, first_seq, last_seq, (SELECT array_agg((s - first_seq)::int2 ORDER BY s) FROM unnest(seqs) AS s)
FROM (
  SELECT org_id, min(seq) AS first_seq, max(seq) AS last_seq, array_agg(seq) AS seqs
  FROM event_readers GROUP BY org_id, seq / 2048
) runs;

DROP TABLE event_readers;

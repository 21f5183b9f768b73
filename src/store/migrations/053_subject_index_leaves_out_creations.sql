-- A record's history finds the event that made it by its seq, not by the subject index (s23).
--
-- events_subject (044: subject_id, seq) was the costliest part of writing an event: a
-- 2,048-event batch by COPY with COMMIT, its readers left out, took 14.9 ms with it and 10.5 ms
-- without it (bench/experiments/event-parts.ts, p50 of 200, 2-core host). Keys like
-- SHP-190464 do not sort in seq order (SHP-99999 sorts after it), so every event's entry is a
-- descent of the B-tree, never PostgreSQL's fast path at the right edge.
--
-- Most events make the record they are about: a booking makes its shipment, and so on for the
-- seven kinds 045 compares with their rows. Such a record's id carries the seq of that event
-- (ledger/handler.ts newId: PREFIX-<seq>), so its history can find that event by the primary
-- key (store/event-queries.ts eventsOfSubject), and the subject index now holds only the
-- events that come after. A batch of bookings with its readers, each way in turn: 19.0 ms
-- against 24.0 ms with the index over every event, of which the check below 1.3 ms (12.3
-- against 15.9 ms in an earlier, quieter run, the check written with split_part).
--
-- 1. The check: an event of a kind that makes a record names a subject that ends in '-' and
--    the event's seq, so the history's look-up by seq cannot miss it. The ledger has always
--    written them so; an event written otherwise is refused (23514). The seq's test goes
--    first: an event that makes a record passes on it without the kind list, and the others
--    all but never end in their own seq. A null subject passes (nothing to look up). Written
--    with right() and length(), which every supported PostgreSQL has: split_part with a
--    field counted from the end (0.45 ms a batch cheaper) needs PostgreSQL 14, and the ledger
--    runs on 13 (store/migrate.ts). ADD CONSTRAINT reads every event once, with events
--    locked against reads and writes: 0.66 s at a million, two in three of them bookings
--    (bench/experiments/subject-index-migration.ts, 2-core host).
-- 2. The index holds the other events only. Its predicate is the same list as the check's and
--    as the history query's (EXPLAIN in event-queries-bound.test.ts; constraints-053.test.ts
--    compares the lists). A kind added later that makes a record is indexed as any other
--    until it is added to all three: its history is then still whole. One sort of the events
--    that stay, with events locked against writes: 0.37-0.45 s at the same million (13 MB).
ALTER TABLE events ADD CONSTRAINT events_creation_subject_carries_seq
  CHECK (right(subject_id, length(seq::text) + 1) = '-' || seq::text
         OR kind NOT IN ('organisation.register', 'product.register', 'licence.create', 'allocation.create', 'shipment.book', 'site.register', 'token.create'));

CREATE INDEX events_subject_later ON events (subject_id, seq)
  WHERE kind NOT IN ('organisation.register', 'product.register', 'licence.create', 'allocation.create', 'shipment.book', 'site.register', 'token.create');
DROP INDEX events_subject;
ALTER INDEX events_subject_later RENAME TO events_subject;

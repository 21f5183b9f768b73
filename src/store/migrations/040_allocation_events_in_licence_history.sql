-- An allocation's events are in its licence's history too (s17 review of events as the public
-- record, finding 1).
--
-- allocation.create and allocation.resize change the licence's allocatedUnits and set its
-- updated_seq, but their subject is the allocation, so GET /v1/events?subjectId=L-… did not
-- list them. The ledger now names the licence as a further subject of both (ledger/handlers/
-- allocations.ts, moreSubjectIds: event_subjects rows, 038). They are rare, so the rows cost
-- nothing on the write path. Shipment events stay as they are (ledger/handler.ts
-- EventPart.moreSubjectIds says why): a licence's history does not list the bookings and
-- ships under it, and its updated_seq may name a ship that the history does not list.
--
-- The events written before this migration, as the ledger writes them now: for each, the
-- licence of the allocation that is its subject. A resize does not name its licence (its input
-- is the allocation and its units), but an allocation keeps its licence for good (028,
-- allocations_keep_licence), and no allocation row is ever deleted, so the allocations row
-- names it for either kind; for a creation it is the licence the input names. The licence is
-- never the event's subject (that is the allocation), so no history lists an event twice.
-- Running it again, or on rows the ledger already wrote, adds nothing (ON CONFLICT: 038's
-- trigger refuses an update or a delete, not an insert that does nothing).
INSERT INTO event_subjects (subject_id, seq)
SELECT a.licence_id, e.seq
FROM events e
JOIN allocations a ON a.id = e.subject_id
WHERE e.kind IN ('allocation.create', 'allocation.resize')
ON CONFLICT (subject_id, seq) DO NOTHING;

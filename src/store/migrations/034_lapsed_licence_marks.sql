-- The sweep's look-up of bookings under a licence no longer in force, without reading the
-- ledger's history each tick (s13 review 2, defect 2). The sweep runs every few seconds under
-- the head lock, so every writer waits for it. Until now it found such bookings through every
-- allocation holding a reservation (a join that read all of them: 54–69 ms a tick at 200,000
-- allocations, with nothing due). bench/experiments/sweep-due.ts has the numbers before and
-- after.
--
-- 1. Which licences lapsed with bookings possibly still under them. A licence leaves force
--    only by a status change the ledger writes (revoke, surrender, or the sweep's expiry of
--    one past its validity; an exhausted licence holds no reservation), and no step leaves
--    revoked, surrendered or expired (025), so nothing books under it again. The change
--    itself marks the licence, in the same statement. The sweep (store/ledger-tables.ts
--    loadDue) looks for lapsed bookings under the marked licences only, and deletes a mark
--    once no allocation of its licence reserves anything (every booked shipment reserves on
--    both its allocations; the allocations_sum triggers hold it). Every lapse is marked,
--    reservations or not: a batch writes licences before allocations, so a booking made
--    earlier in the batch that revokes its licence is not in allocations yet when the
--    licence's row is written. A mark without bookings lives until the next sweep.
--    A licence past its validity but not yet expired by the sweep needs no mark: the sweep
--    finds it by its validity (2.), and its bookings in the same batch.
--    Crash note: the mark is written by the licence's own UPDATE, so it commits with it or
--    not at all.
CREATE TABLE licence_lapses (
  licence_id  text PRIMARY KEY REFERENCES licences(id)
);

CREATE FUNCTION licences_mark_lapse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO licence_lapses (licence_id) VALUES (NEW.id) ON CONFLICT (licence_id) DO NOTHING;
  RETURN NULL;
END;
$$;
-- A status change only (a licence's row is rewritten whole; most writes leave its status).
CREATE TRIGGER licences_mark_lapse AFTER UPDATE OF status ON licences FOR EACH ROW
  WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('expired', 'revoked', 'surrendered'))
  EXECUTE FUNCTION licences_mark_lapse();

-- The licences that lapsed before this migration, with bookings still under them.
INSERT INTO licence_lapses (licence_id)
SELECT l.id FROM licences l
WHERE l.status IN ('expired', 'revoked', 'surrendered')
  AND EXISTS (SELECT 1 FROM allocations a WHERE a.licence_id = l.id AND a.reserved_units > 0);

--    The bookings of a lapsed licence's reserving allocations are then read from the booked
--    shipments (shipments_due): all live bookings, not the ledger's history, once per lapse.
--    Indexes of booked shipments by allocation would make that a look-up, but every booking
--    would pay their two inserts: about 9 µs of PostgreSQL's work a booking, +11% (64-row
--    upserts, alternating, and three alternating pairs of the ledger benchmark), on the path
--    whose throughput is short of its goal, for a scan paid once when a licence lapses.

-- 2. Licences the sweep may expire, by the end of their validity: the ones in force or
--    exhausted. Before, the sweep read every licence each tick. Shipping's updates of a
--    licence (shipped_units) leave both the column and the predicate's status, so they stay
--    heap-only; only a status change adds an entry.
CREATE INDEX licences_expirable_valid_to ON licences (valid_to) WHERE status IN ('issued', 'suspended', 'exhausted');

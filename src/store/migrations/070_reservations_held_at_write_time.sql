-- Invariant 2's second half in the database at write time: a shipment reserves on every
-- covering licence or on none (s33 README review). 001's CHECK bounds each allocation's
-- counters (reserved + shipped <= units), but nothing tied them to the shipments: the writer
-- could take a booked shipment's reservation off its export allocation while the import side
-- kept it, add a reservation no shipment made, or cancel a shipment by UPDATE and leave its
-- units reserved. Nor was a licence's shipped_units tied to its allocations'. Only
-- `chipledger check` found these (invariant-2), after the fact.
--
-- Why by changes, not by sums: tying the counters to the shipments by summing each touched
-- allocation's shipments costs O(shipments of the allocation) at every booking, and one
-- allocation may hold tens of thousands of them (028, part 7, says so and left it to the
-- re-check); summing a licence's allocations for each allocation a batch ships on grows with
-- their product (4,000 allocations of one licence: 2.7 s at COMMIT, s33 review). What must
-- hold at COMMIT is that each transaction changed every counter by exactly what it changed
-- what the counter counts: the states before and after then agree whenever the state before
-- did, which the re-check holds. So:
-- - a statement on shipments adds up, per allocation, how its rows changed the units booked
--   (status booked) and shipped (shipped, cleared, delivered) on both sides, from its
--   transition tables; a statement on allocations adds up how reserved_units and
--   shipped_units changed, and, per licence, how its allocations' shipped_units changed; a
--   statement on licences adds up how shipped_units changed. They go into
--   reservation_changes and licence_shipped_changes, one row per transaction and allocation
--   or licence, added to by later statements of the transaction;
-- - a constraint trigger deferred to COMMIT, queued once a transaction (a row of
--   reservation_checks), takes the transaction's rows away and refuses it unless, for every
--   allocation and licence, the two sides' changes are the same.
--
-- The writer cannot write these three tables (writer-role.ts leaves them read-only), so it
-- cannot cancel a change it made: the functions that write them run as the tables' owner
-- (SECURITY DEFINER). They resolve names by the caller's search_path, as every function of
-- this schema does (the tables need not be in public: a DATABASE_URL owner's own schema is
-- common), which is safe here because the writer can create nothing anywhere (writer-role.ts
-- writerRoleProblem refuses one that can): a search_path it sets can only make these
-- functions fail, and so refuse its transaction. Whoever holds the owner's credentials can
-- still switch all of this off (README, "What this does not stop").
CREATE TABLE reservation_changes (
  txid                xid8   NOT NULL,
  allocation_id       text   NOT NULL,
  -- Units booked and shipped on the allocation by its shipments' changes in the transaction.
  shipments_reserved  bigint NOT NULL DEFAULT 0,
  shipments_shipped   bigint NOT NULL DEFAULT 0,
  -- The changes of the allocation's own counters in the transaction.
  counted_reserved    bigint NOT NULL DEFAULT 0,
  counted_shipped     bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (txid, allocation_id)
);
CREATE TABLE licence_shipped_changes (
  txid                 xid8   NOT NULL,
  licence_id           text   NOT NULL,
  -- The change of the licence's allocations' shipped units, and of its own count of them.
  allocations_shipped  bigint NOT NULL DEFAULT 0,
  counted_shipped      bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (txid, licence_id)
);
-- One row per transaction with changes noted: its insert queues the check at COMMIT, once
-- for the transaction (a deferred trigger a noted row costs a call and a DELETE for each
-- allocation a batch touches: 7,502 over 30,000 bookings, against 469 this way).
CREATE TABLE reservation_checks (
  txid xid8 PRIMARY KEY
);

CREATE FUNCTION reservations_check_queued() RETURNS void LANGUAGE sql AS $$
  INSERT INTO reservation_checks (txid) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING
$$;

-- What a set of shipment rows books and ships on each allocation: each row on both its sides,
-- the new rows counted in and the old ones out (an INSERT passes no old rows).
CREATE FUNCTION reservations_note_shipments() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO reservation_changes AS c (txid, allocation_id, shipments_reserved, shipments_shipped)
    SELECT pg_current_xact_id(), side.allocation_id,
           sum(CASE WHEN side.status = 'booked' THEN side.units ELSE 0 END),
           sum(CASE WHEN side.status IN ('shipped', 'cleared', 'delivered') THEN side.units ELSE 0 END)
    FROM (
      SELECT n.export_allocation_id AS allocation_id, n.status, n.units FROM new_shipments n
      UNION ALL SELECT n.import_allocation_id, n.status, n.units FROM new_shipments n
    ) side
    GROUP BY side.allocation_id
    HAVING sum(CASE WHEN side.status IN ('booked', 'shipped', 'cleared', 'delivered') THEN side.units ELSE 0 END) <> 0
    ON CONFLICT (txid, allocation_id) DO UPDATE
      SET shipments_reserved = c.shipments_reserved + EXCLUDED.shipments_reserved, shipments_shipped = c.shipments_shipped + EXCLUDED.shipments_shipped;
  ELSE
    INSERT INTO reservation_changes AS c (txid, allocation_id, shipments_reserved, shipments_shipped)
    SELECT pg_current_xact_id(), side.allocation_id,
           sum(side.sign * CASE WHEN side.status = 'booked' THEN side.units ELSE 0 END),
           sum(side.sign * CASE WHEN side.status IN ('shipped', 'cleared', 'delivered') THEN side.units ELSE 0 END)
    FROM (
      SELECT n.export_allocation_id AS allocation_id, n.status, n.units, 1 AS sign FROM new_shipments n
      UNION ALL SELECT n.import_allocation_id, n.status, n.units, 1 FROM new_shipments n
      UNION ALL SELECT o.export_allocation_id, o.status, o.units, -1 FROM old_shipments o
      UNION ALL SELECT o.import_allocation_id, o.status, o.units, -1 FROM old_shipments o
    ) side
    GROUP BY side.allocation_id
    HAVING sum(side.sign * CASE WHEN side.status = 'booked' THEN side.units ELSE 0 END) <> 0
        OR sum(side.sign * CASE WHEN side.status IN ('shipped', 'cleared', 'delivered') THEN side.units ELSE 0 END) <> 0
    ON CONFLICT (txid, allocation_id) DO UPDATE
      SET shipments_reserved = c.shipments_reserved + EXCLUDED.shipments_reserved, shipments_shipped = c.shipments_shipped + EXCLUDED.shipments_shipped;
  END IF;
  IF FOUND THEN PERFORM reservations_check_queued(); END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER shipments_note_reservations_insert AFTER INSERT ON shipments
  REFERENCING NEW TABLE AS new_shipments FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_shipments();
CREATE TRIGGER shipments_note_reservations_update AFTER UPDATE ON shipments
  REFERENCING OLD TABLE AS old_shipments NEW TABLE AS new_shipments FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_shipments();

-- How a set of allocation rows changed their counters (per allocation), and their shipped
-- units (per licence); an INSERT passes no old rows (an allocation made with units reserved
-- or shipped is a change from nothing).
CREATE FUNCTION reservations_note_allocations() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE noted boolean := false;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO reservation_changes AS c (txid, allocation_id, counted_reserved, counted_shipped)
    SELECT pg_current_xact_id(), n.id, n.reserved_units, n.shipped_units FROM new_allocations n
    WHERE n.reserved_units <> 0 OR n.shipped_units <> 0
    ON CONFLICT (txid, allocation_id) DO UPDATE
      SET counted_reserved = c.counted_reserved + EXCLUDED.counted_reserved, counted_shipped = c.counted_shipped + EXCLUDED.counted_shipped;
    noted := FOUND;
    INSERT INTO licence_shipped_changes AS c (txid, licence_id, allocations_shipped)
    SELECT pg_current_xact_id(), n.licence_id, sum(n.shipped_units) FROM new_allocations n
    GROUP BY n.licence_id HAVING sum(n.shipped_units) <> 0
    ON CONFLICT (txid, licence_id) DO UPDATE SET allocations_shipped = c.allocations_shipped + EXCLUDED.allocations_shipped;
  ELSE
    INSERT INTO reservation_changes AS c (txid, allocation_id, counted_reserved, counted_shipped)
    SELECT pg_current_xact_id(), d.id, sum(d.reserved), sum(d.shipped)
    FROM (
      SELECT n.id, n.reserved_units::bigint AS reserved, n.shipped_units::bigint AS shipped FROM new_allocations n
      UNION ALL SELECT o.id, -o.reserved_units::bigint, -o.shipped_units::bigint FROM old_allocations o
    ) d
    GROUP BY d.id
    HAVING sum(d.reserved) <> 0 OR sum(d.shipped) <> 0
    ON CONFLICT (txid, allocation_id) DO UPDATE
      SET counted_reserved = c.counted_reserved + EXCLUDED.counted_reserved, counted_shipped = c.counted_shipped + EXCLUDED.counted_shipped;
    noted := FOUND;
    -- An allocation keeps its licence (migration 066), so old and new rows name the same one.
    INSERT INTO licence_shipped_changes AS c (txid, licence_id, allocations_shipped)
    SELECT pg_current_xact_id(), d.licence_id, sum(d.shipped)
    FROM (
      SELECT n.licence_id, n.shipped_units::bigint AS shipped FROM new_allocations n
      UNION ALL SELECT o.licence_id, -o.shipped_units::bigint FROM old_allocations o
    ) d
    GROUP BY d.licence_id HAVING sum(d.shipped) <> 0
    ON CONFLICT (txid, licence_id) DO UPDATE SET allocations_shipped = c.allocations_shipped + EXCLUDED.allocations_shipped;
  END IF;
  IF noted OR FOUND THEN PERFORM reservations_check_queued(); END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER allocations_note_reservations_insert AFTER INSERT ON allocations
  REFERENCING NEW TABLE AS new_allocations FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_allocations();
CREATE TRIGGER allocations_note_reservations_update AFTER UPDATE ON allocations
  REFERENCING OLD TABLE AS old_allocations NEW TABLE AS new_allocations FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_allocations();

-- How a set of licence rows changed their shipped units (a licence made with some is a change from nothing).
CREATE FUNCTION reservations_note_licences() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO licence_shipped_changes AS c (txid, licence_id, counted_shipped)
    SELECT pg_current_xact_id(), n.id, n.shipped_units FROM new_licences n WHERE n.shipped_units <> 0
    ON CONFLICT (txid, licence_id) DO UPDATE SET counted_shipped = c.counted_shipped + EXCLUDED.counted_shipped;
  ELSE
    INSERT INTO licence_shipped_changes AS c (txid, licence_id, counted_shipped)
    SELECT pg_current_xact_id(), d.id, sum(d.shipped)
    FROM (
      SELECT n.id, n.shipped_units::bigint AS shipped FROM new_licences n
      UNION ALL SELECT o.id, -o.shipped_units::bigint FROM old_licences o
    ) d
    GROUP BY d.id HAVING sum(d.shipped) <> 0
    ON CONFLICT (txid, licence_id) DO UPDATE SET counted_shipped = c.counted_shipped + EXCLUDED.counted_shipped;
  END IF;
  IF FOUND THEN PERFORM reservations_check_queued(); END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER licences_note_shipped_insert AFTER INSERT ON licences
  REFERENCING NEW TABLE AS new_licences FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_licences();
CREATE TRIGGER licences_note_shipped_update AFTER UPDATE ON licences
  REFERENCING OLD TABLE AS old_licences NEW TABLE AS new_licences FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_licences();

-- At COMMIT, once per transaction: its changes are taken away (a later statement of the
-- transaction notes new ones, and queues this check again), and each allocation's and each
-- licence's two sides must agree. The first that does not, by id, is named.
CREATE FUNCTION reservations_check() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  allocation reservation_changes%ROWTYPE;
  licence licence_shipped_changes%ROWTYPE;
BEGIN
  DELETE FROM reservation_checks WHERE txid = NEW.txid;
  WITH taken AS (DELETE FROM reservation_changes WHERE txid = NEW.txid RETURNING *)
  SELECT * INTO allocation FROM taken
  WHERE shipments_reserved <> counted_reserved OR shipments_shipped <> counted_shipped
  ORDER BY allocation_id COLLATE "C" LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invariant 2: allocation %''s shipments changed its units reserved by % and shipped by %, but its counters changed by % and % (a shipment reserves on every covering licence or on none)',
      allocation.allocation_id, allocation.shipments_reserved, allocation.shipments_shipped, allocation.counted_reserved, allocation.counted_shipped
      USING ERRCODE = 'check_violation', CONSTRAINT = 'reservations_check';
  END IF;
  WITH taken AS (DELETE FROM licence_shipped_changes WHERE txid = NEW.txid RETURNING *)
  SELECT * INTO licence FROM taken WHERE allocations_shipped <> counted_shipped
  ORDER BY licence_id COLLATE "C" LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invariant 2: licence %''s allocations changed their units shipped by %, but the licence''s count changed by %',
      licence.licence_id, licence.allocations_shipped, licence.counted_shipped
      USING ERRCODE = 'check_violation', CONSTRAINT = 'reservations_check';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER reservations_check AFTER INSERT ON reservation_checks
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reservations_check();

-- Invariant 2's second half in the database at write time: a shipment reserves on every
-- covering licence or on none (s33 README review). 001's CHECK bounds each allocation's
-- counters (reserved + shipped <= units), but nothing tied them to the shipments: the writer
-- could take a booked shipment's reservation off its export allocation while the import side
-- kept it, add a reservation no shipment made, or cancel a shipment by UPDATE and leave its
-- units reserved. Only `chipledger check` found these (invariant-2), after the fact.
--
-- Why by changes, not by sums: tying the counters to the shipments by summing each touched
-- allocation's shipments costs O(shipments of the allocation) at every booking, and one
-- allocation may hold tens of thousands of them (028, part 7, says so and left it to the
-- re-check). What must hold at COMMIT is that each transaction changed every allocation's
-- counters by exactly what it changed that allocation's shipments by: the states before and
-- after then agree whenever the state before did, which the re-check holds. So:
-- - a statement on shipments adds up, per allocation, how its rows changed the units booked
--   (status booked) and shipped (shipped, cleared, delivered) on both sides, from its
--   transition tables; a statement on allocations adds up how reserved_units and
--   shipped_units changed. Both go into reservation_changes, one row per transaction and
--   allocation, added to by later statements of the transaction;
-- - a constraint trigger deferred to COMMIT, queued once a transaction (reservation_checks),
--   takes its rows away and refuses the transaction unless, for every allocation, the
--   shipments' changes and the counters' are the same.
-- A batch that books 2,048 shipments adds two aggregates over its transition tables and a
-- row per allocation it touches (bench/ledger.ts measures it).
--
-- The writer cannot write reservation_changes or reservation_checks (writer-role.ts leaves them read-only), so it
-- cannot cancel a change it made: the functions that write it run as the tables' owner
-- (SECURITY DEFINER), with a search_path of their own so that no caller's setting can point
-- them elsewhere. Whoever holds the owner's credentials can still switch all of this off
-- (README, "What this does not stop").
--
-- With it, licences.shipped_units is held to its allocations' as 023 holds allocated_units
-- (deferred to COMMIT, a sum over one licence's allocations): shipping moved them in step in
-- code only.
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
-- One row per transaction with changes noted: its insert queues the check at COMMIT, once for
-- the transaction (a check per allocation, a constraint trigger a row, cost a trigger call and
-- a DELETE for each allocation a batch touched).
CREATE TABLE reservation_checks (
  txid xid8 PRIMARY KEY
);

-- What a set of shipment rows books and ships on each allocation: each row on both its sides.
CREATE FUNCTION reservations_note_shipments() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO reservation_changes AS c (txid, allocation_id, shipments_reserved, shipments_shipped)
  SELECT pg_current_xact_id(), d.allocation_id, sum(d.reserved), sum(d.shipped)
  FROM (
    SELECT side.allocation_id, side.sign * CASE WHEN side.status = 'booked' THEN side.units ELSE 0 END AS reserved,
           side.sign * CASE WHEN side.status IN ('shipped', 'cleared', 'delivered') THEN side.units ELSE 0 END AS shipped
    FROM (
      SELECT n.export_allocation_id AS allocation_id, n.status, n.units, 1 AS sign FROM new_shipments n
      UNION ALL SELECT n.import_allocation_id, n.status, n.units, 1 FROM new_shipments n
      UNION ALL SELECT o.export_allocation_id, o.status, o.units, -1 FROM old_shipments o
      UNION ALL SELECT o.import_allocation_id, o.status, o.units, -1 FROM old_shipments o
    ) side
  ) d
  GROUP BY d.allocation_id
  HAVING sum(d.reserved) <> 0 OR sum(d.shipped) <> 0
  ON CONFLICT (txid, allocation_id) DO UPDATE
    SET shipments_reserved = c.shipments_reserved + EXCLUDED.shipments_reserved, shipments_shipped = c.shipments_shipped + EXCLUDED.shipments_shipped;
  IF FOUND THEN
    INSERT INTO reservation_checks (txid) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;

-- An INSERT has no old rows: its trigger passes an empty set for them.
CREATE FUNCTION reservations_note_new_shipments() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO reservation_changes AS c (txid, allocation_id, shipments_reserved, shipments_shipped)
  SELECT pg_current_xact_id(), d.allocation_id, sum(d.reserved), sum(d.shipped)
  FROM (
    SELECT side.allocation_id, CASE WHEN side.status = 'booked' THEN side.units ELSE 0 END AS reserved,
           CASE WHEN side.status IN ('shipped', 'cleared', 'delivered') THEN side.units ELSE 0 END AS shipped
    FROM (
      SELECT n.export_allocation_id AS allocation_id, n.status, n.units FROM new_shipments n
      UNION ALL SELECT n.import_allocation_id, n.status, n.units FROM new_shipments n
    ) side
  ) d
  GROUP BY d.allocation_id
  HAVING sum(d.reserved) <> 0 OR sum(d.shipped) <> 0
  ON CONFLICT (txid, allocation_id) DO UPDATE
    SET shipments_reserved = c.shipments_reserved + EXCLUDED.shipments_reserved, shipments_shipped = c.shipments_shipped + EXCLUDED.shipments_shipped;
  IF FOUND THEN
    INSERT INTO reservation_checks (txid) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER shipments_note_reservations_insert AFTER INSERT ON shipments
  REFERENCING NEW TABLE AS new_shipments FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_new_shipments();
CREATE TRIGGER shipments_note_reservations_update AFTER UPDATE ON shipments
  REFERENCING OLD TABLE AS old_shipments NEW TABLE AS new_shipments FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_shipments();

-- How a set of allocation rows changed their counters (an allocation is made with both at 0).
CREATE FUNCTION reservations_note_allocations() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
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
  IF FOUND THEN
    INSERT INTO reservation_checks (txid) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION reservations_note_new_allocations() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO reservation_changes AS c (txid, allocation_id, counted_reserved, counted_shipped)
  SELECT pg_current_xact_id(), n.id, n.reserved_units, n.shipped_units FROM new_allocations n
  WHERE n.reserved_units <> 0 OR n.shipped_units <> 0
  ON CONFLICT (txid, allocation_id) DO UPDATE
    SET counted_reserved = c.counted_reserved + EXCLUDED.counted_reserved, counted_shipped = c.counted_shipped + EXCLUDED.counted_shipped;
  IF FOUND THEN
    INSERT INTO reservation_checks (txid) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER allocations_note_reservations_insert AFTER INSERT ON allocations
  REFERENCING NEW TABLE AS new_allocations FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_new_allocations();
CREATE TRIGGER allocations_note_reservations_update AFTER UPDATE ON allocations
  REFERENCING OLD TABLE AS old_allocations NEW TABLE AS new_allocations FOR EACH STATEMENT EXECUTE FUNCTION reservations_note_allocations();

-- At COMMIT, once per transaction: its changes are taken away (a later statement of the
-- transaction notes new ones, and queues this check again), and each allocation's must agree.
CREATE FUNCTION reservations_check() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE changed reservation_changes%ROWTYPE;
BEGIN
  DELETE FROM reservation_checks WHERE txid = NEW.txid;
  WITH taken AS (DELETE FROM reservation_changes WHERE txid = NEW.txid RETURNING *)
  SELECT * INTO changed FROM taken
  WHERE shipments_reserved <> counted_reserved OR shipments_shipped <> counted_shipped
  ORDER BY allocation_id COLLATE "C" LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invariant 2: allocation %''s shipments changed its units reserved by % and shipped by %, but its counters changed by % and % (a shipment reserves on every covering licence or on none)',
      changed.allocation_id, changed.shipments_reserved, changed.shipments_shipped, changed.counted_reserved, changed.counted_shipped
      USING ERRCODE = 'check_violation', CONSTRAINT = 'reservations_check';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER reservations_check AFTER INSERT ON reservation_checks
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reservations_check();

-- A licence's shipped units are its allocations' (invariant 2's re-check, part one of 028's
-- clause on licences): checked at COMMIT for each licence or allocation whose count moved.
CREATE FUNCTION licences_check_shipped() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE checked_licence text; recorded bigint; total bigint;
BEGIN
  IF TG_TABLE_NAME = 'licences' THEN
    checked_licence := NEW.id;
  ELSE
    checked_licence := NEW.licence_id;
  END IF;
  -- The rows as they stand at COMMIT, not as this event saw them.
  SELECT l.shipped_units INTO recorded FROM licences l WHERE l.id = checked_licence;
  SELECT coalesce(sum(a.shipped_units), 0) INTO total FROM allocations a WHERE a.licence_id = checked_licence;
  IF recorded IS DISTINCT FROM total THEN
    RAISE EXCEPTION 'invariant 2: licence % records % units shipped, but its allocations shipped %', checked_licence, recorded, total
      USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_check_shipped';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER licences_check_shipped AFTER UPDATE ON licences
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.shipped_units IS DISTINCT FROM NEW.shipped_units)
  EXECUTE FUNCTION licences_check_shipped();
CREATE CONSTRAINT TRIGGER allocations_check_shipped AFTER UPDATE ON allocations
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.shipped_units IS DISTINCT FROM NEW.shipped_units)
  EXECUTE FUNCTION licences_check_shipped();
CREATE CONSTRAINT TRIGGER licences_check_shipped_insert AFTER INSERT ON licences
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.shipped_units <> 0)
  EXECUTE FUNCTION licences_check_shipped();

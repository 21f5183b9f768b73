-- New serials are written in capitals (s21 identity review, finding 5). A serial is compared
-- byte for byte: the units' key and invariant 4's index of live manifest rows
-- (shipment_serials_one_live) took ABC1654X01 and abc1654x01 for two units, live in two
-- shipments at once, and one manifest could list CASE01 and case01. The ledger now refuses a
-- lower-case letter in a serial that makes a unit or a manifest line (a manifest's entries),
-- naming the spelling to send (core/serial.ts: the API's schema and the CLI's CSV check
-- alike). Nothing is rewritten, since a serial list's digest in the log is the exporter's
-- own. Here the database holds the rule too, on both tables that hold a serial. With one case
-- for new serials, the byte-wise key and index are enough: no index on upper(serial), which
-- would add two index entries a serial, 100–200 ms a 100,000-serial manifest.
--
-- Releases before this one accepted lower case, and their units stay as they were made
-- (s21 ledger review, F1): no command respells a unit, the log records each serial as sent,
-- and a migration that stopped on them would leave the operator nothing to do but edit rows
-- by hand, which the triggers of 028 and 037 refuse. The ledger takes a serial in either case
-- where it names a unit already made (deploy, decommission, report lost, return, GET
-- /v1/units/{serial}), so such a unit is still deployed, ended and looked up by its own
-- spelling. This migration applies over them as they are; nothing else is needed.
--
-- 1. Rows inserted only. Not a CHECK, even NOT VALID: PostgreSQL checks a CHECK on every new
--    version of a row, so the next write of an old row would be refused and fail its whole
--    batch (its shipment shipped, delivered, cancelled or expired by the sweep, a unit's
--    custody moved). Not a row-level BEFORE INSERT trigger either: the ledger writes units it
--    changes as INSERT … ON CONFLICT DO UPDATE (store/batch-writes.ts), which fires BEFORE
--    INSERT row triggers for every row proposed, the old units' too. A statement-level AFTER
--    INSERT trigger reads the transition table, which holds the rows actually inserted and no
--    row the upsert updated. Upper() under the "C" collation changes a to z alone, whatever
--    the database's locale, as JavaScript's toUpperCase does on the ASCII that a serial is
--    (the ledger refuses any other character first); the rest of the form (the characters,
--    the first one, the length) stays the ledger's to check, as before. Refused as a CHECK
--    would be (check_violation, naming units_serial_capitals or
--    shipment_serials_serial_capitals): the ledger answers it under that rule, 409, and logs
--    the text, which names the serial (ledger/refusals.ts constraintRefusal, as 037's
--    units_gpu_uuid_canonical). Crash note: it raises inside the batch's transaction, which
--    then commits nothing.
--    Cost, 100,000 serials of 13 characters inserted in one statement, as a manifest's COPY
--    writes each table, 21 alternating runs on a shared two-core host under load: the
--    backend's CPU time for the INSERT rose by 3–17 ms a table (median–best), against 6–23 ms
--    for the CHECK it replaces, measured in the same runs; the trigger's own time was 21–80
--    ms by the clock, inflated by the load. So about as much as the CHECK: 8 to 32 ms on both
--    tables, under 2 % of a 100,000-serial manifest's import (about 2.5 s, docs/BENCHMARKS.md).
--    The transition table costs nothing more: 004's units_refs_insert and shipment_serials_refs
--    capture it already, and PostgreSQL keeps one a table and event for all its triggers. (A
--    row-level AFTER INSERT trigger with the test in its WHEN cost the same, 6–22 ms.)
CREATE FUNCTION serials_in_capitals() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  found text;
BEGIN
  SELECT n.serial INTO found FROM inserted n WHERE n.serial <> upper(n.serial COLLATE "C") LIMIT 1;
  IF found IS NULL THEN RETURN NULL; END IF;
  RAISE EXCEPTION 'a new % has serial %, with lower-case letters; new serials are written in capitals (%)',
    CASE TG_TABLE_NAME WHEN 'units' THEN 'unit' ELSE 'manifest line' END, found, upper(found COLLATE "C")
    USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_serial_capitals', TABLE = TG_TABLE_NAME;
END $$;
CREATE TRIGGER units_serial_capitals AFTER INSERT ON units
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION serials_in_capitals();
CREATE TRIGGER shipment_serials_serial_capitals AFTER INSERT ON shipment_serials
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION serials_in_capitals();

-- 2. The re-check's part (041): serials that differ only in case, one row a serial in
--    capitals, naming its units (invariant 4: a serial is one unit). An old lower-case unit
--    and a new one in capitals (abc01, ABC01) are such twins: the ledger takes the second, as
--    it does not look a new serial up in other cases (that index is the cost 1. avoids), and
--    `chipledger check` names them for a person to decide. A lone old lower-case serial is no
--    violation. Every manifest line has its unit (ledger_check_manifest_units), so units
--    alone are read: one pass for the serials with a lower-case letter, then the key for
--    their capitals.
CREATE FUNCTION ledger_check_serial_case_twins() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH lower_case AS (
    SELECT u.serial, upper(u.serial COLLATE "C") AS capitals FROM units u WHERE u.serial <> upper(u.serial COLLATE "C")
  ), twins AS (
    SELECT l.capitals, l.serial FROM lower_case l
    UNION ALL
    SELECT u.serial, u.serial FROM units u WHERE u.serial IN (SELECT l.capitals FROM lower_case l)
  )
  SELECT 'invariant-4', t.capitals,
         format('units %s differ only in case; a serial is one unit (new serials are written in capitals)', string_agg(t.serial, ', ' ORDER BY t.serial COLLATE "C"))
  FROM twins t GROUP BY t.capitals HAVING count(*) > 1
$$;
INSERT INTO ledger_checks (position, part) VALUES (240, 'ledger_check_serial_case_twins');

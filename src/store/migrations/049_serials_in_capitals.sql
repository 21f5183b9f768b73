-- Serials are written in capitals (s21 identity review, finding 5). A serial is compared byte
-- for byte: the units' key and invariant 4's index of live manifest rows
-- (shipment_serials_one_live) took ABC1654X01 and abc1654x01 for two units, live in two
-- shipments at once, and one manifest could list CASE01 and case01. The ledger now refuses
-- a lower-case letter in a serial, naming the spelling to send (core/serial.ts: the API's
-- schema and the CLI's CSV check alike). Nothing is rewritten, since a serial list's digest
-- in the log is the exporter's own. Here the database holds the rule too, on both tables
-- that hold a serial. Its form was the code's alone until now. With one case, the
-- byte-wise key and index are enough: no index on upper(serial), which would add two index
-- entries a serial, 100–200 ms a 100,000-serial manifest.
--
-- 1. A database that holds a serial in lower case cannot take the constraints: the migration
--    stops and names the first five of each table, for a person to decide. The constraints
--    are not added NOT VALID to keep such rows. PostgreSQL checks a constraint on every new
--    version of a row, not only on rows inserted, so the next write of an old row would be
--    refused and fail its whole batch: its shipment shipped, delivered, cancelled or expired
--    by the sweep, or a unit's custody moved. And the ledger refuses such a serial in every
--    command that names one, so the unit could not be deployed, ended or listed again
--    anyway. Releases before this one accepted lower case.
DO $$
DECLARE
  found text;
BEGIN
  SELECT string_agg(format('%s (%s)', serial, place), ', ' ORDER BY serial, place) INTO found FROM (
    (SELECT serial, 'unit' AS place FROM units WHERE serial <> upper(serial COLLATE "C") ORDER BY serial LIMIT 5)
    UNION ALL
    (SELECT serial, 'listed in shipment ' || shipment_id FROM shipment_serials WHERE serial <> upper(serial COLLATE "C") ORDER BY serial, shipment_id LIMIT 5)
  ) lower_case;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION 'serials in lower case, which this release refuses (serials are written in capitals): %', found
      USING HINT = 'serials are recorded in the log as sent, so this migration does not respell them; an earlier release accepted them: keep it running until a person has decided what those units are, then migrate again';
  END IF;
END $$;

-- 2. No ASCII lower-case letter: upper() under the "C" collation changes a to z alone,
--    whatever the database's locale, as JavaScript's toUpperCase does on the ASCII that a
--    serial is (the ledger refuses any other character first). IMMUTABLE, so a CHECK may
--    hold it.
--    Not the whole of serialPattern, which costs twice as much. Each test was evaluated over
--    100,000 serials of 13 characters, 41 alternating runs on a shared two-core host under
--    load, best and median. This one cost +16 to +38 ms a table; the pattern,
--    ^[A-Z0-9][A-Z0-9._:/-]*$, cost +31 to +81 ms. On both tables the pattern comes to 60 to
--    160 ms, 3 to 6 % of a 100,000-serial manifest's import (about 2.5 s, docs/BENCHMARKS.md);
--    this test comes to 1 to 3 %. The rest of the form (the characters, the first one, the
--    length) stays the ledger's to check, as before. Case is what made one unit two.
ALTER TABLE units ADD CONSTRAINT units_serial_capitals CHECK (serial = upper(serial COLLATE "C"));
ALTER TABLE shipment_serials ADD CONSTRAINT shipment_serials_serial_capitals CHECK (serial = upper(serial COLLATE "C"));

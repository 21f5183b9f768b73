-- A shipment's manifest is its units, and the lines of the units that have since left it.
--
-- Until now every listed serial was two rows: a manifest line in shipment_serials (live while
-- its shipment was booked, shipped or cleared) and its unit. The line of a unit still in its
-- shipment said what the unit's row says: its shipment_id, live while that shipment is. A
-- 100,000-serial manifest wrote 100,000 lines and two index entries each (430-900 ms of its
-- 1.5-2.5 s, bench/experiments/manifest-copy.ts), and every delivery and cancellation turned
-- its lines' `live` off, one row each.
--
-- Now a manifest line is kept only for a unit that left its shipment: one listed again in
-- another shipment after its booking was cancelled or expired, or after it was turned back at
-- the border. A shipment's manifest is then its units (units.shipment_id, by units_shipment,
-- now on (shipment_id, serial) for the manifest's pages) with its moved lines; each manifest's
-- serial list is in its event too (event_serials).
--
-- Invariant 4's "a serial is live in one shipment at most" holds by the units' primary key
-- (one unit per serial, in one shipment) and by units_keep_identity, which now refuses to move a
-- unit out of a shipment still under way (the job of the dropped shipment_serials_one_live).
--
-- What the database no longer refuses at write time: a unit moved into a shipment whose
-- manifest never listed it (032 refused that in one statement; a writer that first inserted a
-- manifest row got it through all the same). A unit is now listed wherever it is, so such a
-- move makes that shipment's manifest longer than its serial_count, which the re-check names
-- (ledger_check_manifest_rows, below). It is not refused by the new shipment's status alone: a
-- batch that lists a unit and then ships, delivers or cancels its booking writes the shipment's
-- last status before the unit (parents first, store/batch-writes.ts). (033's one such refusal
-- stays: a released unit is not moved into another exporter's cancelled or expired booking. A
-- batch in which another exporter lists a released unit and cancels that booking, whether or not
-- the unit is listed again after, is refused whole by it, as before this migration, and the
-- sequencer runs it again in halves until each part commits: manifests-ownership.test.ts.)
-- A unit never goes back into a shipment it left: that is refused, one probe of the lines' key.
--
-- 1. The lines of units that moved on, written by the database as a unit moves (below), never
--    by the writer, and kept: no update, no delete.
CREATE TABLE moved_manifest_lines (
  shipment_id text NOT NULL,
  serial text NOT NULL,
  PRIMARY KEY (shipment_id, serial)
);
CREATE TRIGGER moved_manifest_lines_kept BEFORE UPDATE OR DELETE OR TRUNCATE ON moved_manifest_lines
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

-- The lines kept from shipment_serials: those whose unit is not in that shipment now. (A line
-- with no unit at all, which the re-check named as a violation, is kept, and still named.)
INSERT INTO moved_manifest_lines (shipment_id, serial)
  SELECT ss.shipment_id, ss.serial FROM shipment_serials ss
  WHERE NOT EXISTS (SELECT 1 FROM units u WHERE u.serial = ss.serial AND u.shipment_id = ss.shipment_id);

DROP TABLE shipment_serials;
DROP FUNCTION shipment_serials_only_end();
DROP FUNCTION shipment_serials_check_refs();

-- A shipment's units in serial order: the manifest's pages read them by this index.
DROP INDEX units_shipment;
CREATE INDEX units_shipment ON units (shipment_id, serial);

-- 2. A unit that moves to another shipment leaves its line in the old one. As the owner
--    (SECURITY DEFINER), as 070's bookkeeping: the writer may read the lines, not write them,
--    so it cannot make a shipment's manifest say other than what was listed. Names resolve by
--    the caller's search_path, safe for the reason 070 gives (the writer can create nothing).
CREATE FUNCTION units_leave_manifest_line() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  INSERT INTO moved_manifest_lines (shipment_id, serial) VALUES (OLD.shipment_id, OLD.serial);
  RETURN NULL;
END $$;
CREATE TRIGGER units_leave_manifest_line AFTER UPDATE ON units FOR EACH ROW
  WHEN (NEW.shipment_id IS DISTINCT FROM OLD.shipment_id) EXECUTE FUNCTION units_leave_manifest_line();

-- A unit's serial is its manifest line's: it never changes (a new serial is a new unit).
CREATE FUNCTION units_keep_serial() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'unit % cannot become unit %: a serial is one unit, listed under it', OLD.serial, NEW.serial
    USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_serial';
END $$;
CREATE TRIGGER units_keep_serial BEFORE UPDATE ON units FOR EACH ROW
  WHEN (NEW.serial IS DISTINCT FROM OLD.serial) EXECUTE FUNCTION units_keep_serial();

-- 3. 071's units_keep_identity, with the check that the new shipment's manifest lists the unit
--    (now true by definition) replaced by one that its old shipment is no longer under way: a
--    unit is live in one shipment at most (invariant 4). Raised as the unique violation the
--    dropped index gave (ledger/refusals.ts hears it as invariant 4).
CREATE OR REPLACE FUNCTION units_keep_identity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE old_exporter text; old_status text; old_custody text; new_exporter text; new_status text; released boolean; uuid_released boolean; moved boolean;
BEGIN
  IF OLD.ever_shipped AND NOT NEW.ever_shipped THEN
    RAISE EXCEPTION 'unit % has shipped; that stays so', OLD.serial
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF OLD.gpu_uuid_shipped AND NOT NEW.gpu_uuid_shipped THEN
    RAISE EXCEPTION 'unit % shipped with GPU UUID %; that stays so', OLD.serial, OLD.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  SELECT exporter_org_id, status INTO old_exporter, old_status FROM shipments WHERE id = OLD.shipment_id;
  -- A unit in transit in a shipment turned back at the border is returned, also before the
  -- return's custody step has reached its row: a batch that returns a shipment and lists its
  -- units again writes their rows first (store/batch-writes.ts, custody steps after rows).
  old_custody := CASE WHEN OLD.custody = 'in_transit' AND old_status = 'returned' THEN 'returned' ELSE OLD.custody END;
  IF NEW.gpu_uuid_shipped AND NOT OLD.gpu_uuid_shipped AND NOT (old_custody IN ('licensed', 'returned') AND NEW.custody NOT IN ('licensed', 'returned')) THEN
    RAISE EXCEPTION 'unit % is %; its GPU UUID % becomes fixed only by shipping', OLD.serial, NEW.custody, NEW.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  released := NOT OLD.ever_shipped AND old_status IN ('cancelled', 'expired');
  uuid_released := NOT OLD.gpu_uuid_shipped AND old_status IN ('cancelled', 'expired');
  moved := NEW.shipment_id <> OLD.shipment_id;
  IF NEW.product_id <> OLD.product_id AND NOT (released AND moved) THEN
    RAISE EXCEPTION 'unit % is a unit of product %; it cannot become one of %', OLD.serial, OLD.product_id, NEW.product_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid AND NOT (uuid_released AND (moved OR NEW.gpu_uuid IS NULL)) THEN
    RAISE EXCEPTION 'unit % has GPU UUID %; it cannot change', OLD.serial, OLD.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF moved THEN
    IF old_custody NOT IN ('licensed', 'returned') THEN
      RAISE EXCEPTION 'unit % is %; it cannot be listed in another shipment', OLD.serial, OLD.custody
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    -- In the words of a second listing, naming no shipment: the caller may be another
    -- exporter, whom the ledger tells nothing of where a serial is (ledger/refusals.ts quotes it).
    IF old_status IN ('booked', 'shipped', 'cleared') THEN
      RAISE EXCEPTION 'unit % is live in a shipment under way; it cannot be listed in another as well', OLD.serial
        USING ERRCODE = 'unique_violation', CONSTRAINT = 'units_live_in_one_shipment';
    END IF;
    SELECT exporter_org_id, status INTO new_exporter, new_status FROM shipments WHERE id = NEW.shipment_id;
    IF NOT released AND new_exporter IS DISTINCT FROM old_exporter THEN
      RAISE EXCEPTION 'unit % is %''s (it has shipped, or its booking % is %); shipment % is not that exporter''s', OLD.serial, old_exporter, OLD.shipment_id, old_status, NEW.shipment_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    -- As in 033: a released unit goes to another exporter only by a listing, in a booking
    -- that claims it now.
    IF released AND new_exporter IS DISTINCT FROM old_exporter AND new_status IN ('cancelled', 'expired') THEN
      RAISE EXCEPTION 'unit % cannot move to shipment % of %: that booking is %, so it claims no unit', OLD.serial, NEW.shipment_id, new_exporter, new_status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    IF NOT unit_custody_fits(NEW.custody, new_status) THEN
      RAISE EXCEPTION 'unit % cannot be % in shipment %, which is %', OLD.serial, NEW.custody, NEW.shipment_id, new_status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    IF EXISTS (SELECT 1 FROM moved_manifest_lines WHERE shipment_id = NEW.shipment_id AND serial = NEW.serial) THEN
      RAISE EXCEPTION 'unit % left shipment % before; it cannot go back into it', OLD.serial, NEW.shipment_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
  END IF;
  RETURN NEW;
END $$;

-- 4. The re-check's parts that read manifest lines (041's parts, as 028, 032, 033, 037 and 058
--    last wrote them), over units and moved lines.

-- A shipment's serial_count is its manifest's length: its units and its moved lines. (A serial
-- live in two shipments, or a line live in an ended one, can no longer be written.)
CREATE OR REPLACE FUNCTION ledger_check_manifest_rows() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-4', s.id, format('serial_count %s, manifest rows %s (%s units in it, %s moved on)',
                                     s.serial_count, coalesce(u.n, 0) + coalesce(m.n, 0), coalesce(u.n, 0), coalesce(m.n, 0))
  FROM shipments s
  LEFT JOIN (SELECT shipment_id, count(*) AS n FROM units GROUP BY shipment_id) u ON u.shipment_id = s.id
  LEFT JOIN (SELECT shipment_id, count(*) AS n FROM moved_manifest_lines GROUP BY shipment_id) m ON m.shipment_id = s.id
  WHERE s.serial_count <> coalesce(u.n, 0) + coalesce(m.n, 0)
$$;

-- A moved line names a unit that exists and is no longer in that shipment, and a shipment that
-- has ended (a unit leaves only such a one: a line of a shipment under way was live in another
-- shipment's unit before this migration, which 028's clause named); a unit of a shipment under
-- way is of its product (028's clause; one in it for another recipient is 020's).
CREATE OR REPLACE FUNCTION ledger_check_manifest_units() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-4', m.shipment_id, format('serial %s is in the manifest but has no unit', m.serial)
  FROM moved_manifest_lines m WHERE NOT EXISTS (SELECT 1 FROM units u WHERE u.serial = m.serial)
  UNION ALL
  SELECT 'invariant-4', m.shipment_id, format('serial %s is kept as a unit that moved on, but its unit is still in this shipment', m.serial)
  FROM moved_manifest_lines m JOIN units u ON u.serial = m.serial AND u.shipment_id = m.shipment_id
  UNION ALL
  SELECT 'invariant-4', m.shipment_id, format('serial %s is kept as a unit that moved on, but the shipment is %s: a unit leaves only a shipment that has ended', m.serial, s.status)
  FROM moved_manifest_lines m JOIN shipments s ON s.id = m.shipment_id
  WHERE s.status IN ('booked', 'shipped', 'cleared')
  UNION ALL
  SELECT 'invariant-4', s.id, format('serial %s is live in the manifest, but its unit is of product %s, not %s', u.serial, u.product_id, s.product_id)
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE s.status IN ('booked', 'shipped', 'cleared') AND u.product_id <> s.product_id
$$;

-- 032's first clause; its second (a unit its shipment's manifest does not list) is true by definition now.
CREATE OR REPLACE FUNCTION ledger_check_unit_custody() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-4', u.serial, format('the unit is %s, but its shipment %s is %s', u.custody, s.id, s.status)
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE NOT unit_custody_fits(u.custody, s.status)
    AND s.recipient_org_id = u.recipient_org_id
    AND NOT (u.custody IN ('delivered', 'deployed') AND s.status <> 'delivered')
$$;

-- 033's clauses, as 037 widened them. A unit has shipped when its shipment, or one it moved on
-- from, has: its own shipment by the join, the others by one hash of their moved lines.
CREATE OR REPLACE FUNCTION ledger_check_unit_claims() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-4', u.serial,
         CASE WHEN u.ever_shipped THEN 'the unit is marked as shipped, but no shipment that lists it has shipped'
              ELSE 'the unit is marked as never shipped, but a shipment that lists it has shipped' END
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  LEFT JOIN (SELECT DISTINCT m.serial FROM moved_manifest_lines m JOIN shipments ms ON ms.id = m.shipment_id
             WHERE ms.status IN ('shipped', 'cleared', 'delivered', 'returned')) shipped_before ON shipped_before.serial = u.serial
  WHERE u.ever_shipped <> (s.status IN ('shipped', 'cleared', 'delivered', 'returned') OR shipped_before.serial IS NOT NULL)
  UNION ALL
  SELECT 'invariant-4', u.serial,
         CASE WHEN NOT u.ever_shipped THEN format('the unit never shipped and its shipment %s is %s, but it still holds GPU UUID %s', s.id, s.status, u.gpu_uuid)
              ELSE format('its GPU UUID %s never shipped and its shipment %s is %s, but the unit still holds it', u.gpu_uuid, s.id, s.status) END
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE NOT u.gpu_uuid_shipped AND s.status IN ('cancelled', 'expired') AND u.gpu_uuid IS NOT NULL
$$;

-- 058's, over the moved lines.
CREATE OR REPLACE FUNCTION ledger_check_serial_form() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-4', s.serial, format('%s has serial %s, which is not of the form of a serial', s.place, to_json(s.serial)::text)
  FROM (SELECT 'a unit' AS place, u.serial FROM units u
        UNION ALL SELECT 'manifest line of ' || m.shipment_id, m.serial FROM moved_manifest_lines m) s
  WHERE s.serial COLLATE "C" !~ '^[A-Za-z0-9][A-Za-z0-9._:/-]*$' OR length(s.serial) > 64
$$;

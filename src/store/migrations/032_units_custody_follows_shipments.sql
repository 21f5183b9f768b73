-- A unit's custody follows its shipment, and its shipment lists it, in the database and in
-- the full re-check as well as in the code (s13 review, units #1). Until now an UPDATE could
-- put a returned unit "deployed" under another delivered shipment whose manifest never
-- named it (019 checked only the old custody and the exporter on a change of shipment), and
-- leave units of a booked shipment in transit, lost, returned or decommissioned; neither the
-- triggers nor ledger_violations() saw any of it.
--
-- 1. Which custody goes with which shipment status, as the handlers move them
--    (ledger/handlers/shipments.ts, applyStep; units.ts; manifests.ts):
--    - licensed: listed in a booking (manifest.attach, shipment.book), which may then be
--      cancelled or expire: neither moves a unit, so a unit of an ended booking stays licensed.
--    - in_transit: shipping moves every licensed unit of the shipment (the manifest is full
--      by then), clearing moves none, delivering moves every one still in transit.
--    - lost: reported from in transit, delivered or deployed, so under a shipped, cleared or
--      delivered shipment; delivering leaves a lost unit lost. A shipment is cancelled or
--      expires only while booked, before any unit can be in transit, so never with a lost unit.
--    - delivered, deployed, returned, decommissioned: only under a delivered shipment (each
--      is reached from delivered, and a delivered shipment stays so, 020). A returned unit
--      listed again becomes licensed under its new shipment.
--    One function, so the trigger below and the re-check read the same table. IMMUTABLE and
--    plain SQL: the planner inlines it into the re-check's scan of the units.
CREATE FUNCTION unit_custody_fits(custody text, status text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE custody
    WHEN 'licensed' THEN status IN ('booked', 'cancelled', 'expired')
    WHEN 'in_transit' THEN status IN ('shipped', 'cleared')
    WHEN 'lost' THEN status IN ('shipped', 'cleared', 'delivered')
    ELSE status = 'delivered'
  END
$$;

-- 2. 019's rule, with two more checks when a unit moves to another shipment: the new
--    shipment's manifest lists it, and its custody fits that shipment's status. Both read
--    rows the batch has already written: it writes shipments, then manifest rows, then units
--    (store/ledger-tables.ts, tableOrder), and writes a listed unit's row once, in the
--    custody its batch left it (listed and shipped in one batch: in transit under a shipped
--    shipment). They run only where 019's did, on a change of shipment (a unit listed again:
--    rare), two more primary-key look-ups; shipping or delivering 100,000 units changes no
--    shipment_id and never calls the function. The trigger and its WHEN stay as 019 made them.
CREATE OR REPLACE FUNCTION units_keep_identity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE old_exporter text; new_exporter text; new_status text;
BEGIN
  IF NEW.product_id <> OLD.product_id THEN
    RAISE EXCEPTION 'unit % is a unit of product %; it cannot become one of %', OLD.serial, OLD.product_id, NEW.product_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid THEN
    RAISE EXCEPTION 'unit % has GPU UUID %; it cannot change', OLD.serial, OLD.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF NEW.shipment_id <> OLD.shipment_id THEN
    IF OLD.custody NOT IN ('licensed', 'returned') THEN
      RAISE EXCEPTION 'unit % is %; it cannot be listed in another shipment', OLD.serial, OLD.custody
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    SELECT exporter_org_id INTO old_exporter FROM shipments WHERE id = OLD.shipment_id;
    SELECT exporter_org_id, status INTO new_exporter, new_status FROM shipments WHERE id = NEW.shipment_id;
    IF new_exporter IS DISTINCT FROM old_exporter THEN
      RAISE EXCEPTION 'unit % was last shipped by %; shipment % is not that exporter''s', OLD.serial, old_exporter, NEW.shipment_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM shipment_serials WHERE shipment_id = NEW.shipment_id AND serial = NEW.serial) THEN
      RAISE EXCEPTION 'unit % cannot move to shipment %: its manifest does not list the unit', OLD.serial, NEW.shipment_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    IF NOT unit_custody_fits(NEW.custody, new_status) THEN
      RAISE EXCEPTION 'unit % cannot be % in shipment %, which is %', OLD.serial, NEW.custody, NEW.shipment_id, new_status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
  END IF;
  RETURN NEW;
END $$;

-- 3. The full re-check finds what section 2 cannot refuse at write time: a unit changed within
--    one shipment (023 keeps its custody moving forward, not in step with the shipment; a
--    check per row would cost shipping 100,000 units a join), and rows written before this
--    migration or with the triggers off. Two clauses more:
--    - a unit whose custody its shipment's status does not allow (unit_custody_fits). 020's
--      clause, which the definitions since keep, already reports a delivered or deployed
--      unit under a shipment not delivered, and a unit of another recipient than its
--      shipment's: those rows are left to it, so each unit is reported once;
--    - a unit whose shipment's manifest does not list it (no shipment_serials row, live or
--      not): custody under a shipment that never named the unit.
--    The definition before this one is kept under its own name and this one adds to it (as
--    020 did), rather than repeating its 150 lines: migrations 030 to 032 were written at the
--    same time as this one, and whichever of them last redefined the re-check, its clauses
--    are all kept. A later migration that redefines ledger_violations() whole folds these
--    clauses and 030's in, then drops ledger_violations_before_032() and after it
--    ledger_violations_before_030(), which the former calls (dropping only the latter breaks
--    `chipledger check`).
ALTER FUNCTION ledger_violations() RENAME TO ledger_violations_before_032;
CREATE FUNCTION ledger_violations() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT * FROM ledger_violations_before_032()
  UNION ALL
  SELECT 'invariant-4', u.serial, format('the unit is %s, but its shipment %s is %s', u.custody, s.id, s.status)
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE NOT unit_custody_fits(u.custody, s.status)
    AND s.recipient_org_id = u.recipient_org_id
    AND NOT (u.custody IN ('delivered', 'deployed') AND s.status <> 'delivered')
  UNION ALL
  SELECT 'invariant-4', u.serial, format('the unit is %s in shipment %s, whose manifest does not list it', u.custody, u.shipment_id)
  FROM units u
  WHERE NOT EXISTS (SELECT 1 FROM shipment_serials ss WHERE ss.shipment_id = u.shipment_id AND ss.serial = u.serial)
  UNION ALL
  -- And, beside the units, migration 031's rule after the fact: its trigger checks a batch's
  -- events when the head moves over them, so an event written after that (by hand, or by a
  -- writer that moves the head first) is seen only here.
  SELECT 'event-times', 'event ' || e.seq, format('dated %s, before event %s at %s', e.at, e.seq - 1, e.before)
  FROM (SELECT seq, at, lag(at) OVER (ORDER BY seq) AS before FROM events) e
  WHERE e.at < e.before
$$;

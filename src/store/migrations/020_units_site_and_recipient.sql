-- Where a unit is deployed, and whose it is, held in the database as well as in the code
-- (ledger/handlers/units.ts, manifests.ts). Until now the database took any site and any
-- recipient for a unit: an UPDATE could hand a deployed unit to another recipient, put it
-- at another organisation's site, or deploy a unit still in transit. (That a unit is
-- deployed exactly when it is at a site is the CHECK of 001.)
--
-- 1. A unit is at a site only once its shipment is delivered, and only at a site of its
--    recipient. Judged by the shipment, not by the unit's old custody: a batch may deliver
--    a shipment and deploy its units at once, and writes the unit's row once, in its end
--    state (shipments are written before units). Checked once a statement, over its
--    transition table (which 004's reference check already captures): a row trigger cost a
--    deployment of 100,000 units 1.15 s more (11 µs a unit, bench/experiments/
--    deploy-trigger.ts); this costs shipping a scan of its rows, which all fail the first
--    test (no site). What it does not see: a unit taken from an end state (decommissioned,
--    lost) back to a site by hand; the code refuses that, and no invariant depends on it.
CREATE FUNCTION units_check_sites() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  -- Listing and shipping (100,000 rows a statement) put no unit at a site: one pass over
  -- the rows, with nothing joined.
  IF NOT EXISTS (SELECT 1 FROM new_units WHERE site_id IS NOT NULL) THEN
    RETURN NULL;
  END IF;
  SELECT n.serial, n.recipient_org_id, n.shipment_id, n.site_id, s.status, st.org_id AS site_owner INTO bad
  FROM new_units n JOIN sites st ON st.id = n.site_id JOIN shipments s ON s.id = n.shipment_id
  WHERE n.site_id IS NOT NULL AND (s.status <> 'delivered' OR st.org_id <> n.recipient_org_id)
  LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF bad.status <> 'delivered' THEN
    RAISE EXCEPTION 'unit % is at site %, but its shipment % is %; only delivered units can be deployed', bad.serial, bad.site_id, bad.shipment_id, bad.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_check_sites';
  END IF;
  RAISE EXCEPTION 'unit % is %''s; site % is not', bad.serial, bad.recipient_org_id, bad.site_id
    USING ERRCODE = 'check_violation', CONSTRAINT = 'units_check_sites';
END $$;
CREATE TRIGGER units_sites_update AFTER UPDATE ON units
  REFERENCING NEW TABLE AS new_units FOR EACH STATEMENT EXECUTE FUNCTION units_check_sites();

-- 2. A unit's recipient changes only when it is listed in another shipment, to that
--    shipment's recipient (a returned unit shipped again). A row trigger whose WHEN the
--    executor evaluates without calling the function, as in 019: only a unit listed again
--    for another recipient (rare) runs it.
CREATE FUNCTION units_keep_recipient() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE shipment_recipient text;
BEGIN
  SELECT recipient_org_id INTO shipment_recipient FROM shipments WHERE id = NEW.shipment_id;
  IF NEW.shipment_id = OLD.shipment_id OR shipment_recipient IS DISTINCT FROM NEW.recipient_org_id THEN
    RAISE EXCEPTION 'unit % is %''s; it goes to another recipient only in a shipment to that recipient', OLD.serial, OLD.recipient_org_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_recipient';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER units_keep_recipient BEFORE UPDATE ON units FOR EACH ROW
  WHEN (NEW.recipient_org_id IS DISTINCT FROM OLD.recipient_org_id)
  EXECUTE FUNCTION units_keep_recipient();

-- 3. The same for a unit written new by a batch, which writes it in its end state: one
--    listed and shipped in one batch is inserted in transit (so not "enters licensed"),
--    and none may be inserted at a site its shipment and recipient do not allow.
CREATE TRIGGER units_sites_insert AFTER INSERT ON units
  REFERENCING NEW TABLE AS new_units FOR EACH STATEMENT EXECUTE FUNCTION units_check_sites();

-- 4. The rows above a unit keep what these rules read: a site never changes owner, a
--    shipment never changes recipient (the ledger sets both once). Otherwise a site handed
--    to another organisation would carry the units deployed there with it, unchecked.
CREATE FUNCTION keep_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% % belongs to %; it cannot change hands', TG_ARGV[0], OLD.id, TG_ARGV[1]
    USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_keep_owner';
END $$;
CREATE TRIGGER sites_keep_owner BEFORE UPDATE ON sites FOR EACH ROW
  WHEN (NEW.org_id IS DISTINCT FROM OLD.org_id)
  EXECUTE FUNCTION keep_owner('site', 'its organisation');
CREATE TRIGGER shipments_keep_recipient BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN (NEW.recipient_org_id IS DISTINCT FROM OLD.recipient_org_id)
  EXECUTE FUNCTION keep_owner('shipment', 'its recipient');
-- And a shipment that ended stays ended (delivered, cancelled and expired are terminal in
-- every handler): a delivered shipment taken back to cleared would leave its deployed
-- units at sites their shipment no longer allows, and a cancelled one booked again would
-- hold units no allocation reserves.
CREATE FUNCTION shipments_stay_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'shipment % is %; it cannot become %', OLD.id, OLD.status, NEW.status
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_stay_ended';
END $$;
CREATE TRIGGER shipments_stay_ended BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN (OLD.status IN ('delivered', 'cancelled', 'expired') AND NEW.status IS DISTINCT FROM OLD.status)
  EXECUTE FUNCTION shipments_stay_ended();

-- 5. The full re-check (ledger_violations, as 017 left it) also finds a unit that breaks
--    these rules, however it came to: one already so before this migration, or one changed
--    with the triggers off. 017's function is kept under its own name and this one adds to
--    it, rather than repeating its hundred lines; a later migration that changes the
--    re-check replaces this function and may fold the two together again.
ALTER FUNCTION ledger_violations() RENAME TO ledger_violations_017;
CREATE FUNCTION ledger_violations() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT * FROM ledger_violations_017()
  UNION ALL
  SELECT 'invariant-4', u.serial, format('deployed at site %s of %s, but the unit is %s''s', u.site_id, st.org_id, u.recipient_org_id)
  FROM units u JOIN sites st ON st.id = u.site_id
  WHERE st.org_id <> u.recipient_org_id
  UNION ALL
  SELECT 'invariant-4', u.serial,
         CASE WHEN s.recipient_org_id <> u.recipient_org_id
              THEN format('the unit is %s''s, but its shipment %s is for %s', u.recipient_org_id, s.id, s.recipient_org_id)
              ELSE format('the unit is %s, but its shipment %s is %s', u.custody, s.id, s.status) END
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE s.recipient_org_id <> u.recipient_org_id
     OR (u.custody IN ('delivered', 'deployed') AND s.status <> 'delivered')
$$;

-- Where a unit is deployed, and whose it is, held in the database as well as in the code
-- (ledger/handlers/units.ts, manifests.ts). Until now the database took any site and any
-- recipient for a unit: an UPDATE could hand a deployed unit to another recipient, put it
-- at another organisation's site, or deploy a unit still in transit. (That a unit is
-- deployed exactly when it is at a site is the CHECK of 001.)
--
-- 1. A unit comes to a site only once its shipment is delivered, never from an end state,
--    and only to a site of its recipient. Judged by the shipment, not by the unit's old
--    custody: a batch may deliver a shipment and deploy its units at once, and writes the
--    unit's row once, in its end state (shipments are written before units).
-- 2. Its recipient changes only when it is listed in another shipment, to that shipment's
--    recipient (a returned unit shipped again).
--
-- As in 019, a row trigger whose WHEN the executor evaluates without calling the function:
-- the custody updates of shipping, clearing and delivering change neither column and pay a
-- comparison a row; deploying a unit pays two primary-key look-ups.
CREATE FUNCTION units_site_and_recipient() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE site_owner text; shipment_recipient text; shipment_status text;
BEGIN
  IF NEW.site_id IS NOT NULL AND NEW.site_id IS DISTINCT FROM OLD.site_id THEN
    SELECT org_id INTO site_owner FROM sites WHERE id = NEW.site_id;
    -- A site that does not exist is the reference check's to name (004, after the statement).
    IF NOT FOUND THEN
      RETURN NEW;
    END IF;
    SELECT status INTO shipment_status FROM shipments WHERE id = NEW.shipment_id;
    IF shipment_status IS DISTINCT FROM 'delivered' OR OLD.custody IN ('licensed', 'returned', 'decommissioned', 'lost') THEN
      RAISE EXCEPTION 'unit % is % (shipment % %); only delivered or deployed units can be deployed', OLD.serial, OLD.custody, NEW.shipment_id, shipment_status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_site_and_recipient';
    END IF;
    IF site_owner IS DISTINCT FROM NEW.recipient_org_id THEN
      RAISE EXCEPTION 'unit % is %''s; site % is not', NEW.serial, NEW.recipient_org_id, NEW.site_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_site_and_recipient';
    END IF;
  END IF;
  IF NEW.recipient_org_id IS DISTINCT FROM OLD.recipient_org_id THEN
    SELECT recipient_org_id INTO shipment_recipient FROM shipments WHERE id = NEW.shipment_id;
    IF NEW.shipment_id = OLD.shipment_id OR shipment_recipient IS DISTINCT FROM NEW.recipient_org_id THEN
      RAISE EXCEPTION 'unit % is %''s; it goes to another recipient only in a shipment to that recipient', OLD.serial, OLD.recipient_org_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_site_and_recipient';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER units_site_and_recipient BEFORE UPDATE ON units FOR EACH ROW
  WHEN ((NEW.site_id IS NOT NULL AND NEW.site_id IS DISTINCT FROM OLD.site_id)
        OR NEW.recipient_org_id IS DISTINCT FROM OLD.recipient_org_id)
  EXECUTE FUNCTION units_site_and_recipient();

-- 3. A unit enters the ledger on a manifest, licensed: never straight onto a site. An AFTER
--    trigger: a BEFORE INSERT one would also fire for the rows of an upsert that end as
--    updates (the batch writes changed units by INSERT ... ON CONFLICT DO UPDATE).
CREATE FUNCTION units_enter_licensed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'unit % enters the ledger %; a unit enters on a manifest, licensed', NEW.serial, NEW.custody
    USING ERRCODE = 'check_violation', CONSTRAINT = 'units_enter_licensed';
END $$;
CREATE TRIGGER units_enter_licensed AFTER INSERT ON units FOR EACH ROW
  WHEN (NEW.custody <> 'licensed')
  EXECUTE FUNCTION units_enter_licensed();

-- 4. The rows above a unit keep what these rules read: a site never changes owner, and a
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

-- Where a unit is deployed, and whose it is, held in the database as well as in the code
-- (ledger/handlers/units.ts, manifests.ts). Until now the database took any site and any
-- recipient for a unit: an UPDATE could hand a deployed unit to another recipient, put it
-- at another organisation's site, or deploy a unit still in transit. (That a unit is
-- deployed exactly when it is at a site is the CHECK of 001.)
--
-- 1. A unit comes to a site only from custody delivered or deployed (a move), and only to a
--    site of its recipient. 2. Its recipient changes only when it is listed in another
--    shipment, to that shipment's recipient (a returned unit shipped again).
--
-- As in 019, a row trigger whose WHEN the executor evaluates without calling the function:
-- the custody updates of shipping, clearing and delivering change neither column and pay a
-- comparison a row; deploying a unit pays one primary-key look-up of its site.
CREATE FUNCTION units_site_and_recipient() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE site_owner text; shipment_recipient text;
BEGIN
  IF NEW.site_id IS NOT NULL AND NEW.site_id IS DISTINCT FROM OLD.site_id THEN
    SELECT org_id INTO site_owner FROM sites WHERE id = NEW.site_id;
    -- A site that does not exist is the reference check's to name (004, after the statement).
    IF NOT FOUND THEN
      RETURN NEW;
    END IF;
    IF OLD.custody NOT IN ('delivered', 'deployed') THEN
      RAISE EXCEPTION 'unit % is %; only delivered or deployed units can be deployed', OLD.serial, OLD.custody
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

-- A unit keeps what it physically is and whose it is, in the database as well as in the
-- code (ledger/handlers/manifests.ts, checkListable): its product never changes, its GPU
-- UUID never changes once known, and it moves to another shipment only from custody
-- 'licensed' or 'returned' and only within its exporter's shipments (the exporter of the
-- shipment that last held it). Another exporter's listing would take the unit over, its row
-- rewritten to a shipment its first exporter and recipient cannot see.
--
-- A row trigger, but its WHEN runs in the executor without calling the function: the
-- custody updates of shipping a 100,000-unit shipment change none of these columns, so they
-- pay a comparison a row. Only a row that changes one of them runs the function (a unit
-- listed again: rare, and then two primary-key look-ups).
CREATE FUNCTION units_keep_identity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE old_exporter text; new_exporter text;
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
    SELECT exporter_org_id INTO new_exporter FROM shipments WHERE id = NEW.shipment_id;
    IF new_exporter IS DISTINCT FROM old_exporter THEN
      RAISE EXCEPTION 'unit % was last shipped by %; shipment % is not that exporter''s', OLD.serial, old_exporter, NEW.shipment_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER units_keep_identity BEFORE UPDATE ON units FOR EACH ROW
  WHEN (NEW.product_id IS DISTINCT FROM OLD.product_id
        OR (OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid)
        OR NEW.shipment_id IS DISTINCT FROM OLD.shipment_id)
  EXECUTE FUNCTION units_keep_identity();

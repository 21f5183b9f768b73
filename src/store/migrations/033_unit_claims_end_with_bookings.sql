-- A unit's identity is fixed when it ships, not when a booking first lists it. Until now the
-- first manifest to list a serial decided for good whose unit it was, of which product, and
-- its GPU UUID (019): a booking cancelled or expired before it shipped left all three as it
-- had listed them. So a manifest's typo (a wrong GPU UUID, a serial listed under the wrong
-- product) could never be put right, and an exporter could list another's serials or GPU
-- UUIDs in a booking, cancel it, and keep them from their real exporter for ever (s13 note,
-- "serial squatting").
--
-- Now a listing is a claim that lasts as long as its booking. A unit that has never shipped,
-- in a booking that was cancelled or expired, is released: the next manifest to list it, any
-- exporter's, of any product, gives it its identity afresh, and it holds no GPU UUID
-- meanwhile (so that the unique index of 027 lets another unit take the one it was listed
-- with). Once a unit has shipped, 019's rules hold as before: it stays its exporter's and
-- keeps its product and GPU UUID, through returns and bookings that end.
--
-- 1. Whether a unit has shipped: custody left 'licensed' under some shipment. A returned unit
--    listed again is 'licensed' again, so custody alone forgets it. Set by shipping (the
--    set-based custody change, store/batch-writes.ts) and never unset. Rows already here
--    have shipped when a shipment that shipped lists them (shipping needs a full manifest and
--    moves every unit it lists), or when they are anywhere but 'licensed'. The column is
--    added true, so that the backfill updates only units still 'licensed' (none in 022's end
--    states, which never change); then its default is what a new unit is: not shipped. The
--    CHECK holds the column to the custody: a unit in transit or beyond has shipped.
ALTER TABLE units ADD COLUMN ever_shipped boolean NOT NULL DEFAULT true;
UPDATE units u SET ever_shipped = false
WHERE u.custody = 'licensed'
  AND NOT EXISTS (SELECT 1 FROM shipment_serials ss JOIN shipments s ON s.id = ss.shipment_id
                  WHERE ss.serial = u.serial AND s.status IN ('shipped', 'cleared', 'delivered'));
ALTER TABLE units ALTER COLUMN ever_shipped SET DEFAULT false;
ALTER TABLE units ADD CONSTRAINT units_shipped_custody CHECK (ever_shipped OR custody = 'licensed');

-- 2. 032's rule, with released claims let go. "Released": the unit never shipped and the
--    shipment that holds it was cancelled or expired. A released unit may move to any
--    exporter's shipment with another product and GPU UUID (the listing that takes it), and
--    may lose its GPU UUID where it is (the release itself, when its booking ends). The
--    checks of a move (the new shipment lists it, its custody fits) hold for every unit.
--    The function now reads the old shipment first, one primary-key look-up, still only for
--    rows its WHEN lets through: a unit listed again, or a released unit's GPU UUID let go.
--    Cancelling a booking whose 100,000-serial manifest gave GPU UUIDs took 2.2 s against
--    0.6 s without GPU UUIDs (one run, shared two-core host): each unit's row is rewritten
--    with its indexes, and the function called. Rare, and paid once, by that cancel or expiry.
CREATE OR REPLACE FUNCTION units_keep_identity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE old_exporter text; old_status text; new_exporter text; new_status text; released boolean; moved boolean;
BEGIN
  IF OLD.ever_shipped AND NOT NEW.ever_shipped THEN
    RAISE EXCEPTION 'unit % has shipped; that stays so', OLD.serial
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  SELECT exporter_org_id, status INTO old_exporter, old_status FROM shipments WHERE id = OLD.shipment_id;
  released := NOT OLD.ever_shipped AND old_status IN ('cancelled', 'expired');
  moved := NEW.shipment_id <> OLD.shipment_id;
  IF NEW.product_id <> OLD.product_id AND NOT (released AND moved) THEN
    RAISE EXCEPTION 'unit % is a unit of product %; it cannot become one of %', OLD.serial, OLD.product_id, NEW.product_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid AND NOT (released AND (moved OR NEW.gpu_uuid IS NULL)) THEN
    RAISE EXCEPTION 'unit % has GPU UUID %; it cannot change', OLD.serial, OLD.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF moved THEN
    IF OLD.custody NOT IN ('licensed', 'returned') THEN
      RAISE EXCEPTION 'unit % is %; it cannot be listed in another shipment', OLD.serial, OLD.custody
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    SELECT exporter_org_id, status INTO new_exporter, new_status FROM shipments WHERE id = NEW.shipment_id;
    IF NOT released AND new_exporter IS DISTINCT FROM old_exporter THEN
      RAISE EXCEPTION 'unit % is %''s (it has shipped, or its booking % is %); shipment % is not that exporter''s', OLD.serial, old_exporter, OLD.shipment_id, old_status, NEW.shipment_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    -- A released unit goes to another exporter only by a listing, in a booking that claims it
    -- now: not back into an ended one whose manifest once named it (a batch that lists it
    -- and cancels that booking at once fails here, and passes when run again in halves).
    IF released AND new_exporter IS DISTINCT FROM old_exporter AND new_status IN ('cancelled', 'expired') THEN
      RAISE EXCEPTION 'unit % cannot move to shipment % of %: that booking is %, so it claims no unit', OLD.serial, NEW.shipment_id, new_exporter, new_status
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
--    The trigger fires on 019's WHEN, and when a shipped unit would be unmarked (ever_shipped
--    true to false). Shipping 100,000 units sets ever_shipped from false to true, which the
--    WHEN lets by without calling the function.
DROP TRIGGER units_keep_identity ON units;
CREATE TRIGGER units_keep_identity BEFORE UPDATE ON units FOR EACH ROW
  WHEN (NEW.product_id IS DISTINCT FROM OLD.product_id
        OR (OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid)
        OR NEW.shipment_id IS DISTINCT FROM OLD.shipment_id
        OR (OLD.ever_shipped AND NOT NEW.ever_shipped))
  EXECUTE FUNCTION units_keep_identity();

-- 3. Claims that ended before this migration are released as the ledger now releases them
--    when a booking ends (ledger/handlers/shipments.ts, releaseClaims).
UPDATE units u SET gpu_uuid = NULL
FROM shipments s
WHERE s.id = u.shipment_id AND s.status IN ('cancelled', 'expired') AND NOT u.ever_shipped AND u.gpu_uuid IS NOT NULL;

-- 4. The full re-check's clauses for these rules (a unit marked against its shipments, a
--    released claim still holding a GPU UUID) are in migration 034, which restates
--    ledger_violations() whole.

-- Five more of the ledger's rules held in the database as well as in the code.
--
-- How they bind rows that exist already. Rows written before this migration may break rules
-- 2 and 3 (the code let them through until now). A CHECK, even one added NOT VALID (which
-- only skips checking the rows already there), is checked again on every later UPDATE of
-- such a row, whatever the UPDATE changes: an old shipment of 100,001 units could then no
-- longer be cancelled or expired (and the sweep that tried would be refused whole, leaving
-- every booking due beside it unexpired), nor an old unit with an upper-case GPU UUID
-- shipped, delivered or deployed. So these rules are triggers that judge a value when it is
-- written new (a row inserted, or the column changed), and leave an old row to finish its
-- life as the code allowed it then. Every trigger here is a row trigger whose WHEN the
-- executor evaluates without calling the function (as 019, 022 and 023's): the rows the
-- ledger writes every batch pay a comparison or two; only a refused row calls its function.
-- And AFTER INSERT, never BEFORE INSERT: a batch writes changed rows as INSERT … ON CONFLICT
-- DO UPDATE (store/batch-writes.ts), and BEFORE INSERT triggers fire for those rows too,
-- old ones included, before the conflict sends them to the UPDATE.
--
-- Each refusal is a check_violation naming its rule as the constraint, which the ledger turns
-- into a refusal with that rule (ledger/refusals.ts, toRefusal).

-- 1. Each side's licence is its own country's act: an export licence is issued by an
--    authority of its origin, an import licence by one of its destination
--    (ledger/handlers/licences.ts, licence-authority). Both licences must cover every
--    shipment (invariant 3) because each country decides its own side; an authority that
--    could license the other side too would decide both alone. Checked when a licence is
--    made, and if its authority, direction or route ever changes (no amendment changes them;
--    an UPDATE by hand could). An organisation's country never changes in the ledger.
CREATE FUNCTION licences_authority_country() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE authority_country text; licensing_country text;
BEGIN
  SELECT country INTO authority_country FROM organisations WHERE id = NEW.authority_org_id;
  licensing_country := CASE NEW.direction WHEN 'export' THEN NEW.origin ELSE NEW.destination END;
  IF authority_country IS DISTINCT FROM licensing_country THEN
    RAISE EXCEPTION 'licence % is an % licence for % → %: it is issued by an authority of its %, %; % is an authority of %',
      NEW.id, NEW.direction, NEW.origin, NEW.destination, CASE NEW.direction WHEN 'export' THEN 'origin' ELSE 'destination' END,
      licensing_country, NEW.authority_org_id, coalesce(authority_country, 'no country')
      USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_authority_country';
  END IF;
  RETURN NEW;
END $$;
-- Licences are made rarely (one lookup of the authority's row each); no WHEN.
CREATE TRIGGER licences_authority_country_insert AFTER INSERT ON licences FOR EACH ROW
  EXECUTE FUNCTION licences_authority_country();
CREATE TRIGGER licences_authority_country_update BEFORE UPDATE OF authority_org_id, direction, origin, destination ON licences FOR EACH ROW
  WHEN (NEW.authority_org_id IS DISTINCT FROM OLD.authority_org_id OR NEW.direction IS DISTINCT FROM OLD.direction
        OR NEW.origin IS DISTINCT FROM OLD.origin OR NEW.destination IS DISTINCT FROM OLD.destination)
  EXECUTE FUNCTION licences_authority_country();

-- 2. A shipment carries at most 100,000 units (core/limits.ts shipmentSerialsMax; the ledger
--    refuses more at booking, ledger/schemas.ts): it ships only with a serial for every unit,
--    so this bounds its manifest, however many attaches add to it (001's CHECK keeps
--    serial_count <= units). A shipment's units never change after booking.
CREATE FUNCTION shipments_units_max() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'shipment % is of % units; a shipment carries at most 100000, the most serials its manifest lists', NEW.id, NEW.units
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_units_max';
END $$;
CREATE TRIGGER shipments_units_max_insert AFTER INSERT ON shipments FOR EACH ROW
  WHEN (NEW.units > 100000)
  EXECUTE FUNCTION shipments_units_max();
CREATE TRIGGER shipments_units_max_update BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN (NEW.units > 100000 AND NEW.units IS DISTINCT FROM OLD.units)
  EXECUTE FUNCTION shipments_units_max();

-- 3. A GPU UUID is stored in one spelling, `GPU-` and lower-case hex (ledger/schemas.ts
--    normalises it), so that the unique index units_gpu_uuid_key (invariant 4: one GPU,
--    one unit) sees GPU-ABCDEF12-… and GPU-abcdef12-… as the one GPU they are. Units without
--    a GPU UUID (most, at manifest time) stop at the first test; for one with it, the WHEN's
--    lower() cost 0.5–1.5 µs a row (the expression over 100,000 GPU UUIDs, 51–184 ms against
--    7–35 ms without it, on a shared two-core host; a CHECK would pay the same), cheaper than
--    a regular expression for upper-case letters past the prefix. A GPU UUID never changes
--    once known (019), so an UPDATE can only give one to a unit that had none.
CREATE FUNCTION units_gpu_uuid_canonical() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'unit % has GPU UUID %; a GPU UUID is stored as GPU- and lower-case hex (%)', NEW.serial, NEW.gpu_uuid, 'GPU-' || lower(substr(NEW.gpu_uuid, 5))
    USING ERRCODE = 'check_violation', CONSTRAINT = 'units_gpu_uuid_canonical';
END $$;
CREATE TRIGGER units_gpu_uuid_canonical_insert AFTER INSERT ON units FOR EACH ROW
  WHEN (NEW.gpu_uuid IS NOT NULL AND NEW.gpu_uuid <> 'GPU-' || lower(substr(NEW.gpu_uuid, 5)))
  EXECUTE FUNCTION units_gpu_uuid_canonical();
CREATE TRIGGER units_gpu_uuid_canonical_update BEFORE UPDATE ON units FOR EACH ROW
  WHEN (NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid AND NEW.gpu_uuid <> 'GPU-' || lower(substr(NEW.gpu_uuid, 5)))
  EXECUTE FUNCTION units_gpu_uuid_canonical();

-- 4. A shipment's status moves only as the ledger moves it (ledger/handlers/shipments.ts and
--    sweep.ts): booked → shipped, cancelled or expired; shipped → cleared; cleared →
--    delivered. No other handler changes it (units.ts and manifests.ts leave it). A batch
--    writes a shipment's row once, in the status its last command left it, so one that
--    ships, clears and delivers it at once goes from booked to delivered: the steps allowed
--    are every chain of those (booked → anything; shipped → cleared or delivered; cleared →
--    delivered). Leaving delivered, cancelled and expired is 020's (shipments_stay_ended),
--    and left out here so the two never refuse the same row.
--    And a shipment leaves 'booked' for shipped (or, so written at once, for cleared or
--    delivered) only with a serial for every unit (the code's manifest-complete). Until now
--    an UPDATE could ship a booking with no manifest, or take a shipped one back to booked
--    to book its units again.
CREATE FUNCTION shipments_status_steps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'booked' THEN
    RAISE EXCEPTION 'shipment % lists % of its % serials; it cannot become % without a serial for every unit', OLD.id, NEW.serial_count, NEW.units, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_manifest_complete';
  END IF;
  RAISE EXCEPTION 'shipment % is %; it cannot become % (a shipment moves booked → shipped → cleared → delivered, or from booked to cancelled or expired)', OLD.id, OLD.status, NEW.status
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_status_steps';
END $$;
CREATE TRIGGER shipments_status_steps BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN (NEW.status IS DISTINCT FROM OLD.status
        AND OLD.status NOT IN ('delivered', 'cancelled', 'expired')
        AND CASE OLD.status
              WHEN 'booked' THEN NEW.status IN ('shipped', 'cleared', 'delivered') AND NEW.serial_count <> NEW.units
              WHEN 'shipped' THEN NEW.status NOT IN ('cleared', 'delivered')
              WHEN 'cleared' THEN NEW.status <> 'delivered'
              ELSE true
            END)
  EXECUTE FUNCTION shipments_status_steps();

-- 5. A licence's status moves only as the ledger moves it (ledger/handlers/licences.ts,
--    shipments.ts and sweep.ts): draft → issued; issued ↔ suspended; issued or suspended →
--    exhausted (its last units shipped, an amendment cutting it to what has shipped, a
--    reinstatement of one so cut); exhausted → issued (an amendment giving it units again);
--    draft, issued, suspended or exhausted → revoked; issued, suspended or exhausted →
--    surrendered; issued or suspended → expired (the sweep). As for shipments, a batch
--    writes the row once, so every chain of those is allowed: which is every change except
--    out of revoked, surrendered or expired (nothing brings a licence back from them) and
--    back to draft. And whichever way it comes, a licence is exhausted exactly when every
--    authorised unit has shipped, and issued only when some have not (statusAfterUse,
--    statusAfterAmendment): until now an UPDATE could issue a revoked licence again, or
--    exhaust one with units left.
CREATE FUNCTION licences_status_steps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IN ('revoked', 'surrendered', 'expired') OR NEW.status = 'draft' THEN
    RAISE EXCEPTION 'licence % is %; it cannot become % (nothing brings a licence back to draft, or from revoked, surrendered or expired)', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_status_steps';
  END IF;
  RAISE EXCEPTION 'licence % has shipped % of its % units; it cannot become % (a licence is exhausted exactly when every unit has shipped)', OLD.id, NEW.shipped_units, NEW.authorised_units, NEW.status
    USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_status_exhausted';
END $$;
CREATE TRIGGER licences_status_steps BEFORE UPDATE ON licences FOR EACH ROW
  WHEN (NEW.status IS DISTINCT FROM OLD.status
        AND (OLD.status IN ('revoked', 'surrendered', 'expired')
             OR NEW.status = 'draft'
             OR (NEW.status = 'exhausted' AND NEW.shipped_units <> NEW.authorised_units)
             OR (NEW.status = 'issued' AND NEW.shipped_units = NEW.authorised_units)))
  EXECUTE FUNCTION licences_status_steps();

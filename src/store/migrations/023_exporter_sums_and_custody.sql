-- Three more of the ledger's rules held in the database as well as in the code.
--
-- 1. The exporter a licence lets ship (invariant 3). The ledger books only under an export
--    licence the exporter holds and an import licence that it holds or that names it as a
--    supplier, and since this version checks the same again when the shipment ships
--    (ledger/handlers/shipments.ts, letsExporterShip and checkExporter): an amendment may
--    drop the supplier in between. The booking check of 015 held the export side only; it
--    now holds the import side too, as rule 'licence-exporter'. The clause is one lookup
--    of licence_parties' primary key per group of new shipments, beside the two that
--    licence-recipient already makes. Otherwise 015's text, unchanged.
CREATE OR REPLACE FUNCTION shipments_check_licences() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  PERFORM 1
  FROM (
    SELECT export_allocation_id, import_allocation_id, product_id, exporter_org_id, recipient_org_id, origin, destination,
           min(booked_at) AS first_booked, max(booked_at) AS last_booked, max(units) AS most_units
    FROM new_shipments GROUP BY 1, 2, 3, 4, 5, 6, 7
  ) n
  LEFT JOIN organisations e ON e.id = n.exporter_org_id
  LEFT JOIN organisations r ON r.id = n.recipient_org_id
  LEFT JOIN products p ON p.id = n.product_id
  LEFT JOIN allocations ea ON ea.id = n.export_allocation_id
  LEFT JOIN allocations ia ON ia.id = n.import_allocation_id
  LEFT JOIN licences el ON el.id = ea.licence_id
  LEFT JOIN licences il ON il.id = ia.licence_id
  WHERE e.id IS NULL OR r.id IS NULL OR p.id IS NULL OR ea.id IS NULL OR ia.id IS NULL
     OR el.direction <> 'export' OR el.holder_org_id <> n.exporter_org_id OR il.direction <> 'import'
     OR NOT (il.holder_org_id = n.exporter_org_id OR EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = il.id AND lp.org_id = n.exporter_org_id AND lp.role = 'supplier'))
     OR el.status <> 'issued' OR il.status <> 'issued'
     OR n.first_booked < el.valid_from OR n.last_booked >= el.valid_to OR n.first_booked < il.valid_from OR n.last_booked >= il.valid_to
     OR NOT (n.product_id = ANY (el.product_ids)) OR NOT (n.product_id = ANY (il.product_ids))
     OR el.origin <> n.origin OR el.destination <> n.destination OR il.origin <> n.origin OR il.destination <> n.destination
     OR ea.recipient_org_id <> n.recipient_org_id OR ia.recipient_org_id <> n.recipient_org_id
     OR NOT (el.holder_org_id = n.recipient_org_id OR EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = el.id AND lp.org_id = n.recipient_org_id AND lp.role <> 'supplier'))
     OR NOT (il.holder_org_id = n.recipient_org_id OR EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = il.id AND lp.org_id = n.recipient_org_id AND lp.role <> 'supplier'))
     OR (ea.period_start IS NOT NULL AND ((n.first_booked AT TIME ZONE 'UTC')::date < ea.period_start OR (n.last_booked AT TIME ZONE 'UTC')::date > ea.period_end))
     OR (ia.period_start IS NOT NULL AND ((n.first_booked AT TIME ZONE 'UTC')::date < ia.period_start OR (n.last_booked AT TIME ZONE 'UTC')::date > ia.period_end))
     OR jsonb_path_exists(el.conditions, '$[*] ? (@.kind == "max_units_per_shipment" && @.value < $units)', jsonb_build_object('units', n.most_units))
     OR jsonb_path_exists(il.conditions, '$[*] ? (@.kind == "max_units_per_shipment" && @.value < $units)', jsonb_build_object('units', n.most_units))
     OR (el.conditions @> '[{"kind": "end_user_kyc_required"}]' AND NOT (el.authority_org_id = ANY (r.kyc_verified_by)))
     OR (il.conditions @> '[{"kind": "end_user_kyc_required"}]' AND NOT (il.authority_org_id = ANY (r.kyc_verified_by)))
  LIMIT 1;
  IF NOT FOUND THEN RETURN NULL; END IF;

  -- A group failed: find the first shipment concerned, one row at a time, and the first
  -- rule it breaks in the order the ledger tries them.
  SELECT * INTO bad FROM (
    SELECT n.id,
           CASE WHEN e.id IS NULL OR r.id IS NULL OR p.id IS NULL OR ea.id IS NULL OR ia.id IS NULL THEN 'reference'
                WHEN el.direction <> 'export' OR el.holder_org_id <> n.exporter_org_id THEN 'export-holder'
                WHEN il.direction <> 'import' THEN 'import-direction'
                WHEN NOT (il.holder_org_id = n.exporter_org_id OR EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = il.id AND lp.org_id = n.exporter_org_id AND lp.role = 'supplier'))
                  THEN 'licence-exporter'
                WHEN el.status <> 'issued' OR il.status <> 'issued'
                  OR n.booked_at < el.valid_from OR n.booked_at >= el.valid_to OR n.booked_at < il.valid_from OR n.booked_at >= il.valid_to
                  OR NOT (n.product_id = ANY (el.product_ids)) OR NOT (n.product_id = ANY (il.product_ids))
                  OR el.origin <> n.origin OR el.destination <> n.destination OR il.origin <> n.origin OR il.destination <> n.destination
                  OR ea.recipient_org_id <> n.recipient_org_id OR ia.recipient_org_id <> n.recipient_org_id THEN 'licence'
                WHEN NOT (el.holder_org_id = n.recipient_org_id OR EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = el.id AND lp.org_id = n.recipient_org_id AND lp.role <> 'supplier'))
                  OR NOT (il.holder_org_id = n.recipient_org_id OR EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = il.id AND lp.org_id = n.recipient_org_id AND lp.role <> 'supplier'))
                  THEN 'licence-recipient'
                WHEN (ea.period_start IS NOT NULL AND ((n.booked_at AT TIME ZONE 'UTC')::date < ea.period_start OR (n.booked_at AT TIME ZONE 'UTC')::date > ea.period_end))
                  OR (ia.period_start IS NOT NULL AND ((n.booked_at AT TIME ZONE 'UTC')::date < ia.period_start OR (n.booked_at AT TIME ZONE 'UTC')::date > ia.period_end))
                  THEN 'allocation-period'
                WHEN jsonb_path_exists(el.conditions, '$[*] ? (@.kind == "max_units_per_shipment" && @.value < $units)', jsonb_build_object('units', n.units))
                  OR jsonb_path_exists(il.conditions, '$[*] ? (@.kind == "max_units_per_shipment" && @.value < $units)', jsonb_build_object('units', n.units))
                  THEN 'max_units_per_shipment'
                WHEN (el.conditions @> '[{"kind": "end_user_kyc_required"}]' AND NOT (el.authority_org_id = ANY (r.kyc_verified_by)))
                  OR (il.conditions @> '[{"kind": "end_user_kyc_required"}]' AND NOT (il.authority_org_id = ANY (r.kyc_verified_by)))
                  THEN 'end_user_kyc_required'
           END AS failed,
           coalesce(el.id, ea.licence_id) AS export_licence, coalesce(il.id, ia.licence_id) AS import_licence
    FROM new_shipments n
    LEFT JOIN organisations e ON e.id = n.exporter_org_id
    LEFT JOIN organisations r ON r.id = n.recipient_org_id
    LEFT JOIN products p ON p.id = n.product_id
    LEFT JOIN allocations ea ON ea.id = n.export_allocation_id
    LEFT JOIN allocations ia ON ia.id = n.import_allocation_id
    LEFT JOIN licences el ON el.id = ea.licence_id
    LEFT JOIN licences il ON il.id = ia.licence_id
  ) checked
  WHERE failed IS NOT NULL
  ORDER BY id
  LIMIT 1;
  IF bad.failed = 'reference' THEN
    RAISE EXCEPTION 'shipment % names an organisation, product or allocation that does not exist', bad.id USING ERRCODE = 'foreign_key_violation';
  END IF;
  RAISE EXCEPTION 'invariant 3: shipment % booked under licences % and % that do not cover it (%)', bad.id, bad.export_licence, bad.import_licence, bad.failed
    USING ERRCODE = 'check_violation';
END $$;

--    And when it ships. The booking check fires on INSERT only; a shipment that leaves
--    'booked' for shipped (or, a batch that also clears and delivers it writing its row
--    once, for cleared or delivered) is checked here for the exporter rule alone. The rest
--    of what shipping re-checks stays with the code: validity is judged at the command's
--    time, which the row does not hold, and a licence this very shipment exhausts is no
--    longer 'issued' by the time the shipment's row is written (licences go first). A row
--    trigger whose WHEN the executor evaluates without calling the function: bookings,
--    manifests and deliveries of shipped shipments pay one comparison; shipping pays three
--    primary-key lookups a shipment, not a unit.
CREATE FUNCTION shipments_check_exporter() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE export_licence licences%ROWTYPE; import_licence licences%ROWTYPE; failed text;
BEGIN
  SELECT l.* INTO export_licence FROM allocations a JOIN licences l ON l.id = a.licence_id WHERE a.id = NEW.export_allocation_id;
  SELECT l.* INTO import_licence FROM allocations a JOIN licences l ON l.id = a.licence_id WHERE a.id = NEW.import_allocation_id;
  IF export_licence.direction IS DISTINCT FROM 'export' OR export_licence.holder_org_id IS DISTINCT FROM NEW.exporter_org_id THEN
    failed := 'export-holder';
  ELSIF import_licence.holder_org_id IS DISTINCT FROM NEW.exporter_org_id
        AND NOT EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = import_licence.id AND lp.org_id = NEW.exporter_org_id AND lp.role = 'supplier') THEN
    failed := 'licence-exporter';
  ELSE
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'invariant 3: shipment % cannot become %: licences % and % do not let its exporter % ship it (%)',
    NEW.id, NEW.status, export_licence.id, import_licence.id, NEW.exporter_org_id, failed
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_check_exporter';
END $$;
CREATE TRIGGER shipments_check_exporter BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN (OLD.status = 'booked' AND NEW.status IN ('shipped', 'cleared', 'delivered'))
  EXECUTE FUNCTION shipments_check_exporter();

-- 2. Invariant 1 when a licence row changes. 001's check fires on allocation writes only,
--    and the licence's own CHECK compares its counter with its authorised units, not with
--    the allocations: an UPDATE of a licence's authorised_units and allocated_units
--    together, below what its allocations sum to, went through. The same check now runs
--    for every licence whose counter or authorised units change (or that is made with a
--    counter above 0), with the same words as 001's.
--
--    Deferred to COMMIT: a batch writes a licence (its counter already counting a new or
--    resized allocation) before the allocation (ledger-tables.ts, parents first), so at the
--    end of the licence's statement the two disagree for a moment. A constraint trigger is
--    a row trigger, and its WHEN is evaluated when the row is written: a licence whose two
--    columns did not change (shipping counts shipped_units, a suspension sets its status)
--    queues nothing. With the CHECK of 001 (allocated_units <= authorised_units), the
--    counter being the true sum is also what makes the sum at most the authorised units.
CREATE FUNCTION licences_check_sum() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE current_licence licences%ROWTYPE; total bigint;
BEGIN
  -- The row as it stands at COMMIT, not as this event saw it: a later statement of the
  -- transaction may have changed it again.
  SELECT * INTO current_licence FROM licences WHERE id = NEW.id;
  SELECT coalesce(sum(units), 0) INTO total FROM allocations WHERE licence_id = NEW.id;
  IF total <> current_licence.allocated_units OR total > current_licence.authorised_units THEN
    RAISE EXCEPTION 'invariant 1: licence % allocations sum to % but the licence records % (authorised %)',
      current_licence.id, total, current_licence.allocated_units, current_licence.authorised_units
      USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_check_sum';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER licences_check_sum_update AFTER UPDATE ON licences
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.allocated_units IS DISTINCT FROM NEW.allocated_units OR OLD.authorised_units IS DISTINCT FROM NEW.authorised_units)
  EXECUTE FUNCTION licences_check_sum();
CREATE CONSTRAINT TRIGGER licences_check_sum_insert AFTER INSERT ON licences
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.allocated_units <> 0)
  EXECUTE FUNCTION licences_check_sum();

-- 3. A unit's custody only moves forward along its shipment: licensed → in transit →
--    delivered → deployed → an end (returned, lost, decommissioned), as the ledger moves it
--    (shipments.ts, applyStep; units.ts). It starts again only when the unit is listed in
--    another shipment (manifests.ts, attachSerials: a returned or still-licensed unit of a
--    cancelled or expired shipment becomes 'licensed' there, which 019 holds). Cancelling
--    or expiring a shipment moves no unit (its units stay 'licensed'), and no handler moves
--    one back. A batch writes a unit's row once, in the custody its last command left it
--    (list, ship and deliver in one batch: licensed to delivered), so any step forward is
--    allowed, and between two ends none: a returned unit is lost or decommissioned only
--    after it is listed again.
--
--    The order is the position in one array, ends last and equal. A row trigger whose WHEN
--    the executor evaluates without calling the function (as 022's): shipping or
--    delivering 100,000 units pays two array lookups a row; only a step back calls it.
--    Measured: 100,000 units updated to in transit then to delivered, 3,042 ms with the
--    trigger and 3,052 ms without (medians of 6 alternating runs, 2,400–3,206 ms in all, on
--    a shared two-core host): inside the spread.
--    Decommissioned and lost units are 022's (never change at all), so the two triggers
--    never refuse the same row.
CREATE FUNCTION units_custody_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'unit % is %; its custody cannot become % (custody only moves forward, and starts again only in another shipment)', OLD.serial, OLD.custody, NEW.custody
    USING ERRCODE = 'check_violation', CONSTRAINT = 'units_custody_forward';
END $$;
CREATE TRIGGER units_custody_forward BEFORE UPDATE ON units FOR EACH ROW
  WHEN (NEW.custody IS DISTINCT FROM OLD.custody
        AND NEW.shipment_id IS NOT DISTINCT FROM OLD.shipment_id
        AND OLD.custody NOT IN ('decommissioned', 'lost')
        AND coalesce(array_position(ARRAY['licensed', 'in_transit', 'delivered', 'deployed'], NEW.custody), 5)
            <= coalesce(array_position(ARRAY['licensed', 'in_transit', 'delivered', 'deployed'], OLD.custody), 5))
  EXECUTE FUNCTION units_custody_forward();

-- Two of the ledger's rules changed, held in the database as in the code, after a review of the domain rules.
--
-- How they bind rows that exist already: as 025's, a trigger judges a value when it is
-- written new (a row inserted, or the column changed), and leaves an old row to finish its
-- life as the code allowed it then; so no CHECK, which every later UPDATE of an old row would
-- have to pass. Each refusal is a check_violation naming its rule as the constraint, which
-- the ledger turns into a refusal with that rule (ledger/refusals.ts, toRefusal).

-- 1. A licence covers units leaving one country for another: its origin and destination
--    differ (ledger/handlers/licences.ts, licence-cross-border). Each side of a shipment is
--    licensed by its own country's authority (025, licences_authority_country) and both
--    licences must cover it (invariant 3); on a route inside one country that country's one
--    authority would license both sides, and an organisation that is both exporter and
--    recipient could ship to itself. Checked when a licence is made, and if its route ever
--    changes (no amendment changes it; an UPDATE by hand could).
--    AFTER INSERT, not BEFORE (as 025 says): a batch writes changed rows as INSERT … ON
--    CONFLICT DO UPDATE (store/batch-writes.ts), and BEFORE INSERT triggers fire for those
--    rows too, before the conflict sends them to the UPDATE, so an old licence on one
--    country's route could then no longer be suspended, revoked or expired. Its route
--    rewritten as it was is no change, and the UPDATE trigger's WHEN lets it through.
CREATE FUNCTION licences_cross_border() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'licence % is an % licence for % → %: its origin and destination are one country, so one authority would license both sides of its shipments',
    NEW.id, NEW.direction, NEW.origin, NEW.destination
    USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_cross_border';
END $$;
-- Row triggers whose WHEN the executor evaluates without calling the function: a licence
-- written pays one comparison; only a refused one calls it.
CREATE TRIGGER licences_cross_border_insert AFTER INSERT ON licences FOR EACH ROW
  WHEN (NEW.origin = NEW.destination)
  EXECUTE FUNCTION licences_cross_border();
CREATE TRIGGER licences_cross_border_update BEFORE UPDATE OF origin, destination ON licences FOR EACH ROW
  WHEN (NEW.origin = NEW.destination AND (NEW.origin IS DISTINCT FROM OLD.origin OR NEW.destination IS DISTINCT FROM OLD.destination))
  EXECUTE FUNCTION licences_cross_border();

-- 2. The exporter an import licence lets ship (invariant 3, rule 'licence-exporter'): the
--    exporters it names as suppliers, and no other, its holder included. Until now an
--    exporter that held an import licence could book and ship under it without being named
--    (023), while only its suppliers read its allocations (ledger/handlers/allocations.ts
--    allocationOrgIds, store/visibility.ts shipsUnder): the exporter booked under an
--    allocation it could not see. The ledger (ledger/handlers/shipments.ts, letsExporterShip)
--    now books and ships under an import licence only for the exporters it names as
--    suppliers; an export licence is still its holder's. The booking check is 023's text
--    without the holder's arm, in both its places; the shipping check is 023's without it.
--    Shipments booked before this migration under an import licence their exporter held but
--    did not name are not refused again (the booking check fires on INSERT); they are refused
--    when they ship, as the ledger refuses them. ledger_violations() (034) does not re-check
--    the import licence's exporter, so it has nothing to change.
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
     OR NOT EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = il.id AND lp.org_id = n.exporter_org_id AND lp.role = 'supplier')
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
                WHEN NOT EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = il.id AND lp.org_id = n.exporter_org_id AND lp.role = 'supplier')
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

CREATE OR REPLACE FUNCTION shipments_check_exporter() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE export_licence licences%ROWTYPE; import_licence licences%ROWTYPE; failed text;
BEGIN
  SELECT l.* INTO export_licence FROM allocations a JOIN licences l ON l.id = a.licence_id WHERE a.id = NEW.export_allocation_id;
  SELECT l.* INTO import_licence FROM allocations a JOIN licences l ON l.id = a.licence_id WHERE a.id = NEW.import_allocation_id;
  IF export_licence.direction IS DISTINCT FROM 'export' OR export_licence.holder_org_id IS DISTINCT FROM NEW.exporter_org_id THEN
    failed := 'export-holder';
  ELSIF NOT EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = import_licence.id AND lp.org_id = NEW.exporter_org_id AND lp.role = 'supplier') THEN
    failed := 'licence-exporter';
  ELSE
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'invariant 3: shipment % cannot become %: licences % and % do not let its exporter % ship it (%)',
    NEW.id, NEW.status, export_licence.id, import_licence.id, NEW.exporter_org_id, failed
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_check_exporter';
END $$;

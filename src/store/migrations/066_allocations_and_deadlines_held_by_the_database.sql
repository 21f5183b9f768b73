-- Rules the ledger holds in code that the database did not hold again (s32 review), for a
-- writer that goes around the ledger. Each fires where the code's rule does, and says which.
--
-- 1. A booking's deadline is within both licences' validity (ledger/handlers/shipments.ts
--    checkDeadlineWithinValidity, rule booking-deadline): a booking cannot outlast its
--    licences. 035's booking check, whole, with the group's latest deadline in its first pass
--    and the rule last in its second, where the ledger tries it (after every other check of
--    the licences). Like the rest of the check it fires on INSERT: a validity an amendment
--    shortens later is the amendment's to judge (the sweep expires what it leaves behind).
CREATE OR REPLACE FUNCTION shipments_check_licences()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE bad record;
BEGIN
  PERFORM 1
  FROM (
    SELECT export_allocation_id, import_allocation_id, product_id, exporter_org_id, recipient_org_id, origin, destination,
           min(booked_at) AS first_booked, max(booked_at) AS last_booked, max(units) AS most_units, max(deadline) AS last_deadline
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
     OR n.last_deadline > el.valid_to OR n.last_deadline > il.valid_to
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
                WHEN n.deadline > el.valid_to OR n.deadline > il.valid_to THEN 'booking-deadline'
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
END $function$;

-- 2. Units are handed out (an allocation made, or grown) only under a licence that is a draft
--    or issued, that names the recipient, and, for a tranche, only for days within its
--    validity (ledger/handlers/allocations.ts checkAllocatable and checkNamesRecipient, rules
--    licence-status, licence-recipient and allocation-period): until now an allocation written
--    by hand under a revoked licence, or for a period outside its validity, passed every
--    trigger as long as the licence's sum matched. A tranche's period never changes after it
--    is made, so 028's allocations_keep_licence now holds it too. Shrinking is allowed under
--    any licence, as in the ledger (an authority claws back what nobody reserved).
--
--    What the code judges against the command's time (a validity or a period already ended) is
--    the code's alone: an allocation row carries no time. Tables are written licences first
--    (store/ledger-tables.ts tableOrder), so the check reads the batch's licence as the batch
--    leaves it; a batch that grows an allocation and then suspends its licence is refused
--    whole, and the sequencer commits it again in halves, each command with the answer the
--    ledger gave it (as it does for a booking followed by a suspension).
--
--    The WHEN on UPDATE is false for every booking's change of reserved or shipped units, so
--    the booking path pays a comparison a row, and no call.
CREATE FUNCTION allocations_handed_out() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE licence record; first_day date; last_day date;
BEGIN
  SELECT l.id, l.status, l.valid_from, l.valid_to, l.holder_org_id INTO licence FROM licences l WHERE l.id = NEW.licence_id;
  IF licence.status NOT IN ('draft', 'issued') THEN
    RAISE EXCEPTION 'allocation % hands out units of licence %, which is %: only a draft or issued licence hands out units', NEW.id, NEW.licence_id, licence.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'allocations_handed_out';
  END IF;
  IF NOT (licence.holder_org_id = NEW.recipient_org_id
          OR EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = licence.id AND lp.org_id = NEW.recipient_org_id AND lp.role <> 'supplier')) THEN
    RAISE EXCEPTION 'allocation % hands out units of licence % to %, which the licence does not name as holder, consignee or end user', NEW.id, NEW.licence_id, NEW.recipient_org_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'allocations_handed_out';
  END IF;
  -- The UTC days on which a booking could be made: valid_from's, through the day of the instant
  -- before valid_to (allocations.ts validityDays).
  first_day := (licence.valid_from AT TIME ZONE 'UTC')::date;
  last_day := ((licence.valid_to - interval '1 millisecond') AT TIME ZONE 'UTC')::date;
  IF NEW.period_start IS NOT NULL AND (NEW.period_start < first_day OR NEW.period_end > last_day) THEN
    RAISE EXCEPTION 'allocation % is for the period % to %, not within the validity of licence %, % to %', NEW.id, NEW.period_start, NEW.period_end, NEW.licence_id, first_day, last_day
      USING ERRCODE = 'check_violation', CONSTRAINT = 'allocations_handed_out';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER allocations_handed_out_insert AFTER INSERT ON allocations FOR EACH ROW EXECUTE FUNCTION allocations_handed_out();
CREATE TRIGGER allocations_handed_out_update AFTER UPDATE ON allocations FOR EACH ROW
  WHEN (NEW.units > OLD.units)
  EXECUTE FUNCTION allocations_handed_out();

DROP TRIGGER allocations_keep_licence ON allocations;
CREATE OR REPLACE FUNCTION allocations_keep_licence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.period_start, NEW.period_end) IS DISTINCT FROM (OLD.period_start, OLD.period_end) THEN
    RAISE EXCEPTION 'allocation % is for the period % to %; a tranche keeps its period (its shipments were booked on its days)',
      OLD.id, coalesce(OLD.period_start::text, 'none'), coalesce(OLD.period_end::text, 'none')
      USING ERRCODE = 'check_violation', CONSTRAINT = 'allocations_keep_licence';
  END IF;
  RAISE EXCEPTION 'allocation % is of licence % for %; it cannot become one of licence % for % (its shipments were booked under the first)',
    OLD.id, OLD.licence_id, OLD.recipient_org_id, NEW.licence_id, NEW.recipient_org_id
    USING ERRCODE = 'check_violation', CONSTRAINT = 'allocations_keep_licence';
END $$;
CREATE TRIGGER allocations_keep_licence BEFORE UPDATE ON allocations FOR EACH ROW
  WHEN ((NEW.licence_id, NEW.recipient_org_id, NEW.period_start, NEW.period_end) IS DISTINCT FROM (OLD.licence_id, OLD.recipient_org_id, OLD.period_start, OLD.period_end))
  EXECUTE FUNCTION allocations_keep_licence();

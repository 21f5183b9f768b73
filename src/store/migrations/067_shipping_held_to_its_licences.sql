-- A shipment that ships is held again, in the database, to what its licences still cover (s32
-- review): the ledger's checkShippable (ledger/handlers/shipment-checks.ts) runs checkCovers
-- again when the units leave, since a licence may have been amended in between to drop the
-- product or the recipient, or to add a condition; the database held only 035's exporter
-- check there. Now, on booked → shipped (or cleared, delivered), each licence must also still
-- name the product and the recipient (as holder, consignee or end user), allow the shipment's
-- units (max_units_per_shipment) and, where it requires end-user KYC, find the recipient
-- verified by its authority: rules licence-product, licence-recipient and licence-condition,
-- as the ledger names them. The route and the allocations' recipient never change after the
-- booking (035, 028), so the booking check stands for them. The licence's status and validity
-- at that time stay the ledger's to judge (023): a row carries no time, and the licence this
-- shipment exhausts is no longer issued when its row is written.
--
-- The trigger and its WHEN are 035's: only a shipment leaving booked calls the function.
CREATE OR REPLACE FUNCTION shipments_check_exporter() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  export_licence licences%ROWTYPE;
  import_licence licences%ROWTYPE;
  covering licences%ROWTYPE;
  kyc text[];
  failed text;
BEGIN
  SELECT l.* INTO export_licence FROM allocations a JOIN licences l ON l.id = a.licence_id WHERE a.id = NEW.export_allocation_id;
  SELECT l.* INTO import_licence FROM allocations a JOIN licences l ON l.id = a.licence_id WHERE a.id = NEW.import_allocation_id;
  IF export_licence.direction IS DISTINCT FROM 'export' OR export_licence.holder_org_id IS DISTINCT FROM NEW.exporter_org_id THEN
    failed := 'export-holder';
  ELSIF NOT EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = import_licence.id AND lp.org_id = NEW.exporter_org_id AND lp.role = 'supplier') THEN
    failed := 'licence-exporter';
  END IF;
  IF failed IS NOT NULL THEN
    RAISE EXCEPTION 'invariant 3: shipment % cannot become %: licences % and % do not let its exporter % ship it (%)',
      NEW.id, NEW.status, export_licence.id, import_licence.id, NEW.exporter_org_id, failed
      USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_check_exporter';
  END IF;
  SELECT o.kyc_verified_by INTO kyc FROM organisations o WHERE o.id = NEW.recipient_org_id;
  -- Export side first, as the ledger checks them.
  FOREACH covering IN ARRAY ARRAY[export_licence, import_licence] LOOP
    IF NOT (NEW.product_id = ANY (covering.product_ids)) THEN
      failed := 'licence-product';
    ELSIF NOT (covering.holder_org_id = NEW.recipient_org_id
               OR EXISTS (SELECT 1 FROM licence_parties lp WHERE lp.licence_id = covering.id AND lp.org_id = NEW.recipient_org_id AND lp.role <> 'supplier')) THEN
      failed := 'licence-recipient';
    ELSIF jsonb_path_exists(covering.conditions, '$[*] ? (@.kind == "max_units_per_shipment" && @.value < $units)', jsonb_build_object('units', NEW.units)) THEN
      failed := 'licence-condition: max_units_per_shipment';
    ELSIF covering.conditions @> '[{"kind": "end_user_kyc_required"}]' AND NOT (covering.authority_org_id = ANY (coalesce(kyc, '{}'))) THEN
      failed := 'licence-condition: end_user_kyc_required';
    END IF;
    IF failed IS NOT NULL THEN
      RAISE EXCEPTION 'invariant 3: shipment % cannot become %: licence % no longer covers it (%)', NEW.id, NEW.status, covering.id, failed
        USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_check_exporter';
    END IF;
  END LOOP;
  RETURN NEW;
END $$;

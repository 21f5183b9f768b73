-- The shipments check of 004 in one pass: each new shipment joined once to both of its
-- allocations and licences (and its parties), instead of two queries. It refuses exactly
-- what 004 refused; the message names the rule that failed.
CREATE OR REPLACE FUNCTION shipments_check_licences() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  SELECT n.id,
         CASE WHEN e.id IS NULL OR r.id IS NULL OR p.id IS NULL OR ea.id IS NULL OR ia.id IS NULL THEN 'reference'
              WHEN el.direction <> 'export' OR el.holder_org_id <> n.exporter_org_id THEN 'export-holder'
              WHEN il.direction <> 'import' THEN 'import-direction'
              ELSE 'licence' END AS failed,
         coalesce(el.id, ea.licence_id) AS export_licence, coalesce(il.id, ia.licence_id) AS import_licence
    INTO bad
  FROM new_shipments n
  LEFT JOIN organisations e ON e.id = n.exporter_org_id
  LEFT JOIN organisations r ON r.id = n.recipient_org_id
  LEFT JOIN products p ON p.id = n.product_id
  LEFT JOIN allocations ea ON ea.id = n.export_allocation_id
  LEFT JOIN allocations ia ON ia.id = n.import_allocation_id
  LEFT JOIN licences el ON el.id = ea.licence_id
  LEFT JOIN licences il ON il.id = ia.licence_id
  WHERE e.id IS NULL OR r.id IS NULL OR p.id IS NULL OR ea.id IS NULL OR ia.id IS NULL
     OR el.direction <> 'export' OR el.holder_org_id <> n.exporter_org_id OR il.direction <> 'import'
     OR el.status <> 'issued' OR il.status <> 'issued'
     OR n.booked_at < el.valid_from OR n.booked_at >= el.valid_to OR n.booked_at < il.valid_from OR n.booked_at >= il.valid_to
     OR NOT (n.product_id = ANY (el.product_ids)) OR NOT (n.product_id = ANY (il.product_ids))
     OR el.origin <> n.origin OR el.destination <> n.destination OR il.origin <> n.origin OR il.destination <> n.destination
     OR ea.recipient_org_id <> n.recipient_org_id OR ia.recipient_org_id <> n.recipient_org_id
  LIMIT 1;
  IF NOT FOUND THEN RETURN NULL; END IF;
  IF bad.failed = 'reference' THEN
    RAISE EXCEPTION 'shipment % names an organisation, product or allocation that does not exist', bad.id USING ERRCODE = 'foreign_key_violation';
  END IF;
  RAISE EXCEPTION 'invariant 3: shipment % booked under licences % and % that do not cover it (%)', bad.id, bad.export_licence, bad.import_licence, bad.failed
    USING ERRCODE = 'check_violation';
END $$;

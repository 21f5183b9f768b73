-- The statement trigger that holds new and changed units to their product, recipient, shipment
-- and site (004's units_check_refs) read them by DISTINCT ON over those four columns: a sort of
-- every row the statement wrote, to name one serial per combination. A 100,000-serial manifest
-- writes 100,000 units in one statement, and so do shipping, clearing, delivering and deploying
-- its units: the sort took 95-112 ms of each, where a plain DISTINCT, which PostgreSQL hashes,
-- took 40-43 ms over the same 100,000 rows (EXPLAIN ANALYZE of both shapes, medians of 15, on
-- a 2-core host; s38). The combinations are what is checked; a serial is needed only for the
-- refusal, so it is looked up then, in the one combination found wrong.
CREATE OR REPLACE FUNCTION units_check_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
  named text;
BEGIN
  SELECT n.product_id, n.recipient_org_id, n.shipment_id, n.site_id INTO bad FROM (
    SELECT DISTINCT product_id, recipient_org_id, shipment_id, site_id FROM new_units
  ) n
  LEFT JOIN products p ON p.id = n.product_id
  LEFT JOIN organisations o ON o.id = n.recipient_org_id
  LEFT JOIN shipments s ON s.id = n.shipment_id
  LEFT JOIN sites st ON st.id = n.site_id
  WHERE p.id IS NULL OR o.id IS NULL OR s.id IS NULL OR (n.site_id IS NOT NULL AND st.id IS NULL)
  LIMIT 1;
  IF NOT FOUND THEN RETURN NULL; END IF;
  SELECT u.serial INTO named FROM new_units u
  WHERE u.product_id IS NOT DISTINCT FROM bad.product_id AND u.recipient_org_id IS NOT DISTINCT FROM bad.recipient_org_id
    AND u.shipment_id IS NOT DISTINCT FROM bad.shipment_id AND u.site_id IS NOT DISTINCT FROM bad.site_id
  LIMIT 1;
  RAISE EXCEPTION 'unit % names a product, organisation, shipment or site that does not exist', named USING ERRCODE = 'foreign_key_violation';
END $$;

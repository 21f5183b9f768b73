-- 1. KYC per authority. One kyc_verified flag that any authority could set let the import
--    authority satisfy (or withdraw) the end_user_kyc_required condition of an export
--    licence. Each organisation now lists the authorities that verified it; a condition
--    holds when the licence's own authority is in the list (ledger/handlers/shipments.ts).
--
--    The list is rebuilt from the record: every organisation.set_kyc event, in seq order,
--    the last one per (organisation, authority) deciding. The authority is the organisation
--    of the event's actor: its token's (events.actor is the token id), or, for an actor with
--    no token row, the organisation the event body records (canonical->actor->org). Only
--    authority organisations count: a set_kyc by the operator ('system') vouched for no
--    authority's review, and no licence could ever name it.
ALTER TABLE organisations ADD COLUMN kyc_verified_by text[] NOT NULL DEFAULT '{}'
  CHECK (array_position(kyc_verified_by, NULL) IS NULL);

WITH kyc_events AS (
  SELECT e.seq, convert_from(e.canonical, 'UTF8')::jsonb AS body, t.org_id AS token_org
  FROM events e LEFT JOIN tokens t ON t.id = e.actor
  WHERE e.kind = 'organisation.set_kyc'
), decisions AS (
  SELECT DISTINCT ON (target.id, authority.id) target.id AS org_id, authority.id AS authority_id, (k.body #>> '{input,verified}')::boolean AS verified
  FROM kyc_events k
  JOIN organisations target ON target.id = k.body #>> '{input,organisationId}'
  JOIN organisations authority ON authority.id = coalesce(k.token_org, k.body #>> '{actor,org}') AND 'authority' = ANY (authority.roles)
  ORDER BY target.id, authority.id, k.seq DESC
)
UPDATE organisations o SET kyc_verified_by = d.authorities
FROM (SELECT org_id, array_agg(authority_id ORDER BY authority_id) AS authorities FROM decisions WHERE verified GROUP BY org_id) d
WHERE o.id = d.org_id;

ALTER TABLE organisations DROP COLUMN kyc_verified;

-- 2. Invariant 3 in full. The check of 014 left four of the ledger's booking rules to the
--    code alone; it now holds them too, as checkCovers (ledger/handlers/shipments.ts) does:
--    - allocation-period: an allocation with a period covers bookings on its dates only
--      (booked_at's UTC date, from period_start to period_end inclusive);
--    - licence-recipient: each licence names the recipient as its holder (an import
--      licence names its holder so) or as a consignee or end user, never as a supplier;
--    - max_units_per_shipment: no shipment exceeds a condition's value;
--    - end_user_kyc_required: the recipient's KYC is verified by the licence's authority.
--    The group check of 014 stays: within a group only booked_at and units differ, so a
--    period holds for every shipment of the group exactly when it holds for the first and
--    the last booked, and a unit cap exactly when it holds for the largest. The row-by-row
--    query runs only when a group failed, to name the shipment and the rule.
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
  -- rule it breaks in the order checkCovers tries them.
  SELECT * INTO bad FROM (
    SELECT n.id,
           CASE WHEN e.id IS NULL OR r.id IS NULL OR p.id IS NULL OR ea.id IS NULL OR ia.id IS NULL THEN 'reference'
                WHEN el.direction <> 'export' OR el.holder_org_id <> n.exporter_org_id THEN 'export-holder'
                WHEN il.direction <> 'import' THEN 'import-direction'
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

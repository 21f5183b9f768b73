-- 062's parts that parse events (event-state: statuses and allocations) parse each event once
-- (s32). Their LATERAL parse was flattened by the planner into each use of it (json_typeof in
-- the filter, the json_to_record), so each event was parsed up to three times; OFFSET 0 keeps
-- it a step of its own, as 068's part does. What they find, and their words, are 062's.
-- bench/experiments/status-events-check.ts 1000000 (1,000,000 events, a third of them steps
-- the status part parses; medians of 3, two runs each way, alternated): the status part
-- 4.63 / 4.54 s before, 3.55 / 3.83 s after.
CREATE OR REPLACE FUNCTION ledger_status_violations(careful boolean) RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH parsed AS MATERIALIZED (
    SELECT e.seq, e.kind, e.subject_id, f."to", f."statusTo", f."licencesExhausted", f."expiredShipments", f."expiredLicences"
    FROM events e
    CROSS JOIN LATERAL (SELECT CASE WHEN careful THEN ledger_event_member(e.canonical, 'effects') ELSE convert_from(e.canonical, 'UTF8')::json -> 'effects' END AS effects OFFSET 0) b
    CROSS JOIN LATERAL json_to_record(CASE WHEN json_typeof(b.effects) = 'object' THEN b.effects ELSE '{}'::json END)
      AS f("to" text, "statusTo" text, "licencesExhausted" json, "expiredShipments" json, "expiredLicences" json)
    WHERE e.kind IN ('shipment.ship', 'shipment.clear', 'shipment.deliver', 'shipment.cancel', 'ledger.sweep',
                     'licence.issue', 'licence.suspend', 'licence.reinstate', 'licence.revoke', 'licence.surrender', 'licence.amend')
  ),
  stated AS (
    SELECT subject_id AS id, seq, CASE kind WHEN 'shipment.book' THEN 'booked' ELSE 'draft' END AS status
    FROM events WHERE kind IN ('shipment.book', 'licence.create') AND subject_id IS NOT NULL
    UNION ALL
    SELECT subject_id, seq, CASE WHEN kind = 'licence.amend' THEN "statusTo" ELSE "to" END
    FROM parsed WHERE subject_id IS NOT NULL AND CASE WHEN kind = 'licence.amend' THEN "statusTo" ELSE "to" END IS NOT NULL
    UNION ALL
    SELECT listed.id, p.seq, 'exhausted' FROM parsed p
    CROSS JOIN LATERAL json_array_elements_text(CASE WHEN json_typeof(p."licencesExhausted") = 'array' THEN p."licencesExhausted" ELSE '[]'::json END) AS listed(id)
    UNION ALL
    SELECT listed.id, p.seq, 'expired' FROM parsed p
    CROSS JOIN LATERAL json_array_elements_text(CASE WHEN json_typeof(p."expiredShipments") = 'array' THEN p."expiredShipments" ELSE '[]'::json END) AS listed(id)
    UNION ALL
    SELECT listed.id, p.seq, 'expired' FROM parsed p
    CROSS JOIN LATERAL json_array_elements_text(CASE WHEN json_typeof(p."expiredLicences") = 'array' THEN p."expiredLicences" ELSE '[]'::json END) AS listed(id)
  ),
  newest AS (
    SELECT DISTINCT ON (id) id, seq, status FROM stated ORDER BY id, seq DESC
  ),
  unlisted_ship AS (
    SELECT max(seq) AS seq FROM parsed WHERE kind = 'shipment.ship' AND subject_id LIKE 'S-%' AND "licencesExhausted" IS NULL
  ),
  held AS (
    SELECT 'shipment' AS what, id, status, false AS used_up FROM shipments
    UNION ALL
    SELECT 'licence', id, status, shipped_units = authorised_units FROM licences
  )
  SELECT 'event-state', h.id,
    format('the %s is %s, but %s', h.what, h.status,
      CASE WHEN n.id IS NULL THEN 'no event states its status'
           ELSE format('its newest event that states its status, %s, says %s', n.seq, n.status) END)
  FROM held h
  LEFT JOIN newest n ON n.id = h.id
  CROSS JOIN unlisted_ship u
  WHERE n.status IS DISTINCT FROM h.status
    -- coalesce: with no such ship step (a ledger of a later release), or no statement at all, nothing is excused.
    AND NOT coalesce(h.what = 'licence' AND h.status = 'exhausted' AND h.used_up AND n.status = 'issued' AND n.seq < u.seq, false)
  ORDER BY h.id
$$;


CREATE OR REPLACE FUNCTION ledger_allocation_violations(careful boolean) RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH stated AS MATERIALIZED (
    SELECT e.seq, e.kind, e.subject_id, i."licenceId", i."recipientId", i."periodStart", i."periodEnd", i.units
    FROM events e
    CROSS JOIN LATERAL (SELECT CASE WHEN careful THEN ledger_event_member(e.canonical, 'input') ELSE convert_from(e.canonical, 'UTF8')::json -> 'input' END AS input OFFSET 0) b
    CROSS JOIN LATERAL json_to_record(CASE WHEN json_typeof(b.input) = 'object' THEN b.input ELSE '{}'::json END)
      AS i("licenceId" text, "recipientId" text, "periodStart" text, "periodEnd" text, units text)
    WHERE e.kind IN ('allocation.create', 'allocation.resize') AND e.subject_id IS NOT NULL AND json_typeof(b.input) = 'object'
  ),
  created AS (
    SELECT DISTINCT ON (subject_id) subject_id, seq, "licenceId", "recipientId", "periodStart", "periodEnd"
    FROM stated WHERE kind = 'allocation.create' ORDER BY subject_id, seq
  ),
  sized AS (
    SELECT DISTINCT ON (subject_id) subject_id, seq, kind, units FROM stated ORDER BY subject_id, seq DESC
  )
  SELECT 'event-state', a.id, d.detail
  FROM allocations a
  LEFT JOIN created c ON c.subject_id = a.id
  LEFT JOIN sized s ON s.subject_id = a.id
  CROSS JOIN LATERAL (VALUES
    (CASE WHEN c.subject_id IS NULL THEN 'the allocation has no allocation.create event that made it, so nothing states its licence, recipient or units' END),
    (CASE WHEN c.subject_id IS NULL THEN NULL WHEN c."licenceId" IS DISTINCT FROM a.licence_id OR c."recipientId" IS DISTINCT FROM a.recipient_org_id
          THEN format('the allocation is of licence %s for %s, but its allocation.create event, %s, made it of licence %s for %s',
                      a.licence_id, a.recipient_org_id, c.seq, coalesce(c."licenceId", '(none)'), coalesce(c."recipientId", '(none)')) END),
    (CASE WHEN c.subject_id IS NULL THEN NULL WHEN c."periodStart" IS DISTINCT FROM to_char(a.period_start, 'YYYY-MM-DD') OR c."periodEnd" IS DISTINCT FROM to_char(a.period_end, 'YYYY-MM-DD')
          THEN format('the allocation''s tranche is %s, but its allocation.create event, %s, made it %s',
                      coalesce(to_char(a.period_start, 'YYYY-MM-DD') || ' to ' || to_char(a.period_end, 'YYYY-MM-DD'), 'none'), c.seq, coalesce(c."periodStart" || ' to ' || c."periodEnd", 'none')) END),
    (CASE WHEN c.subject_id IS NULL THEN NULL WHEN s.units IS DISTINCT FROM a.units::text
          THEN format('the allocation has %s units, but its newest event that sizes it, %s (%s), says %s', a.units, s.seq, s.kind, coalesce(s.units, '(none)')) END)
  ) AS d(detail)
  WHERE d.detail IS NOT NULL
  ORDER BY a.id, d.detail
$$;

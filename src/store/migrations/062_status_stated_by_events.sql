-- The re-check holds each shipment's and each licence's status to its events (s28).
--
-- The writer role may update shipments and licences, as the ledger does: whoever held its
-- connection could ship a shipment or suspend a licence by UPDATE, every counter kept in step
-- and no event written, and `chipledger check` found nothing (s26's attack review). Every
-- status the ledger writes is stated by an event whose subject is the record (or, in events
-- of releases before the sweep wrote one event a record, listed in it), so the status a row
-- holds must be the one its newest such event states. This part names each that is not.
--
-- Where each event states a status (ledger/handlers), in every shape the log still holds:
-- - shipment.book: booked; licence.create: draft (the kind says it, nothing to parse);
-- - the shipment's steps (ship, clear, deliver, cancel), the licence's (issue, suspend,
--   reinstate, revoke, surrender), a licence used up by a shipment step (a part of that step,
--   the licence its subject), the sweep's part for each record: effects.to;
-- - licence.amend: effects.statusTo (an amendment before that field changed no status);
-- - a shipment.ship's effects.licencesExhausted: exhausted, for each licence listed (the
--   releases that listed them before writing a part for each);
-- - a sweep of the first releases, one event with no subject: effects.expiredShipments and
--   effects.expiredLicences.
-- The first releases wrote nothing when shipping used a licence up: a licence found exhausted,
-- every authorised unit shipped, whose newest stated status is issued, is taken when a
-- shipment.ship without licencesExhausted (such a release's) came after that statement.
--
-- Only events of those kinds are parsed (a booking's is not: its kind says it), in one pass as
-- 057's; bytes that are not an event's JSON (057 names them) would stop that pass, so it is
-- tried first and, where it fails, a second pass parses each event on its own, skipping those.
CREATE FUNCTION ledger_event_effects(canonical bytea) RETURNS json LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN convert_from(canonical, 'UTF8')::json -> 'effects';
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;

-- 6.7 s a million events (a third of them steps, parsed) and their 666,667 shipments, against
-- 8.2 s for 057's part, which parses every event (bench/experiments/status-events-check.ts,
-- 2-core host); a larger work_mem for its sort of every statement changed nothing measurable.
CREATE FUNCTION ledger_status_violations(careful boolean) RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH parsed AS MATERIALIZED (
    SELECT e.seq, e.kind, e.subject_id, f."to", f."statusTo", f."licencesExhausted", f."expiredShipments", f."expiredLicences"
    FROM events e
    CROSS JOIN LATERAL (SELECT CASE WHEN careful THEN ledger_event_effects(e.canonical) ELSE convert_from(e.canonical, 'UTF8')::json -> 'effects' END AS effects) b
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
    AND NOT (h.what = 'licence' AND h.status = 'exhausted' AND h.used_up AND n.status = 'issued' AND n.seq < u.seq)
  ORDER BY h.id
$$;

CREATE FUNCTION ledger_check_status_events() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE plpgsql STABLE AS $$
DECLARE
  found json;
BEGIN
  BEGIN
    SELECT coalesce(json_agg(v), '[]'::json) INTO found FROM ledger_status_violations(false) v;
  EXCEPTION WHEN others THEN
    found := NULL;
  END;
  IF found IS NULL THEN
    SELECT coalesce(json_agg(v), '[]'::json) INTO found FROM ledger_status_violations(true) v;
  END IF;
  RETURN QUERY SELECT r.invariant, r.subject, r.detail FROM json_to_recordset(found) AS r(invariant text, subject text, detail text);
END $$;
INSERT INTO ledger_checks (position, part) VALUES (320, 'ledger_check_status_events');

-- The re-check holds each shipment's and each licence's status, and each allocation's licence,
-- recipient, tranche and units, to its events (s28).
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
-- shipment.ship without licencesExhausted (such a release's) came after that statement. Any
-- such step excuses any licence (which licences a step used is not in it); a ledger begun on
-- a later release has none, and excuses nothing.
--
-- Only events of those kinds are parsed (a booking's is not: its kind says it), in one pass as
-- 057's; bytes that are not an event's JSON (057 names them) would stop that pass, so it is
-- tried first and, where it fails, a second pass parses each event on its own, skipping those.
-- One member of an event's JSON (its effects, its input), or NULL where the bytes are not JSON:
-- the second pass's parse, one event at a time.
CREATE FUNCTION ledger_event_member(canonical bytea, member text) RETURNS json LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN convert_from(canonical, 'UTF8')::json -> member;
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;

-- 6.7 and 8.1 s a million events (a third of them steps, parsed) and their 666,667 shipments,
-- against 8.2 and 11.6 s for 057's part in the same two runs, which parses every event
-- (bench/experiments/status-events-check.ts, 2-core host); a larger work_mem for its sort of
-- every statement changed nothing measurable.
CREATE FUNCTION ledger_status_violations(careful boolean) RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH parsed AS MATERIALIZED (
    SELECT e.seq, e.kind, e.subject_id, f."to", f."statusTo", f."licencesExhausted", f."expiredShipments", f."expiredLicences"
    FROM events e
    CROSS JOIN LATERAL (SELECT CASE WHEN careful THEN ledger_event_member(e.canonical, 'effects') ELSE convert_from(e.canonical, 'UTF8')::json -> 'effects' END AS effects) b
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

-- Runs a part that parses events (`violations`, given careful = false), and where that pass
-- fails on bytes that are not an event's JSON, runs it again parsing each event on its own.
CREATE FUNCTION ledger_parsing_events_check(violations text) RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE plpgsql STABLE AS $$
DECLARE
  found json;
BEGIN
  BEGIN
    EXECUTE format('SELECT coalesce(json_agg(v), ''[]''::json) FROM %I(false) v', violations) INTO found;
  EXCEPTION WHEN others THEN
    found := NULL;
  END;
  IF found IS NULL THEN
    EXECUTE format('SELECT coalesce(json_agg(v), ''[]''::json) FROM %I(true) v', violations) INTO found;
  END IF;
  RETURN QUERY SELECT r.invariant, r.subject, r.detail FROM json_to_recordset(found) AS r(invariant text, subject text, detail text);
END $$;

CREATE FUNCTION ledger_check_status_events() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT * FROM ledger_parsing_events_check('ledger_status_violations')
$$;
INSERT INTO ledger_checks (position, part) VALUES (320, 'ledger_check_status_events');

-- Allocations, the same way. s26's review moved a unit from one recipient's allocation to
-- another's, the licence's total kept, unseen. An allocation is made by its allocation.create
-- event, whose input names its licence, recipient, tranche (periodStart, periodEnd) and units,
-- and resized by allocation.resize, whose input names its new units: the same fields since the
-- first release. Compared as text, so that no event's bytes can make the comparison fail.
CREATE FUNCTION ledger_allocation_violations(careful boolean) RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH stated AS MATERIALIZED (
    SELECT e.seq, e.kind, e.subject_id, i."licenceId", i."recipientId", i."periodStart", i."periodEnd", i.units
    FROM events e
    CROSS JOIN LATERAL (SELECT CASE WHEN careful THEN ledger_event_member(e.canonical, 'input') ELSE convert_from(e.canonical, 'UTF8')::json -> 'input' END AS input) b
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

CREATE FUNCTION ledger_check_allocation_events() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT * FROM ledger_parsing_events_check('ledger_allocation_violations')
$$;
INSERT INTO ledger_checks (position, part) VALUES (330, 'ledger_check_allocation_events');

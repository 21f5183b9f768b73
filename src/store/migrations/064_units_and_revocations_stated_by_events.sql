-- The re-check holds where each unit stands, deployed at a site or ended, to the events that put
-- it there, and each token's revocation to its token.revoke (s29).
--
-- The writer role may update units, as the ledger does. The triggers keep a unit's custody
-- moving forward and within its shipment's status (023, 032), an ended unit ended (022), and a
-- deployed unit at a site of its recipient (020); but inside those bounds, whoever held the
-- writer's connection could deploy a delivered unit, move a deployed one to another of the
-- recipient's sites, or report one lost, decommissioned or returned, each site's count kept in
-- step and no event written, and `chipledger check` found nothing.
--
-- Only the recipient's unit commands make a unit deployed (units.deploy, whose subject is the
-- site) or end it (units.decommission, units.report_lost, units.return), since the first
-- release. Each sets updated_seq of every unit it lists to its own seq, and from migration
-- 017 on records its serial list in event_serials: in the first event of the command, where
-- an ending is two. (Releases from dbd9a2f to 1241a63 stored the list in the second too: a
-- units.report_lost or units.return with the same lines as the event before, of the same kind,
-- actor and time, is not read as a later command listing the units. No two such commands list
-- one unit one after the other, lost and returned being ends; two deploys can, in one batch
-- and by one actor, and are two commands.) So a unit that is deployed or ended was made so by
-- the event at its updated_seq: of the kind that makes that custody, to its site where
-- deployed, listing its serial where the event has a list. And no unit command after that
-- event lists it, or its updated_seq would be that later one's. A line is "serial" or
-- "serial gpuUuid" (events.ts serialLines); serials are compared exactly, as the commands
-- name units.
CREATE FUNCTION ledger_check_unit_events() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- Materialized, so that a repeat is looked for once an event, not once a line.
  WITH lists AS MATERIALIZED (
    SELECT s.seq, e.kind, s.lines
    FROM event_serials s
    JOIN events e ON e.seq = s.seq AND e.kind IN ('units.deploy', 'units.decommission', 'units.report_lost', 'units.return')
    WHERE e.kind IN ('units.deploy', 'units.decommission')
       OR NOT EXISTS (SELECT 1 FROM events p JOIN event_serials ps ON ps.seq = p.seq
                      WHERE p.seq = s.seq - 1 AND p.kind = e.kind AND p.actor = e.actor AND p.at = e.at AND ps.lines = s.lines)
  ),
  listed AS MATERIALIZED (
    SELECT l.seq, l.kind, split_part(line, ' ', 1) AS serial FROM lists l CROSS JOIN LATERAL unnest(l.lines) AS line
  ),
  newest AS (
    SELECT DISTINCT ON (serial) serial, seq, kind FROM listed ORDER BY serial, seq DESC
  ),
  units_made AS (
    SELECT u.serial, u.custody, u.site_id, u.updated_seq,
           CASE u.custody WHEN 'deployed' THEN 'units.deploy' WHEN 'decommissioned' THEN 'units.decommission'
                          WHEN 'lost' THEN 'units.report_lost' WHEN 'returned' THEN 'units.return' END AS made_by
    FROM units u
  )
  SELECT 'event-state', v.serial, v.detail FROM (
    SELECT u.serial,
      CASE
        WHEN n.seq > u.updated_seq
          THEN format('the unit was last changed by event %s, but a later %s, %s, lists its serial', u.updated_seq, n.kind, n.seq)
        -- Custody its shipment's steps set (032 holds it to the shipment's status), or an event past the log (055 names it).
        WHEN u.made_by IS NULL OR e.seq IS NULL THEN NULL
        WHEN e.kind <> u.made_by
          THEN format('the unit is %s, but the event that last changed it, %s, is a %s, not the %s that makes a unit %s', u.custody, e.seq, e.kind, u.made_by, u.custody)
        WHEN u.custody = 'deployed' AND e.subject_id IS DISTINCT FROM u.site_id
          THEN format('the unit is deployed at %s, but the units.deploy that last changed it, %s, deployed to %s', u.site_id, e.seq, coalesce(e.subject_id, '(none)'))
        -- The event lists serials (from 017 on) but not this one: had it listed it, the newest listing would be it or later.
        WHEN es.seq IS NOT NULL AND n.seq IS DISTINCT FROM u.updated_seq
          THEN format('the unit is %s, but the %s that last changed it, %s, does not list its serial', u.custody, e.kind, e.seq)
      END AS detail
    FROM units_made u
    LEFT JOIN newest n ON n.serial = u.serial
    LEFT JOIN events e ON e.seq = u.updated_seq AND u.made_by IS NOT NULL
    LEFT JOIN event_serials es ON es.seq = u.updated_seq AND u.made_by IS NOT NULL
    WHERE n.seq > u.updated_seq OR u.made_by IS NOT NULL
  ) v
  WHERE v.detail IS NOT NULL
  ORDER BY 2, 3
$$;
INSERT INTO ledger_checks (position, part) VALUES (350, 'ledger_check_unit_events');

-- Tokens, the same way. A token is revoked by its token.revoke event alone (its subject the
-- token, revoked_at the event's time, since the first release), and 055 keeps it revoked; but
-- the writer could revoke one by UPDATE with no event (an authority's token, say), and the API
-- refused its holder with nothing in the record to say why.
-- An instant as the API writes one (2026-02-01T00:00:00.000Z), whatever the session's TimeZone
-- and DateStyle.
CREATE FUNCTION ledger_instant_text(at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
CREATE FUNCTION ledger_check_token_events() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH revoked AS (
    SELECT DISTINCT ON (subject_id) subject_id, seq, at FROM events WHERE kind = 'token.revoke' ORDER BY subject_id, seq
  )
  SELECT 'event-state', coalesce(t.id, r.subject_id),
    CASE
      WHEN t.id IS NULL THEN format('token.revoke event %s revoked it, but no such token is in the record', r.seq)
      WHEN r.seq IS NULL THEN format('the token is revoked (at %s), but no token.revoke event revoked it', ledger_instant_text(t.revoked_at))
      WHEN t.revoked_at IS NULL THEN format('the token is not revoked, but token.revoke event %s revoked it', r.seq)
      ELSE format('the token was revoked at %s, but its token.revoke event, %s, is of %s', ledger_instant_text(t.revoked_at), r.seq, ledger_instant_text(r.at))
    END
  FROM tokens t
  FULL JOIN revoked r ON r.subject_id = t.id
  WHERE t.id IS NULL OR (t.revoked_at IS NULL) <> (r.seq IS NULL) OR t.revoked_at <> r.at
  ORDER BY 2
$$;
INSERT INTO ledger_checks (position, part) VALUES (360, 'ledger_check_token_events');

-- An event may be about several records, and each one's history lists it.
--
-- A record's history is GET /v1/events?subjectId=X (store/read-queries.ts listEvents), which
-- read events.subject_id alone: the one record an event is about. Unit events are about more:
-- a move's event (units.deploy) has the destination site as subject, so the site the units
-- left never showed them going; a decommission has the shipment as subject, so the site
-- missed it; a return or loss from two sites wrote its site event without a subject, and an
-- ending across two shipments too, so neither site nor shipment showed it. Summing a site's
-- history did not give its deployedUnits.
--
-- 1. event_subjects: the further records an event is about, besides events.subject_id, which
--    stays the event's one subject (it is in the canonical bytes, served, and never changes,
--    028). A row per (record, event); none for the subject itself, so a history lists an
--    event once. Written by the ledger in the batch's transaction with its events (store/
--    batch-writes.ts moreSubjectSteps), only for events that have any (ledger/handlers/
--    units.ts moreSubjects): bookings write none. The primary key, record first, is the
--    index a history reads, in seq order.
--    No foreign key to events: the log's checks are tested by deleting events (022 left the
--    events' DELETE to them), and a row here would block that.
CREATE TABLE event_subjects (
  subject_id  text NOT NULL,
  seq         bigint NOT NULL CHECK (seq >= 0),
  PRIMARY KEY (subject_id, seq)
);

-- 2. The ledger only inserts them, as it does events: a deleted row takes an event out of a
--    history, a changed one moves it to another's. Refused as 028 refuses the other
--    append-only tables' changes (ledger_refuse_delete, restrict_violation).
CREATE TRIGGER event_subjects_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON event_subjects
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

-- 3. The events written before this migration, from their effects, which name the records
--    the handlers now list (ledger/handlers/units.ts): a deployment counts the sites units
--    moved from (movedFrom), an ending the shipments its units came in (shipments) and the
--    sites they left (fromSites; a return or loss names sites only on its second event, the
--    one the recipient alone reads). Every key of those, but the event's subject. Events of
--    other kinds name no further record. Unit events written before their effects named
--    these (before movedFrom and fromSites were recorded) cannot be completed: nothing in
--    them says which sites or shipments they left.
--    The canonical bytes are the event's JSON (ledger/events.ts, RFC 8785): only the unit
--    events are parsed.
INSERT INTO event_subjects (subject_id, seq)
SELECT DISTINCT named.id, e.seq
FROM events e
CROSS JOIN LATERAL (SELECT convert_from(e.canonical, 'UTF8')::jsonb -> 'effects' AS effects) body
CROSS JOIN LATERAL (
  SELECT jsonb_object_keys(counted.value) AS id
  FROM jsonb_each(CASE WHEN jsonb_typeof(body.effects) = 'object' THEN body.effects ELSE '{}'::jsonb END) AS counted(name, value)
  WHERE counted.name IN ('movedFrom', 'fromSites', 'shipments') AND jsonb_typeof(counted.value) = 'object'
) named
WHERE e.kind IN ('units.deploy', 'units.decommission', 'units.report_lost', 'units.return')
  AND named.id IS DISTINCT FROM e.subject_id;

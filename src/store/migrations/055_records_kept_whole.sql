-- What a buggy writer could still do to the record (s25, the database-defence review, which
-- attacked a demo database with plain SQL the way a write path with a bug would).
--
-- 1. An event is never deleted. 022 and 028 left the events' DELETE to the log's checks,
--    which hash the canonical bytes: but a DELETE and an INSERT of the same bytes passed
--    them, and with them 028's rule that an event's columns never change. Rewritten that
--    way, event 46's readers (org_ids, which the canonical bytes do not hold) let another
--    organisation read it, and event 60 was served as a shipment.cancel by another actor
--    under the proof of a shipment.ship; `chipledger check` saw nothing. The ledger only
--    inserts events. The log's checks still catch a deleted event where the triggers are
--    off (tests turn this one off to prove it, test/support/tamper.ts).
CREATE TRIGGER events_no_delete BEFORE DELETE ON events FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

-- 2. A signed checkpoint is the record of what the log published: every later one must be
--    consistent with it, and `chipledger check` and the start-up check read them all. The
--    ledger inserts them (ON CONFLICT DO NOTHING, store/tlog-tables.ts) and never changes or
--    deletes one; deleting them all passed the check, which then had nothing to compare.
--    A witness's cosignature is replaced only by a newer one of the same witness and key
--    over the same checkpoint (tlog-tables.ts, the upsert's WHERE); never deleted.
CREATE TRIGGER tlog_checkpoints_kept BEFORE UPDATE OR DELETE OR TRUNCATE ON tlog_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();
CREATE TRIGGER tlog_cosignatures_no_delete BEFORE DELETE OR TRUNCATE ON tlog_cosignatures FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();
CREATE FUNCTION tlog_cosignatures_only_newer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the cosignature of witness % (key %) over checkpoint % is replaced only by a newer one of the same witness, key and checkpoint (timestamp % → %)',
    OLD.witness, OLD.key_id, OLD.checkpoint_size, OLD.timestamp_s, NEW.timestamp_s
    USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tlog_cosignatures_only_newer';
END $$;
CREATE TRIGGER tlog_cosignatures_only_newer BEFORE UPDATE ON tlog_cosignatures FOR EACH ROW
  WHEN ((NEW.checkpoint_size, NEW.checkpoint_key_id, NEW.witness, NEW.key_id) IS DISTINCT FROM (OLD.checkpoint_size, OLD.checkpoint_key_id, OLD.witness, OLD.key_id)
        OR NEW.timestamp_s <= OLD.timestamp_s)
  EXECUTE FUNCTION tlog_cosignatures_only_newer();

-- 3. A token keeps whose it is, its role, label and secret's hash; it is revoked once and
--    stays revoked (ledger/handlers/organisations.ts: token.create puts the row, token.revoke
--    sets revoked_at, nothing else writes it). An UPDATE made an exporter's token an authority
--    admin's, moved one to another organisation, and un-revoked a revoked one. created_at is
--    left out: a row written by the ledger keeps it, and nothing reads it for a decision.
--    Tokens are never deleted (a revoked token stays, naming who acted in its events).
CREATE FUNCTION tokens_keep_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
    RAISE EXCEPTION 'token % was revoked at %; it stays revoked', OLD.id, OLD.revoked_at
      USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tokens_keep_grant';
  END IF;
  RAISE EXCEPTION 'token % is organisation %''s, with role %; its organisation, role, label and secret never change (revoke it and create another)', OLD.id, OLD.org_id, OLD.role
    USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tokens_keep_grant';
END $$;
CREATE TRIGGER tokens_keep_grant BEFORE UPDATE ON tokens FOR EACH ROW
  WHEN ((NEW.id, NEW.org_id, NEW.role, NEW.label, NEW.secret_hash) IS DISTINCT FROM (OLD.id, OLD.org_id, OLD.role, OLD.label, OLD.secret_hash)
        OR (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at))
  EXECUTE FUNCTION tokens_keep_grant();
CREATE TRIGGER tokens_no_delete BEFORE DELETE OR TRUNCATE ON tokens FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

-- 4. A shipment keeps its deadline too (028's shipments_keep_booking, with the deadline
--    added): the ledger judged it against both licences' validity at booking (rule
--    booking-deadline) and never changes it; an UPDATE moved one years past its licences.
CREATE OR REPLACE FUNCTION shipments_keep_booking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'shipment % keeps what it was booked as; it cannot change (%)', OLD.id, concat_ws(', ',
      CASE WHEN NEW.units IS DISTINCT FROM OLD.units THEN format('units %s → %s', OLD.units, NEW.units) END,
      CASE WHEN NEW.product_id IS DISTINCT FROM OLD.product_id THEN format('product %s → %s', OLD.product_id, NEW.product_id) END,
      CASE WHEN NEW.booked_at IS DISTINCT FROM OLD.booked_at THEN format('booked_at %s → %s', OLD.booked_at, NEW.booked_at) END,
      CASE WHEN NEW.deadline IS DISTINCT FROM OLD.deadline THEN format('deadline %s → %s', OLD.deadline, NEW.deadline) END,
      CASE WHEN NEW.export_allocation_id IS DISTINCT FROM OLD.export_allocation_id THEN format('export allocation %s → %s', OLD.export_allocation_id, NEW.export_allocation_id) END,
      CASE WHEN NEW.import_allocation_id IS DISTINCT FROM OLD.import_allocation_id THEN format('import allocation %s → %s', OLD.import_allocation_id, NEW.import_allocation_id) END,
      CASE WHEN NEW.exporter_org_id IS DISTINCT FROM OLD.exporter_org_id THEN format('exporter %s → %s', OLD.exporter_org_id, NEW.exporter_org_id) END,
      CASE WHEN (NEW.origin, NEW.destination) IS DISTINCT FROM (OLD.origin, OLD.destination) THEN format('route %s to %s → %s to %s', OLD.origin, OLD.destination, NEW.origin, NEW.destination) END)
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_keep_booking';
END $$;
DROP TRIGGER shipments_keep_booking ON shipments;
CREATE TRIGGER shipments_keep_booking BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN ((NEW.units, NEW.product_id, NEW.booked_at, NEW.deadline, NEW.export_allocation_id, NEW.import_allocation_id, NEW.exporter_org_id, NEW.origin, NEW.destination)
        IS DISTINCT FROM (OLD.units, OLD.product_id, OLD.booked_at, OLD.deadline, OLD.export_allocation_id, OLD.import_allocation_id, OLD.exporter_org_id, OLD.origin, OLD.destination))
  EXECUTE FUNCTION shipments_keep_booking();

-- 5. A shipment written new is past booked only with a serial for every unit: 025's rule for
--    the step out of booked (shipments_manifest_complete), which fires on UPDATE alone, so an
--    INSERT of a shipment already delivered, with no serial, counted 100 units shipped that
--    no serial names. A shipment booked and shipped in one batch is written once, shipped
--    (a batch writes each row once), so the rule is the same one, not "born booked". AFTER
--    INSERT, as 025's: a batch writes changed rows as INSERT … ON CONFLICT DO UPDATE.
CREATE FUNCTION shipments_manifest_complete_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'shipment % lists % of its % serials; it cannot be % without a serial for every unit', NEW.id, NEW.serial_count, NEW.units, NEW.status
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_manifest_complete';
END $$;
CREATE TRIGGER shipments_manifest_complete_insert AFTER INSERT ON shipments FOR EACH ROW
  WHEN (NEW.status IN ('shipped', 'cleared', 'delivered') AND NEW.serial_count <> NEW.units)
  EXECUTE FUNCTION shipments_manifest_complete_insert();

-- 6. The re-check compares the state with the events that made it in two more places.
--
--    A shipment was booked when its booking event is dated: 035's booking check judges the
--    licences' validity at booked_at, and the ledger sets booked_at to the event's time
--    (ledger/handlers/shipments.ts); a booked_at written earlier than its event passed a
--    licence whose validity had ended. One hash join of the shipments with the events.
CREATE FUNCTION ledger_check_shipment_booking_times() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-3', s.id, format('booked at %s, but its booking, event %s, is dated %s', s.booked_at, s.created_seq, e.at)
  FROM shipments s JOIN events e ON e.seq = s.created_seq
  WHERE s.booked_at <> e.at
$$;
INSERT INTO ledger_checks (position, part) VALUES (260, 'ledger_check_shipment_booking_times');

--    A licence's versions are its events': each version row names the licence.create or
--    licence.amend event about that licence that made it (ledger/handlers/licences.ts
--    snapshot, the only writer), and each such event made one. A licence amended by hand,
--    its new version naming an unrelated event, passed 030's comparison of the licence with
--    its versions, since both were changed.
CREATE FUNCTION ledger_check_version_events() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH making AS (
    SELECT e.seq, e.kind, e.subject_id FROM events e WHERE e.kind IN ('licence.create', 'licence.amend')
  ),
  unmatched AS (
    SELECT m.seq AS event_seq, m.kind AS event_kind, m.subject_id, v.licence_id, v.version, v.seq AS version_seq
    FROM making m FULL JOIN licence_versions v ON v.seq = m.seq AND v.licence_id = m.subject_id
    WHERE m.seq IS NULL OR v.licence_id IS NULL
  )
  SELECT 'licence-versions', 'event ' || u.event_seq, format('%s of %s made no version of it', u.event_kind, coalesce(u.subject_id, '(no subject)'))
  FROM unmatched u WHERE u.event_seq IS NOT NULL
  UNION ALL
  SELECT 'licence-versions', u.licence_id,
         CASE WHEN e.seq IS NULL THEN format('version %s was made by event %s, but there is no event %s', u.version, u.version_seq, u.version_seq)
              ELSE format('version %s was made by event %s, but event %s is %s of %s, not licence.create or licence.amend of it', u.version, u.version_seq, u.version_seq,
                          e.kind, coalesce(e.subject_id, '(no subject)')) END
  FROM unmatched u LEFT JOIN events e ON e.seq = u.version_seq
  WHERE u.event_seq IS NULL
$$;
INSERT INTO ledger_checks (position, part) VALUES (270, 'ledger_check_version_events');

--    And no row of the state names an event the log does not hold yet: a seq at or past the
--    log's size was written outside the ledger (a shipment shipped by hand, naming event 81 of
--    a log of 81).
CREATE FUNCTION ledger_check_row_seqs() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH head AS (SELECT size FROM log_head WHERE id = 1),
  seqs AS (
    SELECT 'licence'::text AS what, l.id, l.updated_seq AS seq FROM licences l
    UNION ALL SELECT 'shipment', s.id, s.updated_seq FROM shipments s
    UNION ALL SELECT 'unit', u.serial, u.updated_seq FROM units u
  )
  SELECT 'event-rows', q.id, format('the %s was last changed by event %s, past the log''s last event (%s)', q.what, q.seq, h.size - 1)
  FROM seqs q CROSS JOIN head h
  WHERE q.seq >= h.size
$$;
INSERT INTO ledger_checks (position, part) VALUES (280, 'ledger_check_row_seqs');

-- 7. An allocation's recipient is in its licence's destination (ledger/handlers/allocations.ts
--    checkRecipientOnRoute, rule licence-route): a shipment goes to its recipient's country, so
--    units allocated to a recipient anywhere else could never be booked, while they count
--    against the licence's authorised units. An INSERT allocated a Chinese import licence's
--    units to a British auditor. Neither an organisation's country nor a licence's route ever
--    changes, so the INSERT is the one place to hold it; allocations made before the rule stay
--    as they are. AFTER INSERT, as 025's; allocations are made rarely (two look-ups each).
CREATE FUNCTION allocations_recipient_on_route() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE recipient_country text; licence_route record;
BEGIN
  SELECT country INTO recipient_country FROM organisations WHERE id = NEW.recipient_org_id;
  SELECT origin, destination INTO licence_route FROM licences WHERE id = NEW.licence_id;
  IF recipient_country IS DISTINCT FROM licence_route.destination THEN
    RAISE EXCEPTION 'allocation % is for %, in %, of licence % for % → %: units go to a recipient in the licence''s destination',
      NEW.id, NEW.recipient_org_id, coalesce(recipient_country, 'no country'), NEW.licence_id, licence_route.origin, licence_route.destination
      USING ERRCODE = 'check_violation', CONSTRAINT = 'allocations_recipient_on_route';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER allocations_recipient_on_route AFTER INSERT ON allocations FOR EACH ROW EXECUTE FUNCTION allocations_recipient_on_route();

-- Holes the review of the database's own hold on the invariants found (s12): rows the ledger
-- writes once, or only grows, that an UPDATE by hand could still rewrite without any check
-- seeing it. Each rule below is held in the code already; this holds it in the database too.
-- Every row trigger here has a WHEN that the executor evaluates without calling the function
-- (as 019, 022, 023 and 025's): the rows the ledger writes every batch pay a comparison, and
-- only a refused row calls its function. The WHENs compare OLD and NEW values, never the
-- columns an UPDATE names: a batch writes a changed row as INSERT … ON CONFLICT DO UPDATE
-- with every column set from EXCLUDED (store/batch-writes.ts), so every column is "updated"
-- every time, mostly to the value it had.

-- 1. A shipment keeps what it was booked as (invariant 3). The booking check (001, 015, 023)
--    runs on INSERT only, and judges these columns: units (max_units_per_shipment), product,
--    booked_at (validity, allocation periods), both allocations (and so both licences), the
--    exporter and the route.
--    The ledger changes a shipment's serial_count, status and updated_seq only
--    (ledger/handlers/manifests.ts attachSerials, shipments.ts applyStep); until now an
--    UPDATE could raise a booking above its licences' cap, move it to another product or
--    date, or onto a revoked licence, and the re-check (017) saw none of it. Its recipient
--    is 020's (shipments_keep_recipient).
--    The exporter and the route are held too: the booking check judged them (the export
--    licence's holder, both licences' route), and the re-check of 017 and 023's check at
--    shipping find them changed only afterwards. Tests that reach those checks by hand turn
--    this trigger off first, as they do 020's.
CREATE FUNCTION shipments_keep_booking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'shipment % keeps what it was booked as; it cannot change (%)', OLD.id, concat_ws(', ',
      CASE WHEN NEW.units IS DISTINCT FROM OLD.units THEN format('units %s → %s', OLD.units, NEW.units) END,
      CASE WHEN NEW.product_id IS DISTINCT FROM OLD.product_id THEN format('product %s → %s', OLD.product_id, NEW.product_id) END,
      CASE WHEN NEW.booked_at IS DISTINCT FROM OLD.booked_at THEN format('booked_at %s → %s', OLD.booked_at, NEW.booked_at) END,
      CASE WHEN NEW.export_allocation_id IS DISTINCT FROM OLD.export_allocation_id THEN format('export allocation %s → %s', OLD.export_allocation_id, NEW.export_allocation_id) END,
      CASE WHEN NEW.import_allocation_id IS DISTINCT FROM OLD.import_allocation_id THEN format('import allocation %s → %s', OLD.import_allocation_id, NEW.import_allocation_id) END,
      CASE WHEN NEW.exporter_org_id IS DISTINCT FROM OLD.exporter_org_id THEN format('exporter %s → %s', OLD.exporter_org_id, NEW.exporter_org_id) END,
      CASE WHEN (NEW.origin, NEW.destination) IS DISTINCT FROM (OLD.origin, OLD.destination) THEN format('route %s to %s → %s to %s', OLD.origin, OLD.destination, NEW.origin, NEW.destination) END)
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_keep_booking';
END $$;
CREATE TRIGGER shipments_keep_booking BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN ((NEW.units, NEW.product_id, NEW.booked_at, NEW.export_allocation_id, NEW.import_allocation_id, NEW.exporter_org_id, NEW.origin, NEW.destination)
        IS DISTINCT FROM (OLD.units, OLD.product_id, OLD.booked_at, OLD.export_allocation_id, OLD.import_allocation_id, OLD.exporter_org_id, OLD.origin, OLD.destination))
  EXECUTE FUNCTION shipments_keep_booking();

--    And an allocation keeps its licence and its recipient: its shipments were booked under
--    both. The ledger changes an allocation's units, reserved_units and shipped_units only
--    (ledger/handlers/allocations.ts resize, shipments.ts book and applyStep). Moving one to
--    another licence took its shipments along to a licence that never covered them; 001's
--    sum trigger and 023's deferred check judge only the counters.
CREATE FUNCTION allocations_keep_licence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'allocation % is of licence % for %; it cannot become one of licence % for % (its shipments were booked under the first)',
    OLD.id, OLD.licence_id, OLD.recipient_org_id, NEW.licence_id, NEW.recipient_org_id
    USING ERRCODE = 'check_violation', CONSTRAINT = 'allocations_keep_licence';
END $$;
CREATE TRIGGER allocations_keep_licence BEFORE UPDATE ON allocations FOR EACH ROW
  WHEN ((NEW.licence_id, NEW.recipient_org_id) IS DISTINCT FROM (OLD.licence_id, OLD.recipient_org_id))
  EXECUTE FUNCTION allocations_keep_licence();

-- 2. A live manifest row names a unit of that shipment, of its product and for its recipient
--    (invariant 4). The ledger writes a manifest row and its unit together, the unit naming
--    the shipment, its product and its recipient (ledger/handlers/manifests.ts attachSerials,
--    state.ts ManifestListing). Until now the database checked only that the shipment
--    exists (004): rows could list a unit deployed elsewhere, or another tenant's, as in
--    transit in a second shipment.
--
--    The re-check holds it (8 below); at write time it is not checked, because no check
--    found was cheap enough. It needs each unit's row, written by the same batch: units go
--    after the manifest rows (store/ledger-tables.ts, tables), so a check at the manifest
--    INSERT either waits for COMMIT, as a deferred constraint trigger, which is a row
--    trigger (100,000 queued events a manifest), or the order changes and a statement
--    trigger joins the new rows to units. That join (each new serial's unit by primary key,
--    its shipment's product and recipient) was tried, units first: the COPY of a
--    100,000-serial manifest's rows took 805 ms with it against 436 ms without (`npm run
--    bench -- ledger --bookings 1000 --baseline-bookings 0 --manifest-runs 5 --skip-floor
--    --profile`, one pair, medians of 5), and the join alone 200-280 ms on 500,000 units in
--    isolation: about a tenth of the manifest's 2-3 s end to end. Reading the shipment's
--    units through units_shipment and hashing them instead was planned as a nested loop
--    (more than 5 s). The units' own triggers (019, 020) already hold where a unit row may
--    go; what is left open is a manifest row inserted by hand, which the re-check names.

--    A manifest row is written once and then only stops being live, when its shipment ends
--    (store/batch-writes.ts, endedShipments): it never names another shipment or serial, and
--    never becomes live again (which would list, unchecked, a unit that has moved on).
--    Ending a 100,000-serial shipment pays one comparison a row.
CREATE FUNCTION shipment_serials_only_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the manifest row of serial % in shipment % can only stop being live; it cannot become serial % in shipment % (live %)',
    OLD.serial, OLD.shipment_id, NEW.serial, NEW.shipment_id, NEW.live
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipment_serials_only_end';
END $$;
CREATE TRIGGER shipment_serials_only_end BEFORE UPDATE ON shipment_serials FOR EACH ROW
  WHEN (NEW.shipment_id IS DISTINCT FROM OLD.shipment_id OR NEW.serial IS DISTINCT FROM OLD.serial OR (NEW.live AND NOT OLD.live))
  EXECUTE FUNCTION shipment_serials_only_end();

-- 3. The serial lists of events (017): the row that says from which event on they are kept
--    is written once, by 017; one UPDATE of it switched the re-check of every list off.
--    The lists themselves cannot be emptied at once; a changed or deleted list is what the
--    re-check exists to find (and it is tested on it, src/server/event-serials.test.ts), as
--    022 left the events' DELETE to the log's checks. The ledger only inserts lists
--    (store/batch-writes.ts serialListSteps).
CREATE TRIGGER event_serials_from_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON event_serials_from
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();
CREATE TRIGGER event_serials_no_truncate BEFORE TRUNCATE ON event_serials
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

--    ledger_refuse_delete (004) words every refusal as a delete; an UPDATE of these rows is
--    no delete, so the words follow the operation now. Same SQLSTATE (restrict_violation).
CREATE OR REPLACE FUNCTION ledger_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'the ledger only grows: % rows are never changed', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
  END IF;
  RAISE EXCEPTION 'the ledger only grows: % rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;

-- 4. An event's columns that the API serves and filters on (seq, at, kind, actor,
--    subject_id, org_ids: store/read-queries.ts, server/presenters.ts) never change: the
--    ledger only inserts events. Neither the log's checks nor the re-check compare them with
--    the event's canonical bytes, so a rewritten kind or subject was served, under a valid
--    proof of another event. The canonical bytes are left to the log's checks, which hash
--    every leaf and catch any change to them (tests tamper with them to prove it), as 022
--    left the events' DELETE. TRUNCATE is refused: no check needs it.
CREATE FUNCTION events_keep_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'event % is % of % by %, at %; an event''s columns never change', OLD.seq, OLD.kind, coalesce(OLD.subject_id, 'no subject'), OLD.actor, OLD.at
    USING ERRCODE = 'restrict_violation', CONSTRAINT = 'events_keep_columns';
END $$;
CREATE TRIGGER events_keep_columns BEFORE UPDATE ON events FOR EACH ROW
  WHEN ((NEW.seq, NEW.at, NEW.kind, NEW.actor, NEW.subject_id, NEW.org_ids) IS DISTINCT FROM (OLD.seq, OLD.at, OLD.kind, OLD.actor, OLD.subject_id, OLD.org_ids))
  EXECUTE FUNCTION events_keep_columns();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

-- 5. Invariant 6: a stored answer is the answer, for as long as it is kept. The ledger only
--    inserts keys (store/batch-writes.ts idempotencyStep; ledger-tables.ts rememberAnswer, ON
--    CONFLICT DO NOTHING), and nothing expires them. A deleted key let a retry run its
--    command a second time; a changed one answered it with another answer.
CREATE TRIGGER idempotency_keys_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON idempotency_keys
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

-- 6. A licence is exhausted exactly when every authorised unit has shipped (025, 5), judged
--    now whenever the status or either count changes, not only the status: shipping a
--    licence's last units with its status left 'issued', or giving an exhausted licence more
--    units with its status left 'exhausted', went through. The other arms (nothing leaves
--    revoked, surrendered or expired; nothing returns to draft) stay judged on a status
--    change. The ledger writes status and counts together (shipments.ts statusAfterUse,
--    licences.ts statusAfterAmendment). A licence row whose counts and status do not change
--    (a booking's licences are not written at all; an allocation changes allocated_units)
--    pays the comparisons only.
--    The refusal says "stay" when the status is the one the row had.
CREATE OR REPLACE FUNCTION licences_status_steps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IN ('revoked', 'surrendered', 'expired') OR NEW.status = 'draft' THEN
    RAISE EXCEPTION 'licence % is %; it cannot become % (nothing brings a licence back to draft, or from revoked, surrendered or expired)', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_status_steps';
  END IF;
  RAISE EXCEPTION 'licence % has shipped % of its % units; it cannot % % (a licence is exhausted exactly when every unit has shipped)',
    OLD.id, NEW.shipped_units, NEW.authorised_units, CASE WHEN NEW.status = OLD.status THEN 'stay' ELSE 'become' END, NEW.status
    USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_status_exhausted';
END $$;
DROP TRIGGER licences_status_steps ON licences;
CREATE TRIGGER licences_status_steps BEFORE UPDATE ON licences FOR EACH ROW
  WHEN ((NEW.status IS DISTINCT FROM OLD.status
         AND (OLD.status IN ('revoked', 'surrendered', 'expired') OR NEW.status = 'draft'))
        OR ((NEW.status IS DISTINCT FROM OLD.status OR NEW.shipped_units IS DISTINCT FROM OLD.shipped_units
             OR NEW.authorised_units IS DISTINCT FROM OLD.authorised_units)
            AND ((NEW.status = 'exhausted' AND NEW.shipped_units <> NEW.authorised_units)
                 OR (NEW.status = 'issued' AND NEW.shipped_units = NEW.authorised_units))))
  EXECUTE FUNCTION licences_status_steps();

-- 7. Reservations (invariant 2) stay without a check at write time: the counters'
--    own CHECK (001) bounds them, but tying reserved_units and shipped_units to the
--    shipments means summing every shipment of each allocation a batch touches, at every
--    booking: O(shipments) per allocation, and an allocation of 100,000 units may hold
--    tens of thousands of bookings. The re-check (ledger_violations, invariant-2) recomputes
--    them from the shipments, and `chipledger check` runs it.

-- 8. The full re-check, 017's and 020's clauses in one function again (as 020 foresaw), and
--    one more: a live manifest row whose unit is in another shipment, or is not of its
--    shipment's product (rule 2 above).
CREATE OR REPLACE FUNCTION ledger_violations() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- Every (organisation, seq) the reader sets list, expanded once for the two checks at the end.
  WITH listed AS (SELECT r.org_id, r.first_seq + d.delta AS seq FROM event_reader_sets r CROSS JOIN LATERAL unnest(r.offsets) AS d(delta))
  SELECT 'invariant-1', l.id, format('allocations %s, recorded %s, authorised %s', coalesce(s.total, 0), l.allocated_units, l.authorised_units)
  FROM licences l LEFT JOIN (SELECT licence_id, sum(units) AS total FROM allocations GROUP BY licence_id) s ON s.licence_id = l.id
  WHERE coalesce(s.total, 0) <> l.allocated_units OR coalesce(s.total, 0) > l.authorised_units
  UNION ALL
  SELECT 'invariant-2', a.id, format('reserved %s (shipments say %s), shipped %s (shipments say %s), units %s',
         a.reserved_units, coalesce(r.reserved, 0), a.shipped_units, coalesce(r.shipped, 0), a.units)
  FROM allocations a LEFT JOIN (
    SELECT allocation_id,
           sum(units) FILTER (WHERE status = 'booked') AS reserved,
           sum(units) FILTER (WHERE status IN ('shipped','cleared','delivered')) AS shipped
    FROM (SELECT export_allocation_id AS allocation_id, units, status FROM shipments
          UNION ALL SELECT import_allocation_id, units, status FROM shipments) both_sides
    GROUP BY allocation_id) r ON r.allocation_id = a.id
  WHERE a.reserved_units <> coalesce(r.reserved, 0) OR a.shipped_units <> coalesce(r.shipped, 0)
     OR a.reserved_units + a.shipped_units > a.units
  UNION ALL
  SELECT 'invariant-2', l.id, format('licence shipped %s, allocations shipped %s', l.shipped_units, coalesce(s.shipped, 0))
  FROM licences l LEFT JOIN (SELECT licence_id, sum(shipped_units) AS shipped FROM allocations GROUP BY licence_id) s ON s.licence_id = l.id
  WHERE l.shipped_units <> coalesce(s.shipped, 0)
  UNION ALL
  SELECT 'invariant-4', ss.serial, format('live in %s shipments', count(*))
  FROM shipment_serials ss WHERE ss.live GROUP BY ss.serial HAVING count(*) > 1
  UNION ALL
  SELECT 'invariant-4', ss.shipment_id, format('serial %s is live but its shipment is %s', ss.serial, s.status)
  FROM shipment_serials ss JOIN shipments s ON s.id = ss.shipment_id
  WHERE ss.live <> (s.status IN ('booked','shipped','cleared'))
  UNION ALL
  SELECT 'invariant-4', s.id, format('serial_count %s, manifest rows %s', s.serial_count, coalesce(m.n, 0))
  FROM shipments s LEFT JOIN (SELECT shipment_id, count(*) AS n FROM shipment_serials GROUP BY shipment_id) m ON m.shipment_id = s.id
  WHERE s.serial_count <> coalesce(m.n, 0)
  UNION ALL
  SELECT 'invariant-4', st.id, format('deployed_units %s, units at site %s', st.deployed_units, coalesce(u.n, 0))
  FROM sites st LEFT JOIN (SELECT site_id, count(*) AS n FROM units WHERE site_id IS NOT NULL GROUP BY site_id) u ON u.site_id = st.id
  WHERE st.deployed_units <> coalesce(u.n, 0)
  UNION ALL
  SELECT 'invariant-5', 'events', format('log size %s, events %s, max seq %s', h.size, e.n, e.max_seq)
  FROM log_head h, (SELECT count(*) AS n, coalesce(max(seq), -1) AS max_seq FROM events) e
  WHERE h.size <> e.n OR e.max_seq <> h.size - 1
  UNION ALL
  SELECT 'invariant-4', ss.shipment_id, format('serial %s is in the manifest but has no unit', ss.serial)
  FROM shipment_serials ss WHERE NOT EXISTS (SELECT 1 FROM units u WHERE u.serial = ss.serial)
  UNION ALL
  -- New in 028: the unit of a live manifest row is in that shipment and of its product. (A
  -- unit in that shipment but for another recipient is the last clause's, from 020.)
  SELECT 'invariant-4', ss.shipment_id,
         format('serial %s is live in the manifest, but its unit is in shipment %s (%s for %s), not in this one (%s for %s)',
                ss.serial, u.shipment_id, u.product_id, u.recipient_org_id, s.product_id, s.recipient_org_id)
  FROM shipment_serials ss JOIN units u ON u.serial = ss.serial JOIN shipments s ON s.id = ss.shipment_id
  WHERE ss.live AND (u.shipment_id <> ss.shipment_id OR u.product_id <> s.product_id)
  UNION ALL
  -- The reader sets list exactly the readers each event names (events.org_ids), once each.
  SELECT 'event-readers', coalesce(n.seq, i.seq)::text,
         CASE WHEN i.seq IS NULL THEN format('the event names %s, but no reader set of %s lists it', n.org_id, n.org_id)
              ELSE format('a reader set of %s lists it, but the event does not name %s', i.org_id, i.org_id) END
  FROM (SELECT DISTINCT o.org_id, e.seq FROM events e CROSS JOIN LATERAL unnest(e.org_ids) AS o(org_id)) n
  FULL JOIN listed i
    ON i.org_id = n.org_id AND i.seq = n.seq
  WHERE n.seq IS NULL OR i.seq IS NULL
  UNION ALL
  SELECT 'event-readers', listed.seq::text, format('reader sets of %s list it %s times', listed.org_id, count(*))
  FROM listed
  GROUP BY listed.org_id, listed.seq HAVING count(*) > 1
  UNION ALL
  SELECT 'invariant-3', s.id, format('export allocation %s (licence %s, %s, held by %s), import allocation %s (licence %s, %s); shipment %s → %s, %s to %s',
         ea.id, el.id, el.direction, el.holder_org_id, ia.id, il.id, il.direction, s.exporter_org_id, s.recipient_org_id, s.origin, s.destination)
  FROM shipments s
  JOIN allocations ea ON ea.id = s.export_allocation_id JOIN licences el ON el.id = ea.licence_id
  JOIN allocations ia ON ia.id = s.import_allocation_id JOIN licences il ON il.id = ia.licence_id
  WHERE el.direction <> 'export' OR el.holder_org_id <> s.exporter_org_id OR il.direction <> 'import'
     OR ea.recipient_org_id <> s.recipient_org_id OR ia.recipient_org_id <> s.recipient_org_id
     OR el.origin <> s.origin OR el.destination <> s.destination OR il.origin <> s.origin OR il.destination <> s.destination
  UNION ALL
  SELECT 'event-serials', d.seq::text,
         CASE WHEN s.seq IS NULL THEN 'the event records a serial digest, but its lines are not stored'
              ELSE format('its stored lines hash to %s, but the event records %s', s.digest, d.digest) END
  FROM (SELECT e.seq, convert_from(e.canonical, 'UTF8')::jsonb -> 'input' ->> 'serialsSha256' AS digest
        FROM events e, event_serials_from f
        WHERE e.seq >= f.seq AND position('"serialsSha256"'::bytea IN e.canonical) > 0) d
  -- Each list hashed once, for the comparison and the message alike.
  LEFT JOIN (SELECT seq, encode(sha256(convert_to(array_to_string(lines, E'\n') || E'\n', 'UTF8')), 'hex') AS digest FROM event_serials) s ON s.seq = d.seq
  WHERE d.digest IS NOT NULL AND (s.seq IS NULL OR s.digest <> d.digest)
  UNION ALL
  SELECT 'event-serials', s.seq::text, 'serial lines are stored for an event that records no serial digest'
  FROM event_serials s LEFT JOIN events e ON e.seq = s.seq
  WHERE e.seq IS NULL OR convert_from(e.canonical, 'UTF8')::jsonb -> 'input' ->> 'serialsSha256' IS NULL
  UNION ALL
  -- 020's clauses.
  SELECT 'invariant-4', u.serial, format('deployed at site %s of %s, but the unit is %s''s', u.site_id, st.org_id, u.recipient_org_id)
  FROM units u JOIN sites st ON st.id = u.site_id
  WHERE st.org_id <> u.recipient_org_id
  UNION ALL
  SELECT 'invariant-4', u.serial,
         CASE WHEN s.recipient_org_id <> u.recipient_org_id
              THEN format('the unit is %s''s, but its shipment %s is for %s', u.recipient_org_id, s.id, s.recipient_org_id)
              ELSE format('the unit is %s, but its shipment %s is %s', u.custody, s.id, s.status) END
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE s.recipient_org_id <> u.recipient_org_id
     OR (u.custody IN ('delivered', 'deployed') AND s.status <> 'delivered')
$$;
DROP FUNCTION ledger_violations_017();

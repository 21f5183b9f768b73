-- The sweep's look-up of bookings under a licence no longer in force, without reading the
-- ledger's history each tick (s13 review 2, defect 2). The sweep runs every few seconds under
-- the head lock, so every writer waits for it. Until now it found such bookings through every
-- allocation holding a reservation, a join that read all of them: 54–69 ms a tick at 200,000
-- allocations with nothing due, by the s13 review; 46 ms before and 1.1 ms after this
-- migration by bench/experiments/sweep-due.ts (docs/BENCHMARKS.md, session 14).
--
-- 1. Which licences lapsed with bookings possibly still under them. A licence leaves force
--    only by a status change the ledger writes (revoke, surrender, or the sweep's expiry of
--    one past its validity; an exhausted licence holds no reservation), and no step leaves
--    revoked, surrendered or expired (025), so nothing books under it again. The change
--    itself marks the licence, in the same statement. The sweep (store/ledger-tables.ts
--    loadDue) looks for lapsed bookings under the marked licences only, and deletes a mark
--    once no allocation of its licence reserves anything (every booked shipment reserves on
--    both its allocations; the allocations_sum triggers hold it). Every lapse is marked,
--    reservations or not: a batch writes licences before allocations, so a booking made
--    earlier in the batch than the command that revokes its licence is not in allocations
--    yet when the licence's row is written. A mark without bookings lives until the next sweep.
--    A licence past its validity but not yet expired by the sweep needs no mark: the sweep
--    finds it by its validity (2.), and its bookings in the same batch.
--    Crash note: the mark is written by the licence's own UPDATE, so it commits with it or
--    not at all.
CREATE TABLE licence_lapses (
  licence_id  text PRIMARY KEY REFERENCES licences(id)
);

CREATE FUNCTION licences_mark_lapse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO licence_lapses (licence_id) VALUES (NEW.id) ON CONFLICT (licence_id) DO NOTHING;
  RETURN NULL;
END;
$$;
-- A status change only (a licence's row is rewritten whole; most writes leave its status).
CREATE TRIGGER licences_mark_lapse AFTER UPDATE OF status ON licences FOR EACH ROW
  WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('expired', 'revoked', 'surrendered'))
  EXECUTE FUNCTION licences_mark_lapse();
-- And a licence written new in an ended status (made and revoked in one batch, which writes
-- its row once, as its last command left it): no booking can be under it yet, but nothing
-- about a mark should depend on that.
CREATE TRIGGER licences_mark_lapse_insert AFTER INSERT ON licences FOR EACH ROW
  WHEN (NEW.status IN ('expired', 'revoked', 'surrendered'))
  EXECUTE FUNCTION licences_mark_lapse();

-- The licences that lapsed before this migration, with bookings still under them.
INSERT INTO licence_lapses (licence_id)
SELECT l.id FROM licences l
WHERE l.status IN ('expired', 'revoked', 'surrendered')
  AND EXISTS (SELECT 1 FROM allocations a WHERE a.licence_id = l.id AND a.reserved_units > 0);

--    (1, continued) The bookings of a lapsed licence's reserving allocations are then read
--    from the booked shipments (shipments_due): all live bookings, not the ledger's history,
--    once per lapse. Indexes of booked shipments by allocation would make that a look-up,
--    but every booking would pay their two inserts: 13–40 µs a booking (64-row upserts,
--    alternating; docs/BENCHMARKS.md, session 14), on the path whose throughput is short of
--    its goal, for a scan paid once when a licence lapses.

-- 2. Licences the sweep may expire, by the end of their validity: the ones in force or
--    exhausted. Before, the sweep read every licence each tick. Shipping's updates of a
--    licence (shipped_units) leave both the column and the predicate's status, so they stay
--    heap-only; only a status change adds an entry.
CREATE INDEX licences_expirable_valid_to ON licences (valid_to) WHERE status IN ('issued', 'suspended', 'exhausted');

-- 3. The full re-check, whole again: 028's clauses, 030's (a licence that does not match its
--    version), 032's (custody that its shipment's status does not allow, a unit its
--    shipment's manifest does not list, event times that go back), and three more:
--    - 033: a unit whose ever_shipped disagrees with the shipments that list it;
--    - 033: a released claim that still holds a GPU UUID, keeping it from the unit it belongs to;
--    - 034: a licence no longer in force whose allocations still reserve units, without its
--      mark: the sweep would not find its bookings, which would wait for their own deadlines.
--    030 and 032 each wrapped the definition before them; those wrappers go, newest first
--    (ledger_violations_before_032 calls ledger_violations_before_030). The last clause
--    reads every reserving allocation once, as invariant 2's clause already does.
DROP FUNCTION ledger_violations();
DROP FUNCTION ledger_violations_before_032();
DROP FUNCTION ledger_violations_before_030();
CREATE FUNCTION ledger_violations() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
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
  UNION ALL
  -- 030's clause.
  SELECT 'licence-versions', l.id, format('does not match its version %s: %s', l.version, m.mismatch)
  FROM licences l CROSS JOIN LATERAL (SELECT licence_version_mismatch(l) AS mismatch) m
  WHERE m.mismatch IS NOT NULL
  UNION ALL
  -- 032's clauses.
  SELECT 'invariant-4', u.serial, format('the unit is %s, but its shipment %s is %s', u.custody, s.id, s.status)
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE NOT unit_custody_fits(u.custody, s.status)
    AND s.recipient_org_id = u.recipient_org_id
    AND NOT (u.custody IN ('delivered', 'deployed') AND s.status <> 'delivered')
  UNION ALL
  SELECT 'invariant-4', u.serial, format('the unit is %s in shipment %s, whose manifest does not list it', u.custody, u.shipment_id)
  FROM units u
  WHERE NOT EXISTS (SELECT 1 FROM shipment_serials ss WHERE ss.shipment_id = u.shipment_id AND ss.serial = u.serial)
  UNION ALL
  SELECT 'event-times', 'event ' || e.seq, format('dated %s, before event %s at %s', e.at, e.seq - 1, e.before)
  FROM (SELECT seq, at, lag(at) OVER (ORDER BY seq) AS before FROM events) e
  WHERE e.at < e.before
  UNION ALL
  -- 033's clauses. Serials that a shipment which shipped lists: one hash join, not a look-up
  -- a unit (shipment_serials has no index on the serial alone, only on live ones).
  SELECT 'invariant-4', u.serial,
         CASE WHEN u.ever_shipped THEN 'the unit is marked as shipped, but no shipment that lists it has shipped'
              ELSE 'the unit is marked as never shipped, but a shipment that lists it has shipped' END
  FROM units u LEFT JOIN (SELECT DISTINCT ss.serial FROM shipment_serials ss JOIN shipments s ON s.id = ss.shipment_id
                          WHERE s.status IN ('shipped', 'cleared', 'delivered')) shipped ON shipped.serial = u.serial
  WHERE u.ever_shipped <> (shipped.serial IS NOT NULL)
  UNION ALL
  SELECT 'invariant-4', u.serial, format('the unit never shipped and its shipment %s is %s, but it still holds GPU UUID %s', s.id, s.status, u.gpu_uuid)
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE NOT u.ever_shipped AND s.status IN ('cancelled', 'expired') AND u.gpu_uuid IS NOT NULL
  UNION ALL
  -- 034's clause.
  SELECT 'licence-lapses', l.id, format('the licence is %s and its allocations still reserve %s units, but it is not marked for the sweep (licence_lapses)', l.status, r.reserved)
  FROM licences l JOIN (SELECT licence_id, sum(reserved_units) AS reserved FROM allocations WHERE reserved_units > 0 GROUP BY licence_id) r ON r.licence_id = l.id
  WHERE l.status IN ('expired', 'revoked', 'surrendered') AND NOT EXISTS (SELECT 1 FROM licence_lapses m WHERE m.licence_id = l.id)
$$;

-- The serial lists that events record by digest (ledger/events.ts recordSerials): one row
-- per event that named serials (a booking's or a manifest's serials, units deployed,
-- decommissioned, reported lost or returned), holding the lines its digest covers, sorted.
-- Before this, an event kept only the digest, and nothing kept which units an event such
-- as units.report_lost named: the digest could not be recomputed. GET
-- /v1/events/:seq/serials serves the lines as they were hashed.
--
-- Events committed before this migration have no lines: event_serials_from holds the log
-- size at this migration, and the re-check holds every event from there on.
CREATE TABLE event_serials (
  seq    bigint PRIMARY KEY CHECK (seq >= 0),
  lines  text[] NOT NULL CHECK (cardinality(lines) >= 1 AND array_ndims(lines) = 1 AND array_position(lines, NULL) IS NULL)
);
-- Stored uncompressed: PostgreSQL's pglz took 34 ms of a 100,000-serial manifest to
-- compress the list, against 18 ms to store it as it is, about 1.6 MB
-- (bench/experiments/manifest-copy.ts, medians of 5); lz4 is not in this build.
ALTER TABLE event_serials ALTER COLUMN lines SET STORAGE EXTERNAL;
CREATE TABLE event_serials_from (
  id   integer PRIMARY KEY CHECK (id = 1),
  seq  bigint NOT NULL CHECK (seq >= 0)
);
INSERT INTO event_serials_from SELECT 1, size FROM log_head;

-- The full re-check (ledger_violations, as 013 left it) now also holds
-- - the lists to their events: every event from event_serials_from on that records a serial
--   digest has its lines, the lines hash to that digest (SHA-256 over each line and a
--   newline), and no lines are stored for an event without a digest. Only events whose
--   bytes hold the digest's key are parsed as JSON: a byte search first, so a million
--   bookings without serials cost little.
-- - every shipment to what invariant 3 says of it that no later change can make untrue:
--   its export allocation is on an export licence its exporter holds, its import allocation
--   on an import licence, both allocations are for its recipient, and both licences cover
--   its route. The trigger of 015 checks all of invariant 3 when a shipment is booked; a row
--   changed afterwards (by hand, around the ledger) was not checked again by anything.
--   What an amendment may change later (products, parties, conditions, validity) is left
--   out: a shipment booked under the licence as it then was stays covered.
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
$$;

-- The full re-check in parts (s17): ledger_violations() runs each part listed in
-- ledger_checks, in their order, so a migration that adds or changes a rule adds or replaces
-- its part alone. Before, every such migration restated the whole function (020, 022, 028,
-- 030, 032, 033, 034, 037, 039: each 150 lines or more, of which one clause was new), and a
-- reader had to diff two restatements to find the change.
--
-- No change in what is checked or how it is said: the parts are 039's clauses, word for word,
-- cut where a run of them checks one thing, and run in 039's order, so the rows come out as
-- they did. A part is a plain SQL function over the tables; ledger_violations() calls each
-- within its one statement, so all parts read one snapshot (a STABLE function takes no
-- snapshot of its own: `chipledger check` reads in one REPEATABLE READ transaction anyway).
--
-- A part: ledger_check_<name>() RETURNS TABLE (invariant text, subject text, detail text).
-- A new one is created and listed here with a position (tens, so one can go between two);
-- a changed one is replaced with CREATE OR REPLACE FUNCTION, its comment saying what changed.

CREATE TABLE ledger_checks (
  position  integer PRIMARY KEY,
  part      text NOT NULL UNIQUE CHECK (part ~ '^ledger_check_[a-z0-9_]+$')
);

-- Invariant 1: a licence's allocations add up to its allocated units, within its authorised units.
CREATE FUNCTION ledger_check_licence_allocations() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-1', l.id, format('allocations %s, recorded %s, authorised %s', coalesce(s.total, 0), l.allocated_units, l.authorised_units)
  FROM licences l LEFT JOIN (SELECT licence_id, sum(units) AS total FROM allocations GROUP BY licence_id) s ON s.licence_id = l.id
  WHERE coalesce(s.total, 0) <> l.allocated_units OR coalesce(s.total, 0) > l.authorised_units
$$;

-- Invariant 2: each allocation's reserved and shipped units are its shipments', within its units; a licence's shipped units are its allocations'.
CREATE FUNCTION ledger_check_allocation_balances() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
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
$$;

-- Invariant 4: a serial is live in one shipment at most, only while that shipment is live; a shipment's serial count is its manifest's.
CREATE FUNCTION ledger_check_manifest_rows() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
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
$$;

-- Invariant 4: a site's deployed units are the units at it.
CREATE FUNCTION ledger_check_site_counts() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-4', st.id, format('deployed_units %s, units at site %s', st.deployed_units, coalesce(u.n, 0))
  FROM sites st LEFT JOIN (SELECT site_id, count(*) AS n FROM units WHERE site_id IS NOT NULL GROUP BY site_id) u ON u.site_id = st.id
  WHERE st.deployed_units <> coalesce(u.n, 0)
$$;

-- Invariant 5: the log's size is the number of events, numbered without gaps.
CREATE FUNCTION ledger_check_log_size() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-5', 'events', format('log size %s, events %s, max seq %s', h.size, e.n, e.max_seq)
  FROM log_head h, (SELECT count(*) AS n, coalesce(max(seq), -1) AS max_seq FROM events) e
  WHERE h.size <> e.n OR e.max_seq <> h.size - 1
$$;

-- Invariant 4: every manifest line has its unit, and a live line's unit is in that shipment, of its product.
CREATE FUNCTION ledger_check_manifest_units() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
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
$$;

-- The reader sets list exactly the readers each event names, once each.
CREATE FUNCTION ledger_check_event_readers() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- Every (organisation, seq) the reader sets list, expanded once for its two clauses.
  WITH listed AS (SELECT r.org_id, r.first_seq + d.delta AS seq FROM event_reader_sets r CROSS JOIN LATERAL unnest(r.offsets) AS d(delta))
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
$$;

-- Invariant 3: a shipment's two allocations are on an export and an import licence of its exporter, recipient and route.
CREATE FUNCTION ledger_check_shipment_routes() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-3', s.id, format('export allocation %s (licence %s, %s, held by %s), import allocation %s (licence %s, %s); shipment %s → %s, %s to %s',
         ea.id, el.id, el.direction, el.holder_org_id, ia.id, il.id, il.direction, s.exporter_org_id, s.recipient_org_id, s.origin, s.destination)
  FROM shipments s
  JOIN allocations ea ON ea.id = s.export_allocation_id JOIN licences el ON el.id = ea.licence_id
  JOIN allocations ia ON ia.id = s.import_allocation_id JOIN licences il ON il.id = ia.licence_id
  WHERE el.direction <> 'export' OR el.holder_org_id <> s.exporter_org_id OR il.direction <> 'import'
     OR ea.recipient_org_id <> s.recipient_org_id OR ia.recipient_org_id <> s.recipient_org_id
     OR el.origin <> s.origin OR el.destination <> s.destination OR il.origin <> s.origin OR il.destination <> s.destination
$$;

-- Serial lists: stored lines hash to the digest their event records, and none is stored for an event without one.
CREATE FUNCTION ledger_check_event_serials() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
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

-- Invariant 4: a unit is at a site of its recipient, its recipient is its shipment's, and it is delivered or deployed only from a delivered shipment.
CREATE FUNCTION ledger_check_unit_owners() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
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

-- A licence matches its newest version.
CREATE FUNCTION ledger_check_licence_versions() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- 030's clause.
  SELECT 'licence-versions', l.id, format('does not match its version %s: %s', l.version, m.mismatch)
  FROM licences l CROSS JOIN LATERAL (SELECT licence_version_mismatch(l) AS mismatch) m
  WHERE m.mismatch IS NOT NULL
$$;

-- Invariant 4: a unit's custody fits its shipment's status, and its shipment's manifest lists it.
CREATE FUNCTION ledger_check_unit_custody() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
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
$$;

-- Events are dated in seq order.
CREATE FUNCTION ledger_check_event_times() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'event-times', 'event ' || e.seq, format('dated %s, before event %s at %s', e.at, e.seq - 1, e.before)
  FROM (SELECT seq, at, lag(at) OVER (ORDER BY seq) AS before FROM events) e
  WHERE e.at < e.before
$$;

-- Invariant 4: a unit is marked as shipped exactly when a shipment listing it shipped; a booking that ended unshipped let go of the GPU UUIDs it gave.
CREATE FUNCTION ledger_check_unit_claims() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- 033's clauses. Serials that a shipment which shipped lists: one hash join, not a look-up
  -- a unit (shipment_serials has no index on the serial alone, only on live ones).
  SELECT 'invariant-4', u.serial,
         CASE WHEN u.ever_shipped THEN 'the unit is marked as shipped, but no shipment that lists it has shipped'
              ELSE 'the unit is marked as never shipped, but a shipment that lists it has shipped' END
  FROM units u LEFT JOIN (SELECT DISTINCT ss.serial FROM shipment_serials ss JOIN shipments s ON s.id = ss.shipment_id
                          WHERE s.status IN ('shipped', 'cleared', 'delivered')) shipped ON shipped.serial = u.serial
  WHERE u.ever_shipped <> (shipped.serial IS NOT NULL)
  UNION ALL
  -- 033's second clause, widened by 037: any GPU UUID that never shipped is let go when its
  -- booking ends, on a unit that shipped before (returned and listed again) as on a new one.
  SELECT 'invariant-4', u.serial,
         CASE WHEN NOT u.ever_shipped THEN format('the unit never shipped and its shipment %s is %s, but it still holds GPU UUID %s', s.id, s.status, u.gpu_uuid)
              ELSE format('its GPU UUID %s never shipped and its shipment %s is %s, but the unit still holds it', u.gpu_uuid, s.id, s.status) END
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE NOT u.gpu_uuid_shipped AND s.status IN ('cancelled', 'expired') AND u.gpu_uuid IS NOT NULL
$$;

-- A licence no longer in force that still reserves units is marked for the sweep.
CREATE FUNCTION ledger_check_licence_lapses() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- 034's clause.
  SELECT 'licence-lapses', l.id, format('the licence is %s and its allocations still reserve %s units, but it is not marked for the sweep (licence_lapses)', l.status, r.reserved)
  FROM licences l JOIN (SELECT licence_id, sum(reserved_units) AS reserved FROM allocations WHERE reserved_units > 0 GROUP BY licence_id) r ON r.licence_id = l.id
  WHERE l.status IN ('expired', 'revoked', 'surrendered') AND NOT EXISTS (SELECT 1 FROM licence_lapses m WHERE m.licence_id = l.id)
$$;

-- GPU UUIDs are of nvidia-smi's form.
CREATE FUNCTION ledger_check_gpu_uuid_form() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- 037's clause: a GPU UUID not of nvidia-smi's form, written before 037 (which refuses one
  -- only when it is written). Either case of hex digits: a unit listed before 025 may keep
  -- upper case, which every comparison and the unique index (027) already see through.
  SELECT 'gpu-uuid-form', u.serial, format('GPU UUID %s is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)', u.gpu_uuid)
  FROM units u
  WHERE u.gpu_uuid IS NOT NULL AND u.gpu_uuid !~ '^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
$$;

-- An identifier belongs to one organisation.
CREATE FUNCTION ledger_check_organisation_identifiers() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- 039's clause: an identifier held by more than one organisation, its spellings compared as
  -- the ledger now spells them (trimmed, in capitals: rows written before may hold others).
  -- The first to register it (by created_seq) holds it; each later one is reported, naming it.
  SELECT 'organisation-identifier', i.id, format('identifiers.%s %s is held by organisation %s, registered before it; an identifier belongs to one organisation', i.kind, i.value, i.first_id)
  FROM (SELECT o.id, e.key AS kind, e.value, first_value(o.id) OVER (PARTITION BY e.key, upper(btrim(e.value)) ORDER BY o.created_seq, o.id) AS first_id
        FROM organisations o CROSS JOIN LATERAL jsonb_each_text(o.identifiers) AS e(key, value)) i
  WHERE i.id <> i.first_id
$$;

INSERT INTO ledger_checks (position, part) VALUES
  (10, 'ledger_check_licence_allocations'),
  (20, 'ledger_check_allocation_balances'),
  (30, 'ledger_check_manifest_rows'),
  (40, 'ledger_check_site_counts'),
  (50, 'ledger_check_log_size'),
  (60, 'ledger_check_manifest_units'),
  (70, 'ledger_check_event_readers'),
  (80, 'ledger_check_shipment_routes'),
  (90, 'ledger_check_event_serials'),
  (100, 'ledger_check_unit_owners'),
  (110, 'ledger_check_licence_versions'),
  (120, 'ledger_check_unit_custody'),
  (130, 'ledger_check_event_times'),
  (140, 'ledger_check_unit_claims'),
  (150, 'ledger_check_licence_lapses'),
  (160, 'ledger_check_gpu_uuid_form'),
  (170, 'ledger_check_organisation_identifiers');

-- The listing only grows: a row taken out or changed would switch a part off without a word,
-- with row rights alone (the function it replaced took DDL rights to change). A migration
-- adds a part with an INSERT and changes one with CREATE OR REPLACE FUNCTION.
CREATE FUNCTION ledger_checks_only_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger_checks lists the parts of the re-check; a part is added, never taken out or changed (% refused)', TG_OP
    USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_checks_only_grow BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_checks
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_checks_only_grow();

-- Each listed part, in order. plpgsql for the loop; each part's name is checked by the table
-- and quoted as an identifier here. Then every part there is that the listing leaves out (taken
-- out with the trigger off, or created by a migration that forgot to list it), as a violation:
-- the re-check says when it does not run whole.
CREATE OR REPLACE FUNCTION ledger_violations() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE plpgsql STABLE AS $$
DECLARE
  listed record;
BEGIN
  FOR listed IN SELECT c.part FROM ledger_checks c ORDER BY c.position LOOP
    RETURN QUERY EXECUTE format('SELECT invariant, subject, detail FROM %I()', listed.part);
  END LOOP;
  RETURN QUERY
    SELECT 'ledger-checks', p.proname::text, 'a part of the re-check that ledger_checks does not list, so it was not run'
    FROM pg_proc p
    WHERE p.proname LIKE 'ledger\_check\_%' AND pg_function_is_visible(p.oid)
      AND NOT EXISTS (SELECT 1 FROM ledger_checks c WHERE c.part = p.proname)
    ORDER BY p.proname;
END $$;

-- A unit's identity is fixed when it ships, not when a booking first lists it. Until now the
-- first manifest to list a serial decided for good whose unit it was, of which product, and
-- its GPU UUID (019): a booking cancelled or expired before it shipped left all three as it
-- had listed them. So a manifest's typo (a wrong GPU UUID, a serial listed under the wrong
-- product) could never be put right, and an exporter could list another's serials or GPU
-- UUIDs in a booking, cancel it, and keep them from their real exporter for ever (s13 note,
-- "serial squatting").
--
-- Now a listing is a claim that lasts as long as its booking. A unit that has never shipped,
-- in a booking that was cancelled or expired, is released: the next manifest to list it, any
-- exporter's, of any product, gives it its identity afresh, and it holds no GPU UUID
-- meanwhile (so that the unique index of 027 lets another unit take the one it was listed
-- with). Once a unit has shipped, 019's rules hold as before: it stays its exporter's and
-- keeps its product and GPU UUID, through returns and bookings that end.
--
-- 1. Whether a unit has shipped: custody left 'licensed' under some shipment. A returned unit
--    listed again is 'licensed' again, so custody alone forgets it. Set by shipping (the
--    set-based custody change, store/batch-writes.ts) and never unset. Rows already here
--    have shipped when a shipment that shipped lists them (shipping needs a full manifest and
--    moves every unit it lists), or when they are anywhere but 'licensed'. The column is
--    added true, so that the backfill updates only units still 'licensed' (none in 022's end
--    states, which never change); then its default is what a new unit is: not shipped. The
--    CHECK holds the column to the custody: a unit in transit or beyond has shipped.
ALTER TABLE units ADD COLUMN ever_shipped boolean NOT NULL DEFAULT true;
UPDATE units u SET ever_shipped = false
WHERE u.custody = 'licensed'
  AND NOT EXISTS (SELECT 1 FROM shipment_serials ss JOIN shipments s ON s.id = ss.shipment_id
                  WHERE ss.serial = u.serial AND s.status IN ('shipped', 'cleared', 'delivered'));
ALTER TABLE units ALTER COLUMN ever_shipped SET DEFAULT false;
ALTER TABLE units ADD CONSTRAINT units_shipped_custody CHECK (ever_shipped OR custody = 'licensed');

-- 2. 032's rule, with released claims let go. "Released": the unit never shipped and the
--    shipment that holds it was cancelled or expired. A released unit may move to any
--    exporter's shipment with another product and GPU UUID (the listing that takes it), and
--    may lose its GPU UUID where it is (the release itself, when its booking ends). The
--    checks of a move (the new shipment lists it, its custody fits) hold for every unit.
--    The function now reads the old shipment first, one primary-key look-up, still only for
--    rows its WHEN lets through: a unit listed again, or a released unit's GPU UUID let go.
--    Cancelling a booking whose 100,000-serial manifest gave GPU UUIDs took 2.2 s against
--    0.6 s without GPU UUIDs (one run, shared two-core host): each unit's row is rewritten
--    with its indexes, and the function called. Rare, and paid once, by that cancel or expiry.
CREATE OR REPLACE FUNCTION units_keep_identity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE old_exporter text; old_status text; new_exporter text; new_status text; released boolean; moved boolean;
BEGIN
  IF OLD.ever_shipped AND NOT NEW.ever_shipped THEN
    RAISE EXCEPTION 'unit % has shipped; that stays so', OLD.serial
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  SELECT exporter_org_id, status INTO old_exporter, old_status FROM shipments WHERE id = OLD.shipment_id;
  released := NOT OLD.ever_shipped AND old_status IN ('cancelled', 'expired');
  moved := NEW.shipment_id <> OLD.shipment_id;
  IF NEW.product_id <> OLD.product_id AND NOT (released AND moved) THEN
    RAISE EXCEPTION 'unit % is a unit of product %; it cannot become one of %', OLD.serial, OLD.product_id, NEW.product_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid AND NOT (released AND (moved OR NEW.gpu_uuid IS NULL)) THEN
    RAISE EXCEPTION 'unit % has GPU UUID %; it cannot change', OLD.serial, OLD.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF moved THEN
    IF OLD.custody NOT IN ('licensed', 'returned') THEN
      RAISE EXCEPTION 'unit % is %; it cannot be listed in another shipment', OLD.serial, OLD.custody
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    SELECT exporter_org_id, status INTO new_exporter, new_status FROM shipments WHERE id = NEW.shipment_id;
    IF NOT released AND new_exporter IS DISTINCT FROM old_exporter THEN
      RAISE EXCEPTION 'unit % is %''s (it has shipped, or its booking % is %); shipment % is not that exporter''s', OLD.serial, old_exporter, OLD.shipment_id, old_status, NEW.shipment_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    -- A released unit goes to another exporter only by a listing, in a booking that claims it
    -- now: not back into an ended one whose manifest once named it (a batch that lists it
    -- and cancels that booking at once fails here, and passes when run again in halves).
    IF released AND new_exporter IS DISTINCT FROM old_exporter AND new_status IN ('cancelled', 'expired') THEN
      RAISE EXCEPTION 'unit % cannot move to shipment % of %: that booking is %, so it claims no unit', OLD.serial, NEW.shipment_id, new_exporter, new_status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM shipment_serials WHERE shipment_id = NEW.shipment_id AND serial = NEW.serial) THEN
      RAISE EXCEPTION 'unit % cannot move to shipment %: its manifest does not list the unit', OLD.serial, NEW.shipment_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
    IF NOT unit_custody_fits(NEW.custody, new_status) THEN
      RAISE EXCEPTION 'unit % cannot be % in shipment %, which is %', OLD.serial, NEW.custody, NEW.shipment_id, new_status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
    END IF;
  END IF;
  RETURN NEW;
END $$;
--    019's WHEN, and a shipped unit unmarked. Shipping 100,000 units sets ever_shipped
--    from false to true, which the WHEN lets by without calling the function.
DROP TRIGGER units_keep_identity ON units;
CREATE TRIGGER units_keep_identity BEFORE UPDATE ON units FOR EACH ROW
  WHEN (NEW.product_id IS DISTINCT FROM OLD.product_id
        OR (OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid)
        OR NEW.shipment_id IS DISTINCT FROM OLD.shipment_id
        OR (OLD.ever_shipped AND NOT NEW.ever_shipped))
  EXECUTE FUNCTION units_keep_identity();

-- 3. Claims that ended before this migration are released as the ledger now releases them
--    when a booking ends (ledger/handlers/shipments.ts, releaseClaims).
UPDATE units u SET gpu_uuid = NULL
FROM shipments s
WHERE s.id = u.shipment_id AND s.status IN ('cancelled', 'expired') AND NOT u.ever_shipped AND u.gpu_uuid IS NOT NULL;

-- 4. The full re-check, whole again: 028's clauses, 030's (a licence that does not match its
--    version), 032's (custody that its shipment's status does not allow, a unit its
--    shipment's manifest does not list, event times that go back), and two more:
--    - a unit whose ever_shipped disagrees with the shipments that list it;
--    - a released claim that still holds a GPU UUID, keeping it from the unit it belongs to.
--    030 and 032 each wrapped the definition before them; those wrappers go, newest first
--    (ledger_violations_before_032 calls ledger_violations_before_030).
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
  -- New in 033. Serials that a shipment which shipped lists: one hash join, not a look-up
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
$$;

-- A GPU UUID becomes a unit's for good when a shipment carrying it ships, not when a booking
-- lists it; and a GPU UUID is what nvidia-smi prints, nothing looser.
--
-- 1. Until now (033) a booking that ended unshipped let go of the GPU UUIDs it gave only on
--    units that had never shipped. A unit that shipped without one, was returned and was
--    listed again kept whatever GPU UUID that listing gave it, though the booking was then
--    cancelled: an exporter could list its returned unit with another exporter's GPU UUID,
--    cancel, and keep that GPU from being listed by its real exporter for ever (and its own
--    unit from being listed with its true one). Now a GPU UUID is a claim, as a listing of a
--    unit is, until it ships.
--
--    gpu_uuid_shipped: the unit's GPU UUID went out with it, in a shipment that shipped. Set
--    by shipping (the set-based custody change and the batch's loaded rows, store/
--    batch-writes.ts and ledger/handlers/shipments.ts, as ever_shipped is) and never unset:
--    from then on the GPU UUID never changes. A GPU UUID that has not shipped is let go when
--    its booking is cancelled or expires (ledger/handlers/shipments.ts, releaseClaims), on
--    any unit.
--
--    Rows already here: a unit holds a shipped GPU UUID when it has shipped and has one. A
--    unit out of 'licensed' holds the GPU UUID it shipped with (a listing is the only way the
--    ledger gives one, and shipping moves every unit it lists out of 'licensed'): that is
--    certain. A unit that shipped and was listed again, in a booking that ended or one that
--    lives, may hold the GPU UUID it shipped with or one that booking gave it (the squatting
--    above); nothing stored says which (shipment_serials does not record GPU UUIDs, and
--    event_serials only the ones a manifest gave), so it keeps it: forgetting the GPU UUID of
--    a GPU that shipped would lose the record (a first version of this migration left the
--    units of live bookings unmarked, and a cancel then dropped the UUID they had shipped
--    with), while a squatted one can be put right by a person (trigger units_keep_identity
--    guards it). On a unit that never shipped, a GPU UUID is a live booking's claim: it
--    becomes fixed if that booking ships, and is let go if it ends.
--    The column is added false, which is what every new unit is (a manifest's COPY sends no
--    value for it), and only the units with a shipped GPU UUID are updated. 022's trigger
--    refuses any change to a decommissioned or lost unit, so it is off for that statement,
--    which changes only the new column.
ALTER TABLE units ADD COLUMN gpu_uuid_shipped boolean NOT NULL DEFAULT false;
ALTER TABLE units DISABLE TRIGGER units_keep_end_state;
UPDATE units u SET gpu_uuid_shipped = true
WHERE u.gpu_uuid IS NOT NULL AND u.ever_shipped;
ALTER TABLE units ENABLE TRIGGER units_keep_end_state;
--    With that, no GPU UUID that never shipped is left on a unit whose booking ended: units
--    that never shipped were released by 033, and the others are marked shipped above.
--
--    The column's rules beside the custody: a shipped GPU UUID is there and its unit has
--    shipped; a GPU UUID that has not shipped is a booking's claim, on a unit still
--    'licensed'. Every row here passes them after the update above. Two boolean tests a row
--    written: 100,000 new units inserted server-side (no index, so the rest costs least) took
--    105 ms against 98 ms without the column and its CHECKs, best of twelve alternating runs
--    (medians 170 and 133 ms, on a shared two-core host under load); a manifest's import of
--    100,000 serials, of which that insert is a part, takes about 2.7 s (docs/BENCHMARKS.md).
ALTER TABLE units ADD CONSTRAINT units_gpu_uuid_shipped CHECK (NOT gpu_uuid_shipped OR (gpu_uuid IS NOT NULL AND ever_shipped));
ALTER TABLE units ADD CONSTRAINT units_gpu_uuid_claim CHECK (gpu_uuid_shipped OR gpu_uuid IS NULL OR custody = 'licensed');

-- 2. 033's rule, with GPU UUIDs released by what they are, not by whether their unit shipped:
--    a GPU UUID that never shipped, on a unit whose booking was cancelled or expired, may be
--    let go where it is (the release) or replaced by a listing that moves the unit. A shipped
--    GPU UUID never changes, and stays marked; the mark is set only by shipping (the unit
--    leaves 'licensed', or 'returned' for a booking shipped in the same batch, for transit or
--    beyond). The product and whose the unit is still follow ever_shipped, as in 033.
CREATE OR REPLACE FUNCTION units_keep_identity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE old_exporter text; old_status text; new_exporter text; new_status text; released boolean; uuid_released boolean; moved boolean;
BEGIN
  IF OLD.ever_shipped AND NOT NEW.ever_shipped THEN
    RAISE EXCEPTION 'unit % has shipped; that stays so', OLD.serial
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF OLD.gpu_uuid_shipped AND NOT NEW.gpu_uuid_shipped THEN
    RAISE EXCEPTION 'unit % shipped with GPU UUID %; that stays so', OLD.serial, OLD.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF NEW.gpu_uuid_shipped AND NOT OLD.gpu_uuid_shipped AND NOT (OLD.custody IN ('licensed', 'returned') AND NEW.custody NOT IN ('licensed', 'returned')) THEN
    RAISE EXCEPTION 'unit % is %; its GPU UUID % becomes fixed only by shipping', OLD.serial, NEW.custody, NEW.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  SELECT exporter_org_id, status INTO old_exporter, old_status FROM shipments WHERE id = OLD.shipment_id;
  released := NOT OLD.ever_shipped AND old_status IN ('cancelled', 'expired');
  uuid_released := NOT OLD.gpu_uuid_shipped AND old_status IN ('cancelled', 'expired');
  moved := NEW.shipment_id <> OLD.shipment_id;
  IF NEW.product_id <> OLD.product_id AND NOT (released AND moved) THEN
    RAISE EXCEPTION 'unit % is a unit of product %; it cannot become one of %', OLD.serial, OLD.product_id, NEW.product_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid AND NOT (uuid_released AND (moved OR NEW.gpu_uuid IS NULL)) THEN
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
    -- As in 033: a released unit goes to another exporter only by a listing, in a booking
    -- that claims it now.
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
--    033's WHEN, and a change of the mark other than shipping's. Shipping 100,000 units sets
--    the mark (where they have a GPU UUID) as their custody leaves 'licensed': one more
--    comparison a row, and the function is not called.
DROP TRIGGER units_keep_identity ON units;
CREATE TRIGGER units_keep_identity BEFORE UPDATE ON units FOR EACH ROW
  WHEN (NEW.product_id IS DISTINCT FROM OLD.product_id
        OR (OLD.gpu_uuid IS NOT NULL AND NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid)
        OR NEW.shipment_id IS DISTINCT FROM OLD.shipment_id
        OR (OLD.ever_shipped AND NOT NEW.ever_shipped)
        OR (NEW.gpu_uuid_shipped <> OLD.gpu_uuid_shipped
            AND NOT (NEW.gpu_uuid_shipped AND OLD.custody IN ('licensed', 'returned') AND NEW.custody NOT IN ('licensed', 'returned'))))
  EXECUTE FUNCTION units_keep_identity();

-- 3. A GPU UUID is GPU- and 32 hex digits in nvidia-smi's groups, 8-4-4-4-12, in lower case
--    (ledger/schemas.ts gpuUuidPattern; the ledger lower-cases what it is given). 025 held
--    only the case, so any hyphens, or none, passed: the same 128-bit UUID with its hyphens
--    elsewhere was another GPU to the unique index (027), and GPU--------- a GPU at all.
--    Judged as 025 judges the case, when a value is written new (a unit inserted, or its
--    GPU UUID changed): an old row keeps its spelling (ledger_violations reports it, 4.).
--    The WHEN takes the shape from LIKE (length and the hyphens' places) and the digits
--    from a regular expression without counted repeats, which PostgreSQL runs much faster
--    than the pattern written as nvidia-smi's groups: over 100,000 GPU UUIDs, about 165 ms
--    against 435–720 ms for that pattern, and 55–80 ms for 025's case test alone, which it
--    subsumes and replaces (best of five each, on a shared two-core host under load). A
--    unit without a GPU UUID, as most are at manifest time, stops at the first test.
CREATE OR REPLACE FUNCTION units_gpu_uuid_canonical() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.gpu_uuid ~* '^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    RAISE EXCEPTION 'unit % has GPU UUID %; a GPU UUID is stored as GPU- and lower-case hex (%)', NEW.serial, NEW.gpu_uuid, 'GPU-' || lower(substr(NEW.gpu_uuid, 5))
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_gpu_uuid_canonical';
  END IF;
  RAISE EXCEPTION 'unit % has GPU UUID %; a GPU UUID is GPU- and 32 hex digits as nvidia-smi prints them, GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, in lower case', NEW.serial, NEW.gpu_uuid
    USING ERRCODE = 'check_violation', CONSTRAINT = 'units_gpu_uuid_canonical';
END $$;
DROP TRIGGER units_gpu_uuid_canonical_insert ON units;
DROP TRIGGER units_gpu_uuid_canonical_update ON units;
CREATE TRIGGER units_gpu_uuid_canonical_insert AFTER INSERT ON units FOR EACH ROW
  WHEN (NEW.gpu_uuid IS NOT NULL
        AND NOT (NEW.gpu_uuid LIKE 'GPU-________-____-____-____-____________' AND NEW.gpu_uuid ~ '^GPU-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+$'))
  EXECUTE FUNCTION units_gpu_uuid_canonical();
CREATE TRIGGER units_gpu_uuid_canonical_update BEFORE UPDATE ON units FOR EACH ROW
  WHEN (NEW.gpu_uuid IS DISTINCT FROM OLD.gpu_uuid
        AND NOT (NEW.gpu_uuid LIKE 'GPU-________-____-____-____-____________' AND NEW.gpu_uuid ~ '^GPU-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+$'))
  EXECUTE FUNCTION units_gpu_uuid_canonical();

-- 4. The full re-check, whole again: 034's clauses, with 033's GPU UUID clause widened to a
--    GPU UUID that never shipped on any unit whose booking ended (1.), and one more: a GPU
--    UUID written before this migration that is not of nvidia-smi's form (3.), in either case
--    (025 let units listed before it keep upper case, and says why).
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
  -- 033's second clause, widened by 037: any GPU UUID that never shipped is let go when its
  -- booking ends, on a unit that shipped before (returned and listed again) as on a new one.
  SELECT 'invariant-4', u.serial,
         CASE WHEN NOT u.ever_shipped THEN format('the unit never shipped and its shipment %s is %s, but it still holds GPU UUID %s', s.id, s.status, u.gpu_uuid)
              ELSE format('its GPU UUID %s never shipped and its shipment %s is %s, but the unit still holds it', u.gpu_uuid, s.id, s.status) END
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE NOT u.gpu_uuid_shipped AND s.status IN ('cancelled', 'expired') AND u.gpu_uuid IS NOT NULL
  UNION ALL
  -- 034's clause.
  SELECT 'licence-lapses', l.id, format('the licence is %s and its allocations still reserve %s units, but it is not marked for the sweep (licence_lapses)', l.status, r.reserved)
  FROM licences l JOIN (SELECT licence_id, sum(reserved_units) AS reserved FROM allocations WHERE reserved_units > 0 GROUP BY licence_id) r ON r.licence_id = l.id
  WHERE l.status IN ('expired', 'revoked', 'surrendered') AND NOT EXISTS (SELECT 1 FROM licence_lapses m WHERE m.licence_id = l.id)
  UNION ALL
  -- 037's clause: a GPU UUID not of nvidia-smi's form, written before 037 (which refuses one
  -- only when it is written). Either case of hex digits: a unit listed before 025 may keep
  -- upper case, which every comparison and the unique index (027) already see through.
  SELECT 'gpu-uuid-form', u.serial, format('GPU UUID %s is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)', u.gpu_uuid)
  FROM units u
  WHERE u.gpu_uuid IS NOT NULL AND u.gpu_uuid !~ '^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
$$;

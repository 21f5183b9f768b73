-- A shipment turned back at the border (s37, from s36's domain review): a shipment that has
-- shipped could only go on to cleared and delivered. One refused entry, or turned back before
-- import clearance, had no truthful end: its units stayed in transit and its serials live in
-- it for good, unless someone recorded a clearance or a loss that did not happen. Now a
-- shipped shipment may become `returned` (ledger/handlers/shipments.ts, shipment.return): its
-- units in transit become returned (back with the exporter, who may list them again), its
-- manifest ends, and what it shipped stays shipped on both licences. The units did leave
-- under both licences; a return credits neither back (the authority that issued one may amend
-- it to give units again).
--
-- So `returned` counts with shipped, cleared and delivered wherever the database counts
-- what has shipped (the reservations at write time, 070; the balances and unit claims of the
-- re-check), and ends a shipment as delivered, cancelled and expired do.

-- 1. The status itself. Adding the check reads every shipment once, under the table lock
--    the migration's transaction holds until it commits, at start, before the server serves.
ALTER TABLE shipments DROP CONSTRAINT shipments_status_check,
  ADD CONSTRAINT shipments_status_check CHECK (status IN ('booked', 'shipped', 'cleared', 'delivered', 'cancelled', 'expired', 'returned'));

-- 2. The steps (025's trigger and function, 020's end): shipped → returned is a step; booked →
--    returned too, in one batch that ships and returns (the row is written once, in the
--    status its batch left it), with the full manifest shipping needs and the exporter's
--    check shipping has (023). Nothing leaves returned. Only a step from booked that lacks
--    a full manifest is the manifest's message; any other is the steps'.
CREATE OR REPLACE FUNCTION shipments_status_steps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'booked' AND NEW.status IN ('shipped', 'cleared', 'delivered', 'returned') THEN
    RAISE EXCEPTION 'shipment % lists % of its % serials; it cannot become % without a serial for every unit', OLD.id, NEW.serial_count, NEW.units, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_manifest_complete';
  END IF;
  RAISE EXCEPTION 'shipment % is %; it cannot become % (a shipment moves booked → shipped → cleared → delivered, or from shipped to returned, or from booked to cancelled or expired)', OLD.id, OLD.status, NEW.status
    USING ERRCODE = 'check_violation', CONSTRAINT = 'shipments_status_steps';
END $$;
DROP TRIGGER shipments_status_steps ON shipments;
CREATE TRIGGER shipments_status_steps BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN (NEW.status IS DISTINCT FROM OLD.status
        AND OLD.status NOT IN ('delivered', 'cancelled', 'expired', 'returned')
        AND CASE OLD.status
              WHEN 'booked' THEN NEW.status IN ('shipped', 'cleared', 'delivered', 'returned') AND NEW.serial_count <> NEW.units
              WHEN 'shipped' THEN NEW.status NOT IN ('cleared', 'delivered', 'returned')
              WHEN 'cleared' THEN NEW.status <> 'delivered'
              ELSE true
            END)
  EXECUTE FUNCTION shipments_status_steps();
DROP TRIGGER shipments_stay_ended ON shipments;
CREATE TRIGGER shipments_stay_ended BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN (OLD.status IN ('delivered', 'cancelled', 'expired', 'returned') AND NEW.status IS DISTINCT FROM OLD.status)
  EXECUTE FUNCTION shipments_stay_ended();
DROP TRIGGER shipments_check_exporter ON shipments;
CREATE TRIGGER shipments_check_exporter BEFORE UPDATE ON shipments FOR EACH ROW
  WHEN (OLD.status = 'booked' AND NEW.status IN ('shipped', 'cleared', 'delivered', 'returned'))
  EXECUTE FUNCTION shipments_check_exporter();
DROP TRIGGER shipments_manifest_complete_insert ON shipments;
CREATE TRIGGER shipments_manifest_complete_insert AFTER INSERT ON shipments FOR EACH ROW
  WHEN (NEW.status IN ('shipped', 'cleared', 'delivered', 'returned') AND NEW.serial_count <> NEW.units)
  EXECUTE FUNCTION shipments_manifest_complete_insert();

-- 3. A unit's custody in a returned shipment (032's table): returned, as the step left the
--    units in transit, or lost, as one reported lost on the way stays.
CREATE OR REPLACE FUNCTION unit_custody_fits(custody text, status text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE custody
    WHEN 'licensed' THEN status IN ('booked', 'cancelled', 'expired')
    WHEN 'in_transit' THEN status IN ('shipped', 'cleared')
    WHEN 'lost' THEN status IN ('shipped', 'cleared', 'delivered', 'returned')
    WHEN 'returned' THEN status IN ('delivered', 'returned')
    ELSE status = 'delivered'
  END
$$;

-- 4. What counts as shipped, at write time (070) and in the re-check's parts (028's balances,
--    033's claims, 068's manifests); the status a shipment.return states (062); and a unit
--    returned by its shipment's step, not by a units.return (055's unit events).
CREATE OR REPLACE FUNCTION reservations_note_shipments()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO reservation_changes AS c (txid, allocation_id, shipments_reserved, shipments_shipped)
    SELECT pg_current_xact_id(), side.allocation_id,
           sum(CASE WHEN side.status = 'booked' THEN side.units ELSE 0 END),
           sum(CASE WHEN side.status IN ('shipped', 'cleared', 'delivered', 'returned') THEN side.units ELSE 0 END)
    FROM (
      SELECT n.export_allocation_id AS allocation_id, n.status, n.units FROM new_shipments n
      UNION ALL SELECT n.import_allocation_id, n.status, n.units FROM new_shipments n
    ) side
    GROUP BY side.allocation_id
    HAVING sum(CASE WHEN side.status IN ('booked', 'shipped', 'cleared', 'delivered', 'returned') THEN side.units ELSE 0 END) <> 0
    ON CONFLICT (txid, allocation_id) DO UPDATE
      SET shipments_reserved = c.shipments_reserved + EXCLUDED.shipments_reserved, shipments_shipped = c.shipments_shipped + EXCLUDED.shipments_shipped;
  ELSE
    INSERT INTO reservation_changes AS c (txid, allocation_id, shipments_reserved, shipments_shipped)
    SELECT pg_current_xact_id(), side.allocation_id,
           sum(side.sign * CASE WHEN side.status = 'booked' THEN side.units ELSE 0 END),
           sum(side.sign * CASE WHEN side.status IN ('shipped', 'cleared', 'delivered', 'returned') THEN side.units ELSE 0 END)
    FROM (
      SELECT n.export_allocation_id AS allocation_id, n.status, n.units, 1 AS sign FROM new_shipments n
      UNION ALL SELECT n.import_allocation_id, n.status, n.units, 1 FROM new_shipments n
      UNION ALL SELECT o.export_allocation_id, o.status, o.units, -1 FROM old_shipments o
      UNION ALL SELECT o.import_allocation_id, o.status, o.units, -1 FROM old_shipments o
    ) side
    GROUP BY side.allocation_id
    HAVING sum(side.sign * CASE WHEN side.status = 'booked' THEN side.units ELSE 0 END) <> 0
        OR sum(side.sign * CASE WHEN side.status IN ('shipped', 'cleared', 'delivered', 'returned') THEN side.units ELSE 0 END) <> 0
    ON CONFLICT (txid, allocation_id) DO UPDATE
      SET shipments_reserved = c.shipments_reserved + EXCLUDED.shipments_reserved, shipments_shipped = c.shipments_shipped + EXCLUDED.shipments_shipped;
  END IF;
  IF FOUND THEN PERFORM reservations_check_queued(); END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ledger_check_allocation_balances()
 RETURNS TABLE(invariant text, subject text, detail text)
 LANGUAGE sql
 STABLE
AS $$
  SELECT 'invariant-2', a.id, format('reserved %s (shipments say %s), shipped %s (shipments say %s), units %s',
         a.reserved_units, coalesce(r.reserved, 0), a.shipped_units, coalesce(r.shipped, 0), a.units)
  FROM allocations a LEFT JOIN (
    SELECT allocation_id,
           sum(units) FILTER (WHERE status = 'booked') AS reserved,
           sum(units) FILTER (WHERE status IN ('shipped', 'cleared', 'delivered', 'returned')) AS shipped
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

CREATE OR REPLACE FUNCTION ledger_status_violations(careful boolean)
 RETURNS TABLE(invariant text, subject text, detail text)
 LANGUAGE sql
 STABLE
AS $$
  WITH parsed AS MATERIALIZED (
    SELECT e.seq, e.kind, e.subject_id, f."to", f."statusTo", f."licencesExhausted", f."expiredShipments", f."expiredLicences"
    FROM events e
    CROSS JOIN LATERAL (SELECT CASE WHEN careful THEN ledger_event_member(e.canonical, 'effects') ELSE convert_from(e.canonical, 'UTF8')::json -> 'effects' END AS effects OFFSET 0) b
    CROSS JOIN LATERAL json_to_record(CASE WHEN json_typeof(b.effects) = 'object' THEN b.effects ELSE '{}'::json END)
      AS f("to" text, "statusTo" text, "licencesExhausted" json, "expiredShipments" json, "expiredLicences" json)
    WHERE e.kind IN ('shipment.ship', 'shipment.clear', 'shipment.deliver', 'shipment.cancel', 'shipment.return', 'ledger.sweep',
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

CREATE OR REPLACE FUNCTION ledger_check_unit_claims()
 RETURNS TABLE(invariant text, subject text, detail text)
 LANGUAGE sql
 STABLE
AS $$
  -- 033's clauses. Serials that a shipment which shipped lists: one hash join, not a look-up
  -- a unit (shipment_serials has no index on the serial alone, only on live ones).
  SELECT 'invariant-4', u.serial,
         CASE WHEN u.ever_shipped THEN 'the unit is marked as shipped, but no shipment that lists it has shipped'
              ELSE 'the unit is marked as never shipped, but a shipment that lists it has shipped' END
  FROM units u LEFT JOIN (SELECT DISTINCT ss.serial FROM shipment_serials ss JOIN shipments s ON s.id = ss.shipment_id
                          WHERE s.status IN ('shipped', 'cleared', 'delivered', 'returned')) shipped ON shipped.serial = u.serial
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

CREATE OR REPLACE FUNCTION ledger_check_unit_events()
 RETURNS TABLE(invariant text, subject text, detail text)
 LANGUAGE sql
 STABLE
AS $$
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
    -- A unit returned in a shipment turned back at the border was made so by that shipment's
    -- shipment.return (its subject the unit's shipment), not by a units.return.
    SELECT u.serial, u.custody, u.site_id, u.shipment_id, u.updated_seq,
           CASE u.custody WHEN 'deployed' THEN 'units.deploy' WHEN 'decommissioned' THEN 'units.decommission'
                          WHEN 'lost' THEN 'units.report_lost'
                          WHEN 'returned' THEN CASE WHEN s.status = 'returned' THEN 'shipment.return' ELSE 'units.return' END END AS made_by
    FROM units u LEFT JOIN shipments s ON s.id = u.shipment_id
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
        WHEN u.made_by = 'shipment.return' AND e.subject_id IS DISTINCT FROM u.shipment_id
          THEN format('the unit is returned in shipment %s, but the shipment.return that last changed it, %s, returned %s', u.shipment_id, e.seq, coalesce(e.subject_id, '(none)'))
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

CREATE OR REPLACE FUNCTION ledger_check_shipped_manifests()
 RETURNS TABLE(invariant text, subject text, detail text)
 LANGUAGE sql
 STABLE
AS $$
  SELECT 'invariant-4', s.id, format('it is %s with %s of its %s units listed; a shipment leaves booked only with a serial for every unit', s.status, s.serial_count, s.units)
  FROM shipments s
  WHERE s.status IN ('shipped', 'cleared', 'delivered', 'returned') AND s.serial_count <> s.units
$$;

-- 5. A unit listed again in the batch that turned its shipment back (037's units_keep_identity,
--    its trigger and WHEN unchanged): its row is written before the return's custody step, so
--    it is still in transit there, in a shipment already returned; it is returned all the same.
CREATE OR REPLACE FUNCTION units_keep_identity()
 RETURNS trigger
 LANGUAGE plpgsql
AS $$
DECLARE old_exporter text; old_status text; old_custody text; new_exporter text; new_status text; released boolean; uuid_released boolean; moved boolean;
BEGIN
  IF OLD.ever_shipped AND NOT NEW.ever_shipped THEN
    RAISE EXCEPTION 'unit % has shipped; that stays so', OLD.serial
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  IF OLD.gpu_uuid_shipped AND NOT NEW.gpu_uuid_shipped THEN
    RAISE EXCEPTION 'unit % shipped with GPU UUID %; that stays so', OLD.serial, OLD.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
  SELECT exporter_org_id, status INTO old_exporter, old_status FROM shipments WHERE id = OLD.shipment_id;
  -- A unit in transit in a shipment turned back at the border is returned, also before the
  -- return's custody step has reached its row: a batch that returns a shipment and lists its
  -- units again writes their rows first (store/batch-writes.ts, custody steps after rows).
  old_custody := CASE WHEN OLD.custody = 'in_transit' AND old_status = 'returned' THEN 'returned' ELSE OLD.custody END;
  IF NEW.gpu_uuid_shipped AND NOT OLD.gpu_uuid_shipped AND NOT (old_custody IN ('licensed', 'returned') AND NEW.custody NOT IN ('licensed', 'returned')) THEN
    RAISE EXCEPTION 'unit % is %; its GPU UUID % becomes fixed only by shipping', OLD.serial, NEW.custody, NEW.gpu_uuid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_keep_identity';
  END IF;
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
    IF old_custody NOT IN ('licensed', 'returned') THEN
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

-- Two parts of the re-check that `chipledger check` lacked (s32 review): each shipment row is
-- held to the event that booked it, and a shipment past booked to a full manifest.
--
-- 1. A shipment's product, units and two allocations are what its booking, the shipment.book
--    event that made it (its id carries that event's seq, created_seq), booked. 055 held its
--    booking time to that event and 062 its status to its events, but a product changed by
--    hand to one neither licence names (invariant 3), or its units raised with both
--    allocations' reserved units raised in step (invariant 2 still balanced), passed every
--    part; only `check --replay` named them. The deadline is left to the replay: the booking
--    records it as the caller gave it, in any offset. An event whose bytes are not JSON is the
--    event-columns part's (057) to name: this part reads the events in one pass, and where
--    that pass fails on such bytes, each on its own (062's ledger_parsing_events_check).
-- The booking's input is parsed once a shipment, into its fields (json_to_record), in a step
-- the planner may not flatten (OFFSET 0): flattened, the parse was made again for each use of
-- it. On 666,667 shipments and 1,000,000 events (bench/experiments/status-events-check.ts
-- 1000000, medians of 3): four ->> on a flattened parse 28.0 s, json_to_record on it 14.1 s,
-- this 6.3 s (057's part, which parses every event, 6.9 s in the same run).
CREATE FUNCTION ledger_shipment_booking_violations(careful boolean) RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH booked AS MATERIALIZED (
    SELECT s.id, s.product_id, s.units, s.export_allocation_id, s.import_allocation_id, s.created_seq, e.kind,
           i."productId", i.units AS booked_units, i."exportAllocationId", i."importAllocationId"
    FROM shipments s
    JOIN events e ON e.seq = s.created_seq
    -- OFFSET 0 keeps the parse a step of its own: flattened, it was made again for each use of b.input.
    CROSS JOIN LATERAL (SELECT CASE WHEN careful THEN ledger_event_member(e.canonical, 'input') ELSE convert_from(e.canonical, 'UTF8')::json -> 'input' END AS input OFFSET 0) b
    CROSS JOIN LATERAL json_to_record(CASE WHEN json_typeof(b.input) = 'object' THEN b.input ELSE '{}'::json END)
      AS i("productId" text, units text, "exportAllocationId" text, "importAllocationId" text)
    WHERE json_typeof(b.input) = 'object'
  )
  SELECT 'invariant-3', b.id, format('its %s is %s, but its booking, event %s (%s), booked %s', f.field, f.held, b.created_seq, b.kind, coalesce(f.booked, 'none'))
  FROM booked b
  CROSS JOIN LATERAL (VALUES
    ('product', b.product_id, b."productId"),
    ('units', b.units::text, b.booked_units),
    ('export allocation', b.export_allocation_id, b."exportAllocationId"),
    ('import allocation', b.import_allocation_id, b."importAllocationId")
  ) AS f(field, held, booked)
  WHERE f.held IS DISTINCT FROM f.booked
  ORDER BY b.id, f.field
$$;

CREATE FUNCTION ledger_check_shipment_bookings() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT * FROM ledger_parsing_events_check('ledger_shipment_booking_violations')
$$;
INSERT INTO ledger_checks (position, part) VALUES (370, 'ledger_check_shipment_bookings');

-- 2. A shipment shipped, cleared or delivered lists a serial for every unit (025's and 055's
--    triggers refuse it otherwise when it is written): a unit deleted from a shipped shipment
--    with its manifest row and the shipment's count lowered in step passed every part.
CREATE FUNCTION ledger_check_shipped_manifests() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-4', s.id, format('it is %s with %s of its %s units listed; a shipment leaves booked only with a serial for every unit', s.status, s.serial_count, s.units)
  FROM shipments s
  WHERE s.status IN ('shipped', 'cleared', 'delivered') AND s.serial_count <> s.units
$$;
INSERT INTO ledger_checks (position, part) VALUES (380, 'ledger_check_shipped_manifests');

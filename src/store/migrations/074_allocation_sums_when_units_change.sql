-- Invariant 1 on an allocation's UPDATE is about its units: 001's statement trigger summed
-- every allocation of each licence an updated allocation belongs to, whatever had changed. A
-- batch of bookings changes its allocations' reserved_units (and shipping their shipped_units)
-- and so paid that sum at every batch, over all of the licence's allocations: a licence shared
-- out in thousands of tranches by recipient and period made every booking on it sum thousands
-- of rows. Now the check takes only the licences whose allocations' units the statement changed
-- in sum, from its old and new rows added up by licence (new counted in, old out): not by
-- allocation id, which an UPDATE may change along with the units (s38 review). A licence whose
-- allocations' units add up as before, its counter unchanged, cannot newly break the invariant.
-- A booking's or a shipment's update sums nothing, as
-- migration 023 has the licence's own check (licences_check_sum) run only when its counter or
-- authorised units change. Inserts keep 001's check: a new allocation always changes a sum.
CREATE FUNCTION allocations_check_changed_sum() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  SELECT l.id, l.allocated_units, coalesce(sum(a.units), 0) AS total INTO bad
  FROM licences l LEFT JOIN allocations a ON a.licence_id = l.id
  WHERE l.id IN (
    SELECT d.licence_id FROM (
      SELECT n.licence_id, n.units::bigint AS units FROM new_allocations n
      UNION ALL SELECT o.licence_id, -o.units::bigint FROM old_allocations o
    ) d
    GROUP BY d.licence_id HAVING sum(d.units) <> 0
  )
  GROUP BY l.id, l.allocated_units, l.authorised_units
  HAVING coalesce(sum(a.units), 0) <> l.allocated_units OR coalesce(sum(a.units), 0) > l.authorised_units
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invariant 1: licence % allocations sum to % but the licence records %', bad.id, bad.total, bad.allocated_units
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER allocations_sum_update ON allocations;
CREATE TRIGGER allocations_sum_update AFTER UPDATE ON allocations
  REFERENCING OLD TABLE AS old_allocations NEW TABLE AS new_allocations
  FOR EACH STATEMENT EXECUTE FUNCTION allocations_check_changed_sum();

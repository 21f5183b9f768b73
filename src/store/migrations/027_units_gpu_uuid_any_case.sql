-- One GPU, one unit, whatever the case of its UUID (invariant 4). Since 025 a GPU UUID is
-- stored in one spelling (GPU- and lower-case hex), but a unit listed before it may keep an
-- upper-case one, which the unique index, comparing bytes, took for another GPU than the same
-- UUID in lower case: a new unit could then record that GPU a second time. The index now
-- compares the lower-case form. It keeps its name, which refusals.ts names invariant 4 by,
-- and its cost: one index entry for each unit with a GPU UUID, as before.
--
-- A database that already holds one GPU under two serials this way cannot take the index:
-- the migration stops and names them, for a person to decide which unit the GPU is.
DO $$
DECLARE
  clashes text;
BEGIN
  SELECT string_agg(format('%s (serials %s)', canonical, serials), '; ') INTO clashes FROM (
    SELECT 'GPU-' || lower(substr(gpu_uuid, 5)) AS canonical, string_agg(serial, ', ' ORDER BY serial) AS serials
    FROM units WHERE gpu_uuid IS NOT NULL
    GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 20
  ) clash;
  IF clashes IS NOT NULL THEN
    RAISE EXCEPTION 'units record one GPU under several serials, their GPU UUIDs differing only in case (invariant 4): %', clashes
      USING HINT = 'decide which unit each GPU is and correct the others'' GPU UUIDs (trigger units_keep_identity guards them), then migrate again';
  END IF;
END $$;

DROP INDEX units_gpu_uuid_key;
CREATE UNIQUE INDEX units_gpu_uuid_key ON units (('GPU-' || lower(substr(gpu_uuid, 5)))) WHERE gpu_uuid IS NOT NULL;

-- A batch applied ahead of the database (ledger/row-cache.ts) sends BEGIN, this guard, its
-- writes and COMMIT in one round trip. The guard takes the ledger's write lock, as
-- beginBatch does, and refuses the batch if the log head is not the one it was applied
-- against: another process wrote, or an earlier batch of ours did not commit. The
-- sequencer then runs the batch again, reading under the lock.
CREATE FUNCTION ledger_expect_head(expected_size bigint, expected_root bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE head record;
BEGIN
  SELECT size, root INTO head FROM log_head WHERE id = 1 FOR UPDATE;
  IF head.size <> expected_size OR head.root <> expected_root THEN
    RAISE EXCEPTION 'the ledger moved on: the log head is at %, the batch was applied at %', head.size, expected_size
      USING ERRCODE = 'CLH01';
  END IF;
END $$;

-- Units without a GPU UUID (most, at manifest time) need no entry in its unique index:
-- NULLs never collide anyway, and 100,000 of them cost a manifest import an index insert
-- each. Same name, so refusals still name the rule (ledger/refusals.ts).
ALTER TABLE units DROP CONSTRAINT units_gpu_uuid_key;
CREATE UNIQUE INDEX units_gpu_uuid_key ON units (gpu_uuid) WHERE gpu_uuid IS NOT NULL;

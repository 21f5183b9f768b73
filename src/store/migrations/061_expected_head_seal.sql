-- A batch sent ahead (ledger/batch-commit.ts, sendAhead) goes on only at the head it was
-- applied at: since migration 060 that is its seal too. A log key adopted in between seals
-- the head without moving it (ledger/log/keys.ts), and a process that did not see that would
-- append an unsealed head to a log that has a key, which every server then refuses. So the
-- seal is compared as the size and the root are, and any difference is CLH01: the batch runs
-- again the classic way, which vouches for the head (ledger/log/head-seal.ts). The two-argument
-- function stays for servers of the release before, until they are stopped.
CREATE FUNCTION ledger_lock_expected_head(expected_size bigint, expected_root bytea, expected_seal bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE current_head log_head%ROWTYPE;
BEGIN
  SELECT * INTO current_head FROM log_head WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'log_head row is missing: the database was not migrated';
  END IF;
  IF current_head.size <> expected_size OR current_head.root IS DISTINCT FROM expected_root THEN
    RAISE EXCEPTION 'the log head is at size %, not the % this batch was applied at', current_head.size, expected_size
      USING ERRCODE = 'CLH01';
  END IF;
  IF current_head.seal IS DISTINCT FROM expected_seal THEN
    RAISE EXCEPTION 'the log head at size % was sealed anew since this batch was applied at it', current_head.size
      USING ERRCODE = 'CLH01';
  END IF;
END $$;

-- A batch sent without a round trip for its lock (ledger/sequencer.ts, sendAhead): it was
-- applied in memory to the rows as of the head it expects, so it takes the ledger's lock
-- and goes on only if the head is that one. Any other head means another writer (or a
-- batch of ours that did not commit) came between: the function raises, the rest of the
-- batch's text does not run, and the sequencer runs the batch again the classic way.
CREATE FUNCTION ledger_lock_expected_head(expected_size bigint, expected_root bytea) RETURNS void LANGUAGE plpgsql AS $$
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
END $$;

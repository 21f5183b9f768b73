-- The setting that widens 047's bound is read only when it is a whole number (s19, the review
-- of the day's diff).
--
-- 047's ledger_clock_ahead_ms_max() cast chipledger.clock_ahead_of_database_ms_max to bigint as
-- it found it. A value that is no integer ('5min', as PostgreSQL's own settings take units)
-- then failed every batch with 22P02, which the ledger answers 400 invalid_input and keeps
-- under the request's Idempotency-Key, so a retry after the setting was put right got the 400
-- again; and /healthz said the database did not answer. The setting is the tests' (they widen
-- the bound on their own databases, test/database.ts); a value that is not 1 to 15 digits is
-- now taken as no setting: the 5 minutes of limits.clockAheadOfDatabaseMsMax.
CREATE OR REPLACE FUNCTION ledger_clock_ahead_ms_max() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN setting ~ '^[0-9]{1,15}$' THEN setting::bigint ELSE 300000 END
  FROM (SELECT current_setting('chipledger.clock_ahead_of_database_ms_max', true) AS setting) AS read
$$;

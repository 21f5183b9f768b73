-- The bound ahead of the database's clock is read with a plan kept for the session (s32).
--
-- 056's ledger_clock_ahead_ms_max() is LANGUAGE sql with a FROM clause, so it is never inlined:
-- called from the head's trigger (054), its query was planned again in every batch's
-- transaction, since PL/pgSQL keeps a SQL function's plan for one transaction only.
-- pg_stat_statements put that planning at 0.19 ms a batch of bookings, more than the rest of
-- the head's update. The same query in PL/pgSQL is planned once a session and its plan kept.
-- What it reads and returns is 056's, word for word: only ALTER DATABASE … SET counts, and a
-- value that is not 1 to 15 digits is no setting (the 5 minutes of
-- limits.clockAheadOfDatabaseMsMax).
--
-- A value set with ALTER DATABASE after a session has planned the query is still read: the
-- plan reads pg_db_role_setting when it runs, not when it is made.
CREATE OR REPLACE FUNCTION ledger_clock_ahead_ms_max() RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (
    SELECT CASE WHEN setting ~ '^[0-9]{1,15}$' THEN setting::bigint ELSE 300000 END
    FROM (SELECT (
      SELECT substr(item, length('chipledger.clock_ahead_of_database_ms_max=') + 1)
      FROM pg_db_role_setting s, unnest(s.setconfig) AS item
      WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.setrole = 0
        AND starts_with(item, 'chipledger.clock_ahead_of_database_ms_max=')
    ) AS setting) AS read
  );
END $$;

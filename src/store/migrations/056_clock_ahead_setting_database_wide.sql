-- The bound ahead of the database's clock (047) is read from the database's own settings only
-- (s26, the writer role).
--
-- 047 and 048 read chipledger.clock_ahead_of_database_ms_max with current_setting(), which any
-- session may set for itself: a connection that may not switch the triggers off (the writer
-- role, store/writer-role.ts) could still widen the bound, with one SET, to date its batches
-- years ahead. The value is now taken only from ALTER DATABASE … SET, which only the database's
-- owner may run (the tests widen it that way, test/database.ts): a session's own SET, a role's
-- ALTER ROLE … SET and a connection's options are ignored. As in 048, a value that is not 1
-- to 15 digits is taken as no setting: the 5 minutes of limits.clockAheadOfDatabaseMsMax.
CREATE OR REPLACE FUNCTION ledger_clock_ahead_ms_max() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN setting ~ '^[0-9]{1,15}$' THEN setting::bigint ELSE 300000 END
  FROM (SELECT (
    SELECT substr(item, length('chipledger.clock_ahead_of_database_ms_max=') + 1)
    FROM pg_db_role_setting s, unnest(s.setconfig) AS item
    WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.setrole = 0
      AND starts_with(item, 'chipledger.clock_ahead_of_database_ms_max=')
  ) AS setting) AS read
$$;

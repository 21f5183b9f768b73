-- The head counts only events it can see (s22, found by the ledger benchmark's baseline).
--
-- 031's trigger checks, when log_head's size moves, that the batch's events [OLD.size, NEW.size)
-- rise in time, and takes the newest as the head's time. It reads them with the statement's
-- snapshot, so events written after the head's update, or in the same statement as it (a
-- WITH whose INSERT feeds the UPDATE: its rows are not visible to the UPDATE's triggers), were
-- not there to check: the head moved, its time stayed, and events dated before the ones
-- before them committed. The ledger benchmark's baseline, written as a typical application
-- would, wrote event and head in one statement and committed 4,112 such events in a run;
-- only ledger_violations() found them. The ledger writes a batch's events in statements
-- before the head's update (store/batch-writes.ts), so its own batches were always checked.
--
-- Now the head refuses to count an event this statement cannot see: one count(*) in the
-- aggregate 031 already runs over the batch's events, nothing more read. Every writer must
-- write the events first, in statements of their own. A head that never counted missing
-- events before is unchanged; ledger_violations() still reports events out of time order,
-- however they came (a trigger disabled, a restore).
--
-- Errors: SQLSTATE CLH02 (store/head-lock.ts eventTimeBackCode), a bug of the writer's, as
-- 031's. The function is 047's otherwise, whole, as CREATE OR REPLACE needs.

CREATE OR REPLACE FUNCTION log_head_event_times_rise() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  newest timestamptz;
  back_seq bigint;
  back_at timestamptz;
  back_from timestamptz;
  database_at timestamptz;
  ahead_ms_max bigint;
  seen bigint;
BEGIN
  IF NEW.at < OLD.at THEN
    RAISE EXCEPTION 'event times never go back: log_head.at would go from % back to %', OLD.at, NEW.at USING ERRCODE = 'CLH02';
  END IF;
  IF NEW.size <= OLD.size THEN
    IF NEW.at <> OLD.at THEN
      RAISE EXCEPTION 'log_head.at is the newest event''s time and moves only with a batch''s events: at size % it is %, not %', OLD.size, OLD.at, NEW.at
        USING ERRCODE = 'CLH02';
    END IF;
    RETURN NEW;
  END IF;
  SELECT max(e.at), min(e.seq) FILTER (WHERE e.at < e.before), count(*) INTO newest, back_seq, seen
  FROM (SELECT seq, at, coalesce(lag(at) OVER (ORDER BY seq), OLD.at) AS before
        FROM events WHERE seq >= OLD.size AND seq < NEW.size) e;
  -- 052: every event the head now counts must be there for this statement to see. One written
  -- after the head, or in the same statement as its update (a WITH's insert is not visible to
  -- the update's triggers), would pass unchecked.
  IF seen < NEW.size - OLD.size THEN
    RAISE EXCEPTION 'log_head would count events % to % but this statement sees % of them: write a batch''s events before the head''s update, in statements of their own, so that their times are checked',
      OLD.size, NEW.size - 1, seen USING ERRCODE = 'CLH02';
  END IF;
  IF back_seq IS NOT NULL THEN
    SELECT e.at, coalesce((SELECT p.at FROM events p WHERE p.seq = back_seq - 1 AND p.seq >= OLD.size), OLD.at) INTO back_at, back_from
    FROM events e WHERE e.seq = back_seq;
    RAISE EXCEPTION 'event times never go back: event % is dated %, before % (the event before it, or the newest committed before this batch, at size %)',
      back_seq, back_at, back_from, OLD.size USING ERRCODE = 'CLH02';
  END IF;
  -- clock_timestamp(), not now(): the transaction may have waited for the head lock.
  database_at := clock_timestamp();
  ahead_ms_max := ledger_clock_ahead_ms_max();
  IF newest > database_at + ahead_ms_max * interval '1 millisecond' THEN
    RAISE EXCEPTION 'a batch dated % is % s ahead of the database''s clock (%), more than the % s taken as clock drift: the writing server''s clock runs ahead',
      newest, round(extract(epoch FROM newest - database_at)), database_at, ahead_ms_max / 1000
      USING ERRCODE = 'CLH03', DETAIL = json_build_object(
        'batchAt', to_char(newest AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'databaseAt', to_char(database_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'aheadMsMax', ahead_ms_max)::text;
  END IF;
  NEW.at := date_trunc('milliseconds', newest + interval '999 microseconds');
  RETURN NEW;
END $$;

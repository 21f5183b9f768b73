-- The head's check of event times reads a batch of one time once (s23).
--
-- 031's trigger (052's, whole, below) read a batch's events through a window (each event's
-- time against the one before it) to find the first that goes back. Every batch the ledger
-- writes dates all its events alike (ledger/batch-time.ts batchTime): their earliest and
-- latest time are one, at or after the head's, and then none goes back. So the events are
-- read once for their earliest, latest and count, and the window runs only when those
-- cannot settle it (times that differ, or one before the head's), to name the event. The
-- refusals, their words and codes are 052's.
--
-- Cost of the head's update (bench/experiments/head-trigger.ts, medians, each way on a
-- database of its own): after 2,048 events 2.24 ms with 052's trigger, 0.94 ms with this
-- one, 0.29 ms with none; after 64 (a batch of bookings), 0.32, 0.27 and 0.13 ms.
CREATE OR REPLACE FUNCTION log_head_event_times_rise() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  newest timestamptz;
  oldest timestamptz;
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
  SELECT max(e.at), min(e.at), count(*) INTO newest, oldest, seen FROM events e WHERE e.seq >= OLD.size AND e.seq < NEW.size;
  -- 052: every event the head now counts must be there for this statement to see. One written
  -- after the head, or in the same statement as its update (a WITH's insert is not visible to
  -- the update's triggers), would pass unchecked.
  IF seen < NEW.size - OLD.size THEN
    RAISE EXCEPTION 'log_head would count events % to % but this statement sees % of them: write a batch''s events before the head''s update, in statements of their own, so that their times are checked',
      OLD.size, NEW.size - 1, seen USING ERRCODE = 'CLH02';
  END IF;
  -- One time, at or after the head's: nothing goes back. Otherwise the first event that does, if any.
  IF oldest < OLD.at OR oldest <> newest THEN
    SELECT min(e.seq) FILTER (WHERE e.at < e.before) INTO back_seq
    FROM (SELECT seq, at, coalesce(lag(at) OVER (ORDER BY seq), OLD.at) AS before
          FROM events WHERE seq >= OLD.size AND seq < NEW.size) e;
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

-- Event times never run far ahead of the database's clock (s19, time review).
--
-- 031 refuses a batch dated before the newest event, and the sequencer dates a batch by its
-- process's clock, no earlier than log_head.at (ledger/batch-time.ts). Nothing bounded a clock
-- that ran ahead: a server whose clock read a year ahead (a VM started on a wrong hardware
-- clock, before NTP corrected it) dated its sweep a year ahead, which expired every licence
-- and booking due before then, for good, and moved log_head.at a year ahead. Every server
-- with a right clock was then refused clock-behind-ledger until real time caught up, also
-- after the fast clock was put right: 031 refuses log_head.at going back.
--
-- The database's clock is the one every writer shares (the checkpointer already judges
-- signings by it), and this trigger is where every writer passes, the batch sent ahead and
-- the classic one alike: a batch whose newest event is dated more than ledger_clock_ahead_ms_max()
-- ahead of clock_timestamp() is refused, and nothing of it is written. The sequencer cannot
-- check this itself: it reads no clock of the database's.
--
-- The bound is limits.clockAheadOfDatabaseMsMax (core/limits.ts, 5 minutes, the same as the
-- drift taken for a clock behind the ledger's time). Tests date batches by a clock they move
-- freely (to a licence's end, possibly after today), and widen it for their own databases
-- with the setting chipledger.clock_ahead_of_database_ms_max (test/database.ts); the ledger
-- never sets it.
--
-- Errors: SQLSTATE CLH03 (store/ledger-tables.ts clockAheadOfDatabaseCode), answered
-- 'unavailable', rule clock-ahead-of-database (ledger/refusals.ts). Its DETAIL is a JSON
-- object of the times compared, which the refusal names.

-- The bound in milliseconds: the setting when a session holds one (tests), 5 minutes otherwise.
-- Also read by the health check (server/app.ts), so it judges a clock as the trigger does.
CREATE FUNCTION ledger_clock_ahead_ms_max() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('chipledger.clock_ahead_of_database_ms_max', true), '')::bigint, 300000)
$$;

-- 031's function, with the bound ahead after the check that times never go back. Times are
-- written to the DETAIL in ISO 8601 UTC to the millisecond, as the ledger writes them.
CREATE OR REPLACE FUNCTION log_head_event_times_rise() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  newest timestamptz;
  back_seq bigint;
  back_at timestamptz;
  back_from timestamptz;
  database_at timestamptz;
  ahead_ms_max bigint;
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
  SELECT max(e.at), min(e.seq) FILTER (WHERE e.at < e.before) INTO newest, back_seq
  FROM (SELECT seq, at, coalesce(lag(at) OVER (ORDER BY seq), OLD.at) AS before
        FROM events WHERE seq >= OLD.size AND seq < NEW.size) e;
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
  -- A head counting events not (yet) written has no newer time to take.
  NEW.at := coalesce(date_trunc('milliseconds', newest + interval '999 microseconds'), OLD.at);
  RETURN NEW;
END $$;

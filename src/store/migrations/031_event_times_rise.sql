-- Event times never go back. Each server process dated its batches by its own clock
-- (ledger/sequencer.ts), so a process whose clock lagged another's, or a clock stepped back,
-- committed events dated before events already committed, and judged licence validity and
-- deadlines at that earlier time: a booking was accepted after another process had found
-- its licence ended, and nothing here or in ledger_violations() saw it.
--
-- log_head.at is now the newest committed event's time. The sequencer reads it with the head
-- (under the head lock, or as its last batch left it) and dates a batch no earlier; the
-- trigger below refuses, once per batch, any batch whose events go back, whoever writes it.
--
-- Times are kept to the millisecond, as the ledger writes them (its ISO 8601 strings), and
-- rounded up: a head read back in milliseconds is then never before an event it covers.
ALTER TABLE log_head ADD COLUMN at timestamptz;
-- The newest event's time so far (one scan of events, once), or the epoch when there is none:
-- a time no clock reads any more, so the first batch takes its clock's.
UPDATE log_head SET at = coalesce(date_trunc('milliseconds', (SELECT max(at) FROM events) + interval '999 microseconds'), 'epoch');
ALTER TABLE log_head ALTER COLUMN at SET NOT NULL;

-- Runs on the batch's last statement, the head's update (store/batch-writes.ts): the batch's
-- events [OLD.size, NEW.size) are in by then. One range scan of events' primary key per batch
-- (about 1 ms for 2,048 events by EXPLAIN ANALYZE on this 2-core host), never a lookup per event row: a big batch's events go by COPY.
-- The head's time moves only with a batch's events, so a head's size and root fix its time:
-- a batch sent ahead (migration 021) that finds its expected head also finds its time.
-- Errors: SQLSTATE CLH02 (store/ledger-tables.ts eventTimeBackCode), a bug of the writer's.
CREATE FUNCTION log_head_event_times_rise() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  newest timestamptz;
  back_seq bigint;
  back_at timestamptz;
  back_from timestamptz;
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
  -- A head counting events not (yet) written has no newer time to take.
  NEW.at := coalesce(date_trunc('milliseconds', newest + interval '999 microseconds'), OLD.at);
  RETURN NEW;
END $$;

CREATE TRIGGER log_head_event_times_rise BEFORE UPDATE ON log_head FOR EACH ROW EXECUTE FUNCTION log_head_event_times_rise();

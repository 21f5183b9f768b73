-- Log keys were ordered by (first_size, created_at), created_at defaulting to now(): the time
-- the transaction began, not when it got the log signing lock. Two rotations at once could
-- store their keys in the other order (the later key with the earlier time), and the retired
-- key would then count as current (tlog-tables.ts: the last of listLogKeys) and sign again.
-- Keys are written only under that lock, so a sequence drawn at the INSERT follows the
-- lock's order, and no clock (which NTP may step back) takes part. Existing keys keep the
-- order they had.
CREATE SEQUENCE tlog_keys_written_order;
ALTER TABLE tlog_keys ADD COLUMN written_order bigint;
UPDATE tlog_keys k SET written_order = o.n
FROM (SELECT key_id, row_number() OVER (ORDER BY first_size, created_at) AS n FROM tlog_keys) o
WHERE o.key_id = k.key_id;
SELECT setval('tlog_keys_written_order', coalesce((SELECT max(written_order) FROM tlog_keys), 0) + 1, false);
ALTER TABLE tlog_keys
  ALTER COLUMN written_order SET DEFAULT nextval('tlog_keys_written_order'),
  ALTER COLUMN written_order SET NOT NULL,
  ADD CONSTRAINT tlog_keys_written_order_unique UNIQUE (written_order);
ALTER SEQUENCE tlog_keys_written_order OWNED BY tlog_keys.written_order;

-- Checkpoints of one size (the old key's and the announcement at a rotation) are told apart
-- by created_at: from now on the time of the INSERT, under the lock, not of BEGIN.
ALTER TABLE tlog_keys ALTER COLUMN created_at SET DEFAULT clock_timestamp();
ALTER TABLE tlog_checkpoints ALTER COLUMN created_at SET DEFAULT clock_timestamp();

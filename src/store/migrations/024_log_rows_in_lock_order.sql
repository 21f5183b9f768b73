-- Log keys and checkpoints are ordered by created_at (tlog-tables.ts: the current key is the
-- last of listLogKeys; latestCheckpoint takes the newest of a size). Both are written only
-- under the log signing lock, but now() is the time the transaction began, not when it got
-- the lock: two rotations at once could store their keys in the other order (the later key
-- with the earlier time), and the retired key would then count as current and sign again.
-- clock_timestamp() at the INSERT is after the lock, so the times follow the lock's order.
ALTER TABLE tlog_keys ALTER COLUMN created_at SET DEFAULT clock_timestamp();
ALTER TABLE tlog_checkpoints ALTER COLUMN created_at SET DEFAULT clock_timestamp();

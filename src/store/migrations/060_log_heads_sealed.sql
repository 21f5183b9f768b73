-- The log's head carries a seal: an HMAC of its size and root under a key derived from the log's
-- signing key (ledger/log/head-seal.ts), which the database never holds (s27).
--
-- The writer may update log_head, and writes events, tiles and checkpoints' rows: whoever held its
-- connection could append a whole forged batch (events, leaves, tiles and head, all consistent),
-- and the next server batch extended it and the checkpointer signed it, for good (the attack
-- review of s26 did so with a token.create). A server now extends, and signs, only a head it can
-- vouch for: sealed by the log's key, equal to a checkpoint signed by it, or the head as it stood
-- when this migration ran (heads were not sealed before it), kept below in a table the writer may
-- only read.
ALTER TABLE log_head ADD COLUMN seal bytea CHECK (seal IS NULL OR length(seal) = 32);

CREATE TABLE log_head_unsealed (
  size bigint PRIMARY KEY CHECK (size >= 0),
  root bytea NOT NULL CHECK (length(root) = 32)
);
INSERT INTO log_head_unsealed (size, root) SELECT size, root FROM log_head WHERE id = 1;

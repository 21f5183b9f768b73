-- A cosignature is over one checkpoint text, and after a key rotation one size holds two
-- texts: the old key's checkpoint and the announcement with its key-rotation line. So a
-- cosignature now names the checkpoint row it was made over, (size, key id), not the size
-- alone; a line stored against the other text would be served over a text it never signed.
ALTER TABLE tlog_cosignatures ADD COLUMN checkpoint_key_id text;
ALTER TABLE tlog_cosignatures DROP CONSTRAINT tlog_cosignatures_pkey;

-- Carry the rows over. A size with one checkpoint: that one. A migration cannot verify an
-- Ed25519 signature, so a row at a size with several checkpoints is kept for each of them;
-- the server serves a line only when it verifies over the text it is served with. Rows at a
-- size with no checkpoint at all belong to nothing and are dropped.
INSERT INTO tlog_cosignatures (checkpoint_size, checkpoint_key_id, witness, key_id, timestamp_s, signature_line, received_at)
  SELECT s.checkpoint_size, c.key_id, s.witness, s.key_id, s.timestamp_s, s.signature_line, s.received_at
  FROM tlog_cosignatures s JOIN tlog_checkpoints c ON c.size = s.checkpoint_size
  WHERE s.checkpoint_key_id IS NULL;
DELETE FROM tlog_cosignatures WHERE checkpoint_key_id IS NULL;

ALTER TABLE tlog_cosignatures ALTER COLUMN checkpoint_key_id SET NOT NULL;
ALTER TABLE tlog_cosignatures ADD PRIMARY KEY (checkpoint_size, checkpoint_key_id, witness, key_id);
ALTER TABLE tlog_cosignatures ADD CONSTRAINT tlog_cosignatures_checkpoint_fkey
  FOREIGN KEY (checkpoint_size, checkpoint_key_id) REFERENCES tlog_checkpoints (size, key_id);

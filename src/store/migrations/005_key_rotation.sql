-- Key rotation: the checkpoint that announces a new log key is signed by the old and the
-- new key, at the size the log has then, which an older checkpoint may already cover (with
-- the same root). So a size may now hold more than one checkpoint; their roots must agree.
-- Cosignatures name a checkpoint by size; the trigger below keeps one root per size.
ALTER TABLE tlog_cosignatures DROP CONSTRAINT tlog_cosignatures_checkpoint_size_fkey;
ALTER TABLE tlog_checkpoints DROP CONSTRAINT tlog_checkpoints_pkey;
ALTER TABLE tlog_checkpoints ADD PRIMARY KEY (size, key_id);

CREATE FUNCTION tlog_checkpoints_same_root() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tlog_checkpoints c WHERE c.size = NEW.size AND c.root <> NEW.root) THEN
    RAISE EXCEPTION 'invariant 5: a checkpoint of size % with another root exists (a fork)', NEW.size USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER tlog_checkpoints_no_fork BEFORE INSERT OR UPDATE ON tlog_checkpoints
  FOR EACH ROW EXECUTE FUNCTION tlog_checkpoints_same_root();

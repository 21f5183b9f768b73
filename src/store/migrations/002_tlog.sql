-- The transparency log's storage (C2SP tlog-tiles layout). Tiles are written in the same
-- transaction as the events they cover, so the log and the ledger never disagree.
-- Entry bundles are not stored twice: they are served from events.canonical.

-- One row per tile: level 0 holds leaf hashes, level L holds the roots of the full tiles
-- of level L-1. A tile grows from width 1 to 256 and is then never written again.
CREATE TABLE tlog_tiles (
  level   smallint NOT NULL CHECK (level >= 0 AND level < 8),
  index   bigint   NOT NULL CHECK (index >= 0),
  width   smallint NOT NULL CHECK (width BETWEEN 1 AND 256),
  hashes  bytea    NOT NULL CHECK (length(hashes) = 32 * width),
  PRIMARY KEY (level, index)
);

-- The root of the tree over all events, kept with the size under the same lock.
ALTER TABLE log_head ADD COLUMN root bytea NOT NULL DEFAULT decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex')
  CHECK (length(root) = 32);

-- Every checkpoint ever published. Invariant 5: each is consistent with every earlier one
-- (checked at start and by `chipledger log verify`).
CREATE TABLE tlog_checkpoints (
  size        bigint PRIMARY KEY CHECK (size >= 0),
  root        bytea NOT NULL CHECK (length(root) = 32),
  key_id      text NOT NULL,
  signed_note text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Cosignatures from witnesses over a checkpoint (C2SP tlog-cosignature).
CREATE TABLE tlog_cosignatures (
  checkpoint_size  bigint NOT NULL REFERENCES tlog_checkpoints(size),
  witness          text NOT NULL,
  key_id           text NOT NULL,
  timestamp_s      bigint NOT NULL,
  signature_line   text NOT NULL,
  received_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (checkpoint_size, witness, key_id)
);

-- Log signing keys in the order they were used; a rotation is announced by a checkpoint
-- that both the old and the new key sign.
CREATE TABLE tlog_keys (
  key_id          text PRIMARY KEY,
  verifier_key    text NOT NULL UNIQUE,
  first_size      bigint NOT NULL,
  announced_size  bigint,
  created_at      timestamptz NOT NULL DEFAULT now()
);

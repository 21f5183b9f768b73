-- Tile hashes are random bytes: PostgreSQL's compression never shrinks them, so stop it
-- from trying on every write of a full (8 KiB) tile.
ALTER TABLE tlog_tiles ALTER COLUMN hashes SET STORAGE EXTERNAL;

-- Invariant 5 in the database as well: a stored tile only grows. A batch writes the tiles
-- its leaves completed or widened; a row it rewrites must keep every hash it had, in
-- place, and may only add hashes after them. Before, the batch's upsert skipped a row that
-- was already as wide or wider (`WHERE width < EXCLUDED.width`), so a row widened or
-- changed behind the server's back stayed and was served, under correct signed roots,
-- until the next start-up check. The upsert now always writes, and this trigger refuses
-- any rewrite that would narrow a tile or change a hash it holds: the batch fails instead.
CREATE FUNCTION tlog_tiles_only_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.level <> OLD.level OR NEW.index <> OLD.index OR NEW.width < OLD.width
     OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
    RAISE EXCEPTION 'tile %/% holds % hashes; a write of % hashes would change or drop some of them', OLD.level, OLD.index, OLD.width, NEW.width
      USING ERRCODE = 'check_violation', CONSTRAINT = 'tlog_tiles_only_grow';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER tlog_tiles_only_grow BEFORE UPDATE ON tlog_tiles FOR EACH ROW EXECUTE FUNCTION tlog_tiles_only_grow();
CREATE TRIGGER tlog_tiles_no_delete BEFORE DELETE OR TRUNCATE ON tlog_tiles FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

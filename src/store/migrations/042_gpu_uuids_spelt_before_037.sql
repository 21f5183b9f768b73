-- A GPU UUID that an earlier release accepted keeps its spelling, and `chipledger check` no
-- longer reports it (s17 upgrade review, finding 2).
--
-- Before 037 a GPU UUID was GPU- and 8 to 60 hex digits and hyphens (GPU-0123abcd,
-- GPU-89ab-cdef-0123). 037 refuses any other form than nvidia-smi's whenever a GPU UUID is
-- written, and its re-check clause (gpu-uuid-form) reports every unit that still holds one.
-- Nothing can clear that report: a shipped GPU UUID never changes (units_keep_identity) and
-- no command rewrites one, nor should one (the spelling is what the exporter declared and
-- the log recorded). So a database whose data was valid when written failed `check` for
-- good after the upgrade, and an operator could not tell that from corruption.
--
-- 1. units_gpu_uuid_legacy: each unit whose GPU UUID, when this migration ran, was not of
--    nvidia-smi's form (in either case: the re-check's test, 4.), with that spelling. 037's
--    triggers refuse such a GPU UUID on every insert and every change, so each one here was
--    written before 037, by a release that accepted it (or with those triggers off, which
--    nothing here can tell apart; the ledger never turns them off). Keyed by serial, a
--    unit's id. No foreign key: units are never deleted (022), and the row records what
--    this migration found, not a rule on units.
CREATE TABLE units_gpu_uuid_legacy (
  serial    text PRIMARY KEY,
  gpu_uuid  text NOT NULL
);

-- 2. Filled once, here, from units, with the re-check's own test of the form.
INSERT INTO units_gpu_uuid_legacy (serial, gpu_uuid)
SELECT u.serial, u.gpu_uuid
FROM units u
WHERE u.gpu_uuid IS NOT NULL AND u.gpu_uuid !~ '^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

-- 3. Nothing writes it afterwards: the ledger never does, and a row added later would hide a
--    GPU UUID written malformed since (with 037's triggers off) from the re-check, as a
--    changed or deleted row would bring an old one back or hide another. So an insert is
--    refused too, unlike the other tables the ledger only appends to (028, 038), with the
--    same SQLSTATE (restrict_violation) and words that say which change was tried.
CREATE FUNCTION units_gpu_uuid_legacy_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'units_gpu_uuid_legacy lists the GPU UUIDs migration 042 found written before 037; it never changes (% refused)', TG_OP
    USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER units_gpu_uuid_legacy_no_change BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON units_gpu_uuid_legacy
  FOR EACH STATEMENT EXECUTE FUNCTION units_gpu_uuid_legacy_fixed();

-- 4. The re-check's part for the form (041: ledger_check_gpu_uuid_form, 037's clause) skips
--    a unit that still holds exactly the spelling recorded for it in 1. A recorded unit that
--    holds another spelling not of the form (037's triggers let none be written: only with
--    them off) and any unit not recorded are reported as before.
CREATE OR REPLACE FUNCTION ledger_check_gpu_uuid_form() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- 037's clause: a GPU UUID not of nvidia-smi's form (037 refuses one only when it is
  -- written). Either case of hex digits: a unit listed before 025 may keep upper case, which
  -- every comparison and the unique index (027) already see through. Since 042, not a unit
  -- that still holds the very spelling an earlier release accepted (units_gpu_uuid_legacy):
  -- compared exactly, so any other spelling on that unit is reported. The table holds only
  -- such units, so the anti-join costs next to nothing.
  SELECT 'gpu-uuid-form', u.serial, format('GPU UUID %s is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)', u.gpu_uuid)
  FROM units u
  WHERE u.gpu_uuid IS NOT NULL AND u.gpu_uuid !~ '^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    AND NOT EXISTS (SELECT 1 FROM units_gpu_uuid_legacy k WHERE k.serial = u.serial AND k.gpu_uuid = u.gpu_uuid)
$$;

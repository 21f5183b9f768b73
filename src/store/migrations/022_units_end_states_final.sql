-- A decommissioned or lost unit never changes again, and the ledger's unit, manifest and
-- licence rows are never deleted: held in the database as well as in the code (no handler
-- takes a unit out of those end states, ledger/handlers/units.ts; nothing deletes these
-- rows). Until now an UPDATE by hand could put a decommissioned unit back at a site, or a
-- DELETE take a unit or a manifest line out of the record.
--
-- A row trigger, but one whose WHEN is evaluated per row without calling the function
-- (as 019's): shipping or listing 100,000 units, none of them in an end state, pays one
-- comparison a row. Statements that change units set-based (store/batch-writes.ts
-- custodyChanges) name their rows by a custody that is never an end state.
CREATE FUNCTION units_keep_end_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'unit % is %; a decommissioned or lost unit never changes again', OLD.serial, OLD.custody
    USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER units_keep_end_state BEFORE UPDATE ON units FOR EACH ROW
  WHEN (OLD.custody IN ('decommissioned', 'lost')) EXECUTE FUNCTION units_keep_end_state();

-- 004's rule (the ledger only grows) for the tables it left out. Not licence_parties (an
-- amendment rewrites a licence's parties; its versions keep the old ones) nor the events
-- (a deleted event is what the log's checks exist to catch, and they are tested on it).
CREATE TRIGGER units_no_delete BEFORE DELETE OR TRUNCATE ON units FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();
CREATE TRIGGER shipment_serials_no_delete BEFORE DELETE OR TRUNCATE ON shipment_serials FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();
CREATE TRIGGER licences_no_delete BEFORE DELETE OR TRUNCATE ON licences FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();
CREATE TRIGGER licence_versions_no_delete BEFORE DELETE OR TRUNCATE ON licence_versions FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

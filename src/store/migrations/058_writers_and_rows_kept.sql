-- The writer roles by name, and rows a writer could still rewrite (s26: the writer role, and
-- the review that attacked it with the writer's connection alone).

-- 1. The roles that each migration run grants the writer's rights (store/writer-role.ts,
--    knownWriterRoles): those a run was told of (the embedded writer, DATABASE_WRITER_URL),
--    recorded here. Before, any role with a right on schema_migrations counted as one, and a
--    read-only reporting role granted SELECT on every table was given the writer's writes.
--    With the role's oid: a role dropped and made again under the name is another role, and is
--    not granted. A writer is retired by deleting its row (the owner's to do).
CREATE TABLE writer_roles (
  role        name PRIMARY KEY,
  role_oid    oid NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

-- 2. A log key's row never changes and is never deleted (the ledger only inserts it, store/
--    tlog-tables.ts). The writer had UPDATE on it: a first_size moved by hand was found by the
--    start-up check, and every later start refused.
CREATE FUNCTION tlog_keys_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a log key''s row is never changed or deleted (% refused)', TG_OP
    USING ERRCODE = 'restrict_violation', TABLE = 'tlog_keys';
END $$;
CREATE TRIGGER tlog_keys_kept BEFORE UPDATE OR DELETE OR TRUNCATE ON tlog_keys FOR EACH STATEMENT EXECUTE FUNCTION tlog_keys_kept();

-- 3. Each licence version is made by an event of its own: no two versions name one seq (the
--    event that made them). A second version inserted with the seq of the licence's own
--    licence.create event (its units doubled, its validity extended, its conditions dropped)
--    passed 055's part ledger_check_version_events, which matched both to that one event.
--    A statement trigger reads the rows it inserted against the others, by an index on seq
--    (without it, each batch that makes a version read every version under the head lock: 44-50
--    ms at 100,000 versions, 1.1 ms with it, the s26 review).
CREATE INDEX licence_versions_seq ON licence_versions (seq);
CREATE FUNCTION licence_versions_one_event_each() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  clash record;
BEGIN
  SELECT n.licence_id, n.version, n.seq, v.licence_id AS other_licence, v.version AS other_version INTO clash
  FROM inserted n JOIN licence_versions v ON v.seq = n.seq AND (v.licence_id, v.version) <> (n.licence_id, n.version)
  LIMIT 1;
  IF clash IS NULL THEN RETURN NULL; END IF;
  RAISE EXCEPTION 'version % of licence % names event %, which made version % of licence % already: each version is made by an event of its own',
    clash.version, clash.licence_id, clash.seq, clash.other_version, clash.other_licence
    USING ERRCODE = 'unique_violation', CONSTRAINT = 'licence_versions_one_event_each', TABLE = 'licence_versions';
END $$;
CREATE TRIGGER licence_versions_one_event_each AFTER INSERT ON licence_versions
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION licence_versions_one_event_each();

--    And the re-check: no event made two versions, and a licence's versions come in the order
--    of the events that made them.
CREATE FUNCTION ledger_check_version_order() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'licence-versions', v.licence_id, format('version %s names event %s, which made %s versions', v.version, v.seq, d.n)
  FROM licence_versions v JOIN (SELECT seq, count(*) AS n FROM licence_versions GROUP BY seq HAVING count(*) > 1) d ON d.seq = v.seq
  UNION ALL
  SELECT 'licence-versions', o.licence_id, format('version %s was made by event %s, not after event %s, which made version %s', o.version, o.seq, o.before_seq, o.version - 1)
  FROM (SELECT licence_id, version, seq, lag(seq) OVER (PARTITION BY licence_id ORDER BY version) AS before_seq FROM licence_versions) o
  WHERE o.seq <= o.before_seq
$$;
INSERT INTO ledger_checks (position, part) VALUES (300, 'ledger_check_version_order');

-- 4. A new serial is of the ledger's form (core/serial.ts newSerialPattern: ASCII capitals,
--    digits and . _ : / -, starting with a capital or a digit, at most 64 characters), not only
--    in capitals (049). A serial with a zero-width space, or in full-width digits, made a
--    second live manifest line for a unit already live in another shipment (invariant 4),
--    and the re-check's case twins did not see it. 049's trigger function, widened: lower case
--    is refused as before, in its words; any other break of the form in these. The regular
--    expression costs 31 ms a 100,000 serials against 16 ms for 049's comparison with upper()
--    (one statement over a table of them, 2-core host), so about 30 ms more on a 100,000-serial
--    manifest, whose units and lines it reads; a bounded repetition ({0,63}) for the length
--    cost 390 ms, hence length() beside it.
CREATE OR REPLACE FUNCTION serials_in_capitals() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  found text;
BEGIN
  SELECT n.serial INTO found FROM inserted n
  WHERE n.serial COLLATE "C" !~ '^[A-Z0-9][A-Z0-9._:/-]*$' OR length(n.serial) > 64 LIMIT 1;
  IF found IS NULL THEN RETURN NULL; END IF;
  IF found <> upper(found COLLATE "C") AND upper(found COLLATE "C") COLLATE "C" ~ '^[A-Z0-9][A-Z0-9._:/-]*$' AND length(found) <= 64 THEN
    RAISE EXCEPTION 'a new % has serial %, with lower-case letters; new serials are written in capitals (%)',
      CASE TG_TABLE_NAME WHEN 'units' THEN 'unit' ELSE 'manifest line' END, found, upper(found COLLATE "C")
      USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_serial_capitals', TABLE = TG_TABLE_NAME;
  END IF;
  RAISE EXCEPTION 'a new % has serial %, which is not of the form of a serial (ASCII capitals, digits and . _ : / -, starting with a capital or a digit, at most 64 characters)',
    CASE TG_TABLE_NAME WHEN 'units' THEN 'unit' ELSE 'manifest line' END, to_json(found)::text
    USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_serial_capitals', TABLE = TG_TABLE_NAME;
END $$;

--    And the re-check names a serial of no form the ledger ever took (an earlier release's
--    lower case passes), on units and manifest lines alike.
CREATE FUNCTION ledger_check_serial_form() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-4', s.serial, format('%s has serial %s, which is not of the form of a serial', s.place, to_json(s.serial)::text)
  FROM (SELECT 'a unit' AS place, u.serial FROM units u
        UNION ALL SELECT 'manifest line of ' || m.shipment_id, m.serial FROM shipment_serials m) s
  WHERE s.serial COLLATE "C" !~ '^[A-Za-z0-9][A-Za-z0-9._:/-]*$' OR length(s.serial) > 64
$$;
INSERT INTO ledger_checks (position, part) VALUES (310, 'ledger_check_serial_form');

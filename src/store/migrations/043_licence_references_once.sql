-- A licence's reference names one licence of its issuing authority (s17 terms review, finding
-- 5: BIS created a second licence under demo L-31's reference, BIS-D-2026-H200-0417, answered
-- 201, and `check` clean). People quote a licence by its reference, in a shipment's papers,
-- a customs declaration, a report; two licences under one leave that quote naming either.
-- The ledger refuses a second (ledger/handlers/licences.ts, rule licence-reference); the
-- database holds the rule behind it. Per authority: BIS and MOFCOM number their documents
-- each their own way, and one may happen on the other's.
--
-- 1. The spelling compared: trimmed, ASCII letters in lower case, so that a reference retyped
--    as "bis-d-2026-h200-0417 " is the one already given. It is the ledger's
--    referenceSpelling, character for character: the trim removes what JavaScript's
--    String.prototype.trim removes (listed here: btrim alone removes spaces only), and lower()
--    under the "C" collation folds A to Z alone, whatever the database's locale. A locale's
--    fold (or ICU's) would fold other letters as well, by tables JavaScript does not share and
--    that change with the operating system's C library: the ledger and this trigger could then
--    disagree, and this index need rebuilding after an upgrade of that library. References are
--    ASCII codes or CJK text, which has no case. IMMUTABLE, so an index can hold it.
CREATE FUNCTION licence_reference_key(reference text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT lower(btrim(reference, E'\t\n\u000b\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff') COLLATE "C")
$$;

-- 2. The look-up of the trigger below and of the ledger's load by reference
--    (store/ledger-tables.ts, keys.licenceReferences): an authority's licences under one
--    spelling, one index scan. Licences are written by creation, amendment, status changes
--    and the counts of allocation and shipping; the index's columns change with none of them
--    but creation (reference and authority are no amendment's to change), so an upsert that
--    leaves them be is a HOT update or an index entry rewritten unchanged.
CREATE INDEX licences_authority_reference ON licences (authority_org_id, licence_reference_key(reference));

-- 3. A new licence, or one whose reference or authority changed (which the ledger never
--    writes: only a hand could), under a spelling its authority already gave another licence
--    is refused (unique_violation, as a unique index would; ledger/refusals.ts answers it
--    409). Not a unique index: deployed databases may hold such licences already (the
--    finding's), which one would fail this migration on; they stay, with their versions, and
--    the re-check names them (4.). A row that keeps its reference and authority is never
--    checked, so such a licence can still be issued, amended, allocated and shipped under. A
--    trigger suffices because the ledger writes under one lock (store/ledger-tables.ts
--    beginBatch): two creations never run at once. AFTER, so that it sees every row of its
--    statement: two licences of one batch under one reference are refused too. The holder
--    named is the first made, by an aggregate rather than ORDER BY … LIMIT 1, for the reason
--    039 gives (a cached generic plan that walks licences_created instead of this index).
--    Crash note: it raises inside the batch's transaction, which then commits nothing.
CREATE FUNCTION licences_reference_once() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  holder text;
  held_as text;
BEGIN
  SELECT (array_agg(l.id ORDER BY l.created_seq, l.id))[1], (array_agg(l.reference ORDER BY l.created_seq, l.id))[1] INTO holder, held_as
  FROM licences l
  WHERE l.authority_org_id = NEW.authority_org_id AND licence_reference_key(l.reference) = licence_reference_key(NEW.reference) AND l.id <> NEW.id;
  IF holder IS NULL THEN RETURN NULL; END IF;
  RAISE EXCEPTION 'licence % has reference "%" of authority %, which licence % holds (as "%"); an authority''s reference names one licence (compared trimmed, without regard to the case of ASCII letters)',
    NEW.id, NEW.reference, NEW.authority_org_id, holder, held_as
    USING ERRCODE = 'unique_violation', CONSTRAINT = 'licences_reference_once';
END $$;
CREATE TRIGGER licences_reference_once_insert AFTER INSERT ON licences FOR EACH ROW
  EXECUTE FUNCTION licences_reference_once();
CREATE TRIGGER licences_reference_once_update AFTER UPDATE OF reference, authority_org_id ON licences FOR EACH ROW
  WHEN (NEW.reference IS DISTINCT FROM OLD.reference OR NEW.authority_org_id IS DISTINCT FROM OLD.authority_org_id)
  EXECUTE FUNCTION licences_reference_once();

-- 4. The re-check's part (041): each licence whose reference, in the spelling above, a licence
--    its authority made before it (by created_seq) already holds, naming that one. Written
--    before this migration, or with the trigger off. One pass over licences (thousands).
CREATE FUNCTION ledger_check_licence_references() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'licence-reference', r.id,
         format('reference %s of authority %s is held by licence %s (as %s), made before it; an authority''s reference names one licence', r.reference, r.authority_org_id, r.first_id, r.first_reference)
  FROM (SELECT l.id, l.reference, l.authority_org_id,
               first_value(l.id) OVER w AS first_id, first_value(l.reference) OVER w AS first_reference
        FROM licences l
        WINDOW w AS (PARTITION BY l.authority_org_id, licence_reference_key(l.reference) ORDER BY l.created_seq, l.id)) r
  WHERE r.id <> r.first_id
$$;
INSERT INTO ledger_checks (position, part) VALUES (180, 'ledger_check_licence_references');

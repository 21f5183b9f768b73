-- A licence's history stays as it was written (DESIGN: "Amendments make a new version;
-- history stays"), held in the database as well as in the code. Until now only DELETE and
-- TRUNCATE of licence_versions were refused (001, 022): an UPDATE could rewrite a stored
-- version, an UPDATE of licences could change its terms in place without a version (drop a
-- per-shipment cap, stretch its validity: later bookings were judged on terms no version
-- records), and a DELETE of licence_parties could drop a named consignee. ledger_violations()
-- saw none of it (s13 review, amend finding 2).
--
-- How the ledger writes these rows (ledger/handlers/licences.ts, store/batch-writes.ts,
-- store/ledger-tables.ts), which is what these rules allow and nothing more:
-- - licence.create inserts the licence at version 1, its party rows and version 1's snapshot
--   (the licence with its parties, less allocated_units and shipped_units).
-- - licence.amend writes the licence with its version one up and its new terms, and inserts
--   that version's snapshot; when it names parties, the batch first deletes the licence's
--   party rows and inserts the new ones (replacedPartiesOf). A batch writes a row once, in the
--   state its last command left it, so two amendments of one licence in one batch move its
--   row up two versions in one write, with both versions inserted: the row's version may rise
--   by more than one, the stored versions may not skip one.
-- - Every other write changes status, allocated_units, shipped_units and updated_seq only
--   (issue, suspend, reinstate, revoke, surrender, the sweep's expiry, allocations, shipping
--   and its exhaustion), as an upsert that sets every column, mostly to the value it had.
-- - licence_versions rows are only inserted; licence_parties rows are only inserted, and
--   deleted by an amendment that replaces them; neither is ever updated.
--
-- The rule: a licence's terms (every column its versions record but its status: products,
-- units, value, validity, conditions, riders, route, holder, authority, reference, parties)
-- are those of its newest version, and its versions are exactly 1 to its version.
--
-- Write order decides where each part is checked. Within a batch the licence row goes
-- before its version (licence_versions references licences), and its old party rows are
-- deleted before it, its new ones inserted after it. So a change of terms is refused at once
-- when the version did not go up (1, a row trigger whose WHEN the executor evaluates without
-- calling the function, as 028's: status and counter writes pay one row comparison); whether
-- the new terms are the ones the new version records, and whether the parties are, can only
-- be judged at COMMIT (2 and 3, deferred constraint triggers, as 023's licences_check_sum).
-- They are queued only by a licence written with a new version, a version inserted or a
-- party row inserted or deleted: amendments and licence creations, a handful of primary-key
-- lookups each. Shipping, allocations and status changes queue nothing.
--
-- Left open: new terms written by hand together with a version that records them are an
-- amendment as far as the database can tell; only the log (no licence.amend event for it)
-- says otherwise, and nothing compares a version with its event yet. Tests that rewrite a
-- licence by hand to reach another check turn these triggers off first, as 028's tests do
-- for theirs, and before any write: ALTER TABLE refuses a table with deferred checks pending.

-- 0. A stored version is never changed (DELETE and TRUNCATE are 022's).
CREATE TRIGGER licence_versions_no_change BEFORE UPDATE ON licence_versions
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

-- A value as a refusal quotes it: short enough to read beside the others.
CREATE FUNCTION licence_term_text(value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN value IS NULL THEN 'null' WHEN length(value) <= 120 THEN value ELSE left(value, 117) || '...' END
$$;

-- 1. A licence's terms change only with its version going up; its version never goes down.
--    Measured: 50,000 licence rows written back whole as a batch upsert writes them (status
--    and counts only changed, two conditions and a rider each), 1,022 ms with this trigger
--    and 1,005 ms without (medians of 8 alternating runs, 903-1,088 ms in all, on a shared
--    two-core host): inside the spread. The ledger writes at most two licence rows a
--    shipment it ships, and none for a booking.
CREATE FUNCTION licences_terms_follow_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version < OLD.version THEN
    RAISE EXCEPTION 'licence % is at version %; it cannot go back to version % (every amendment adds a version, and none is taken back)', OLD.id, OLD.version, NEW.version
      USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_terms_follow_versions';
  END IF;
  RAISE EXCEPTION 'licence % is at version %; its terms change only with a new version, as an amendment makes one (%)', OLD.id, OLD.version, concat_ws(', ',
      CASE WHEN NEW.reference IS DISTINCT FROM OLD.reference THEN format('reference %s → %s', OLD.reference, NEW.reference) END,
      CASE WHEN NEW.authority_org_id IS DISTINCT FROM OLD.authority_org_id THEN format('authority %s → %s', OLD.authority_org_id, NEW.authority_org_id) END,
      CASE WHEN NEW.direction IS DISTINCT FROM OLD.direction THEN format('direction %s → %s', OLD.direction, NEW.direction) END,
      CASE WHEN NEW.holder_org_id IS DISTINCT FROM OLD.holder_org_id THEN format('holder %s → %s', OLD.holder_org_id, NEW.holder_org_id) END,
      CASE WHEN NEW.product_ids IS DISTINCT FROM OLD.product_ids THEN format('products %s → %s', licence_term_text(OLD.product_ids::text), licence_term_text(NEW.product_ids::text)) END,
      CASE WHEN (NEW.origin, NEW.destination) IS DISTINCT FROM (OLD.origin, OLD.destination) THEN format('route %s to %s → %s to %s', OLD.origin, OLD.destination, NEW.origin, NEW.destination) END,
      CASE WHEN NEW.authorised_units IS DISTINCT FROM OLD.authorised_units THEN format('authorised units %s → %s', OLD.authorised_units, NEW.authorised_units) END,
      CASE WHEN (NEW.value_minor, NEW.currency) IS DISTINCT FROM (OLD.value_minor, OLD.currency)
        THEN format('value %s %s → %s %s', coalesce(OLD.value_minor::text, 'none'), coalesce(OLD.currency, ''), coalesce(NEW.value_minor::text, 'none'), coalesce(NEW.currency, '')) END,
      CASE WHEN NEW.valid_from IS DISTINCT FROM OLD.valid_from THEN format('valid_from %s → %s', OLD.valid_from, NEW.valid_from) END,
      CASE WHEN NEW.valid_to IS DISTINCT FROM OLD.valid_to THEN format('valid_to %s → %s', OLD.valid_to, NEW.valid_to) END,
      CASE WHEN NEW.conditions IS DISTINCT FROM OLD.conditions THEN format('conditions %s → %s', licence_term_text(OLD.conditions::text), licence_term_text(NEW.conditions::text)) END,
      CASE WHEN NEW.riders IS DISTINCT FROM OLD.riders THEN format('riders %s → %s', licence_term_text(OLD.riders::text), licence_term_text(NEW.riders::text)) END,
      CASE WHEN NEW.demo IS DISTINCT FROM OLD.demo THEN format('demo %s → %s', OLD.demo::text, NEW.demo::text) END,
      CASE WHEN NEW.created_seq IS DISTINCT FROM OLD.created_seq THEN format('created_seq %s → %s', OLD.created_seq, NEW.created_seq) END)
    USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_terms_follow_versions';
END $$;
CREATE TRIGGER licences_terms_follow_versions BEFORE UPDATE ON licences FOR EACH ROW
  WHEN (NEW.version < OLD.version
        OR (NEW.version = OLD.version
            AND (NEW.reference, NEW.authority_org_id, NEW.direction, NEW.holder_org_id, NEW.product_ids, NEW.origin, NEW.destination, NEW.authorised_units,
                 NEW.value_minor, NEW.currency, NEW.valid_from, NEW.valid_to, NEW.conditions, NEW.riders, NEW.demo, NEW.created_seq)
                IS DISTINCT FROM
                (OLD.reference, OLD.authority_org_id, OLD.direction, OLD.holder_org_id, OLD.product_ids, OLD.origin, OLD.destination, OLD.authorised_units,
                 OLD.value_minor, OLD.currency, OLD.valid_from, OLD.valid_to, OLD.conditions, OLD.riders, OLD.demo, OLD.created_seq)))
  EXECUTE FUNCTION licences_terms_follow_versions();

-- 2. What a licence's row says against what its newest version records: NULL when they
--    agree, else what differs. Compared value by value, never as text, so that the
--    snapshot's spelling of a value (the ledger's JSON: instants as ISO 8601 in UTC with
--    milliseconds, numbers as numbers) does not matter, and a value the snapshot holds in
--    another shape reads as a difference, never as an error. Used at COMMIT (below) and by
--    the re-check (ledger_violations, 4). licence_recorded_instant reads an instant as a
--    version records it (the ledger writes ISO 8601 strings), or NULL for a value that is
--    not one.
CREATE FUNCTION licence_recorded_instant(value jsonb) RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF jsonb_typeof(value) IS DISTINCT FROM 'string' THEN RETURN NULL; END IF;
  RETURN (value #>> '{}')::timestamptz;
EXCEPTION WHEN data_exception THEN
  RETURN NULL;
END $$;

CREATE FUNCTION licence_version_mismatch(l licences) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN n.versions <> l.version OR n.first_version <> 1 OR n.last_version <> l.version
      THEN format('it is at version %s, but its stored versions are %s', l.version,
                  CASE WHEN n.versions = 0 THEN 'none'
                       WHEN n.versions = n.last_version - n.first_version + 1 THEN format('%s to %s', n.first_version, n.last_version)
                       ELSE format('%s of %s to %s', n.versions, n.first_version, n.last_version) END)
    ELSE nullif(concat_ws(', ',
      CASE WHEN jsonb_typeof(v.s) IS DISTINCT FROM 'object' THEN 'the version records no terms' END,
      CASE WHEN to_jsonb(l.id) IS DISTINCT FROM v.s -> 'id' OR to_jsonb(l.version) IS DISTINCT FROM v.s -> 'version'
        THEN format('the version records licence %s version %s', licence_term_text(v.s ->> 'id'), licence_term_text(v.s ->> 'version')) END,
      CASE WHEN to_jsonb(l.reference) IS DISTINCT FROM v.s -> 'reference' THEN format('reference %s, recorded %s', l.reference, licence_term_text(v.s ->> 'reference')) END,
      CASE WHEN to_jsonb(l.authority_org_id) IS DISTINCT FROM v.s -> 'authority_org_id' THEN format('authority %s, recorded %s', l.authority_org_id, licence_term_text(v.s ->> 'authority_org_id')) END,
      CASE WHEN to_jsonb(l.direction) IS DISTINCT FROM v.s -> 'direction' THEN format('direction %s, recorded %s', l.direction, licence_term_text(v.s ->> 'direction')) END,
      CASE WHEN to_jsonb(l.holder_org_id) IS DISTINCT FROM v.s -> 'holder_org_id' THEN format('holder %s, recorded %s', l.holder_org_id, licence_term_text(v.s ->> 'holder_org_id')) END,
      CASE WHEN to_jsonb(l.product_ids) IS DISTINCT FROM v.s -> 'product_ids' THEN format('products %s, recorded %s', licence_term_text(l.product_ids::text), licence_term_text(v.s ->> 'product_ids')) END,
      CASE WHEN to_jsonb(l.origin::text) IS DISTINCT FROM v.s -> 'origin' OR to_jsonb(l.destination::text) IS DISTINCT FROM v.s -> 'destination'
        THEN format('route %s to %s, recorded %s to %s', l.origin, l.destination, licence_term_text(v.s ->> 'origin'), licence_term_text(v.s ->> 'destination')) END,
      CASE WHEN to_jsonb(l.authorised_units) IS DISTINCT FROM v.s -> 'authorised_units' THEN format('authorised units %s, recorded %s', l.authorised_units, licence_term_text(v.s ->> 'authorised_units')) END,
      CASE WHEN coalesce(to_jsonb(l.value_minor), 'null') IS DISTINCT FROM v.s -> 'value_minor' OR coalesce(to_jsonb(l.currency::text), 'null') IS DISTINCT FROM v.s -> 'currency'
        THEN format('value %s %s, recorded %s %s', coalesce(l.value_minor::text, 'none'), coalesce(l.currency, ''), licence_term_text(v.s ->> 'value_minor'), licence_term_text(v.s ->> 'currency')) END,
      CASE WHEN l.valid_from IS DISTINCT FROM licence_recorded_instant(v.s -> 'valid_from') THEN format('valid_from %s, recorded %s', l.valid_from, licence_term_text(v.s ->> 'valid_from')) END,
      CASE WHEN l.valid_to IS DISTINCT FROM licence_recorded_instant(v.s -> 'valid_to') THEN format('valid_to %s, recorded %s', l.valid_to, licence_term_text(v.s ->> 'valid_to')) END,
      CASE WHEN l.conditions IS DISTINCT FROM v.s -> 'conditions' THEN format('conditions %s, recorded %s', licence_term_text(l.conditions::text), licence_term_text(v.s ->> 'conditions')) END,
      CASE WHEN l.riders IS DISTINCT FROM v.s -> 'riders' THEN format('riders %s, recorded %s', licence_term_text(l.riders::text), licence_term_text(v.s ->> 'riders')) END,
      CASE WHEN to_jsonb(l.demo) IS DISTINCT FROM v.s -> 'demo' THEN format('demo %s, recorded %s', l.demo::text, licence_term_text(v.s ->> 'demo')) END,
      CASE WHEN to_jsonb(l.created_seq) IS DISTINCT FROM v.s -> 'created_seq' THEN format('created_seq %s, recorded %s', l.created_seq, licence_term_text(v.s ->> 'created_seq')) END,
      CASE WHEN p.named IS DISTINCT FROM r.named THEN format('parties [%s], recorded [%s]', licence_term_text(p.named), licence_term_text(r.named)) END), '')
  END
  FROM (SELECT count(*)::int AS versions, min(version) AS first_version, max(version) AS last_version FROM licence_versions WHERE licence_id = l.id) n
  LEFT JOIN LATERAL (SELECT snapshot AS s FROM licence_versions WHERE licence_id = l.id AND version = l.version) v ON true
  -- Parties as sorted "organisation role" lists, the rows' and the version's.
  CROSS JOIN LATERAL (SELECT coalesce(string_agg(org_id || ' ' || role, ', ' ORDER BY org_id || ' ' || role), '') AS named
                      FROM licence_parties WHERE licence_id = l.id) p
  CROSS JOIN LATERAL (SELECT coalesce(string_agg((e ->> 'org_id') || ' ' || (e ->> 'role'), ', ' ORDER BY (e ->> 'org_id') || ' ' || (e ->> 'role')), '') AS named
                      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(v.s -> 'parties') = 'array' THEN v.s -> 'parties' ELSE '[]' END) AS e) r
$$;

--    At COMMIT, the licence as it stands then (a later statement of the transaction may
--    have changed it again) against its newest version. Queued by a licence made, a licence
--    written with another version (an amendment, or one forged by hand) and a version
--    inserted (one forged ahead of its licence); a licence whose version stays, that is every
--    status, allocation and shipping write, queues nothing.
CREATE FUNCTION licences_match_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE target_id text; current_licence licences%ROWTYPE; mismatch text;
BEGIN
  -- Separate statements: NEW has an id on licences and a licence_id on licence_versions.
  IF TG_TABLE_NAME = 'licences' THEN target_id := NEW.id; ELSE target_id := NEW.licence_id; END IF;
  SELECT * INTO current_licence FROM licences WHERE id = target_id;
  mismatch := licence_version_mismatch(current_licence);
  IF mismatch IS NULL THEN RETURN NULL; END IF;
  RAISE EXCEPTION 'licence % does not match its version %: % (a licence''s terms, its parties among them, are those its newest version records, and an amendment writes both)',
    current_licence.id, current_licence.version, mismatch
    USING ERRCODE = 'check_violation', CONSTRAINT = 'licences_match_version';
END $$;
CREATE CONSTRAINT TRIGGER licences_match_version_insert AFTER INSERT ON licences
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  EXECUTE FUNCTION licences_match_version();
CREATE CONSTRAINT TRIGGER licences_match_version_update AFTER UPDATE ON licences
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.version IS DISTINCT FROM OLD.version)
  EXECUTE FUNCTION licences_match_version();
CREATE CONSTRAINT TRIGGER licence_versions_match_licence AFTER INSERT ON licence_versions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  EXECUTE FUNCTION licences_match_version();

-- 3. A licence's named parties are those of its newest version. The ledger never updates a
--    party row, and deletes a licence's rows only to insert the amended list after them, in
--    the same batch as the new version; so an UPDATE or a TRUNCATE is refused at once, and
--    each row inserted or deleted is judged at COMMIT, for itself: a row there then is named
--    by the licence's newest version, and a row gone is not. The full list against the
--    version is 2's, when the version changes; this catches a party added or dropped with
--    the version left as it was. An amendment of p parties queues 2p lookups of one licence,
--    one version and one party row; nothing else queues any.
CREATE FUNCTION licence_parties_no_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'licence_parties rows are never %: a licence''s named parties change only with a new version, as an amendment makes one', CASE TG_OP WHEN 'UPDATE' THEN 'changed' ELSE 'truncated' END
    USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER licence_parties_no_change BEFORE UPDATE OR TRUNCATE ON licence_parties
  FOR EACH STATEMENT EXECUTE FUNCTION licence_parties_no_change();

CREATE FUNCTION licence_parties_follow_versions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE party licence_parties%ROWTYPE; current_version integer; recorded jsonb; present boolean; named boolean;
BEGIN
  IF TG_OP = 'DELETE' THEN party := OLD; ELSE party := NEW; END IF;
  SELECT l.version, v.snapshot -> 'parties' INTO current_version, recorded
  FROM licences l LEFT JOIN licence_versions v ON v.licence_id = l.id AND v.version = l.version
  WHERE l.id = party.licence_id;
  present := EXISTS (SELECT 1 FROM licence_parties p WHERE p.licence_id = party.licence_id AND p.org_id = party.org_id AND p.role = party.role);
  named := coalesce(jsonb_typeof(recorded) = 'array' AND recorded @> jsonb_build_array(jsonb_build_object('org_id', party.org_id, 'role', party.role)), false);
  IF present = named THEN RETURN NULL; END IF;
  RAISE EXCEPTION 'licence % % % as %, but its version % %; a licence''s named parties change only with a new version, as an amendment makes one',
    party.licence_id, CASE WHEN present THEN 'names' ELSE 'no longer names' END, party.org_id, party.role,
    current_version, CASE WHEN named THEN 'does' ELSE 'does not' END
    USING ERRCODE = 'check_violation', CONSTRAINT = 'licence_parties_follow_versions';
END $$;
CREATE CONSTRAINT TRIGGER licence_parties_follow_versions AFTER INSERT OR DELETE ON licence_parties
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  EXECUTE FUNCTION licence_parties_follow_versions();

-- 4. The full re-check reports a licence that does not match its newest version, however it
--    came to differ (rows written before this migration, or with these triggers off). It
--    reads each licence's versions and parties by primary key; licences are few (thousands,
--    against millions of units). As 032 does, the definition before this one is kept under
--    its own name and this one adds to it, rather than repeating its 100 lines: migrations
--    030 to 032 were written at the same time, and whichever of them last redefines the
--    re-check, every clause is kept. 032 wraps this definition in turn (as
--    ledger_violations_before_032(), which calls ledger_violations_before_030()): a later
--    migration that redefines ledger_violations() whole folds in 030's and 032's clauses,
--    then drops ledger_violations_before_032() first and ledger_violations_before_030() after.
ALTER FUNCTION ledger_violations() RENAME TO ledger_violations_before_030;
CREATE FUNCTION ledger_violations() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT * FROM ledger_violations_before_030()
  UNION ALL
  SELECT 'licence-versions', l.id, format('does not match its version %s: %s', l.version, m.mismatch)
  FROM licences l CROSS JOIN LATERAL (SELECT licence_version_mismatch(l) AS mismatch) m
  WHERE m.mismatch IS NOT NULL
$$;

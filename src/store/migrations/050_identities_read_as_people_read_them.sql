-- When are two strings the same thing? (s21 identity review, findings 2, 3 and 4.) The
-- database compared a product's model, an organisation's identifier and a licence's
-- reference by folds narrower than a reader's, so spellings that look the same to a person
-- were stored as different things, each answered 201, and `check` stayed clean:
--   - a model not in the catalogue, once per spelling: Gaudi 3, GAUDI 3, Gaudi-3, Gaudi ３;
--   - one LEI held by five organisations: with a zero-width space, in full width, in groups
--     as printed, with a BOM inside;
--   - one reference on eight licences of BIS: an en dash, non-breaking hyphens, full-width
--     digits (as Chinese input methods type them), an inner space.
-- The ledger now compares each by a fold (ledger/handlers: organisations.ts modelReading and
-- identifierSpelling, licences.ts referenceSpelling); this migration gives the database the
-- same folds, character for character, and holds the rules behind the ledger's checks.
-- store/identities-050.test.ts runs both over one table of spellings.
--
-- Every fold starts with NFKC (compatibility forms: full-width ２ is 2, ﬁ is fi, U+00A0 is a
-- space), which PostgreSQL has as normalize(text, NFKC) from 13 on, in a UTF8 database. Then
-- each drops or maps listed characters (core/text.ts lists them: invisible characters, the
-- Default_Ignorable_Code_Point set; white space, JavaScript's \s; dashes, \p{Pd} and U+2212),
-- written here as E'' strings so that the regular expression gets the characters themselves,
-- whatever standard_conforming_strings says. Only ASCII letters change case, as lower() and
-- upper() do under the "C" collation whatever the database's locale (043 says why).
-- NFKC is by the Unicode version of each side (PostgreSQL 13: 13.0, 17: 15.1; Node 20's ICU:
-- 17.0), so a character assigned since, with a compatibility mapping or a combining class,
-- folds in one and not the other (U+1CCF1, an outlined 1 of Unicode 16, is 1 to the ledger
-- alone). The schema refuses such characters in a model, reference or identifier
-- (core/text.ts newerUnicodeProblem: past U+FFFF all but CJK ideographs, and the few of the
-- BMP added since 13.0 that normalisation changes), so what these folds meet, both read alike.
--
-- Existing rows that the wider folds find alike stay, as 039 and 043 left theirs: a product's
-- model, a licence's reference and an organisation's identifiers are no command's to change,
-- so a migration that stopped on them would leave the operator nothing to do but edit rows by
-- hand. Triggers, not unique indexes, refuse each new one; the re-check names the old ones
-- (`chipledger check`), each against the one registered before it.

-- 0. normalize() and a UTF8 database, or a clear stop before anything is written.
DO $$
BEGIN
  IF current_setting('server_version_num')::integer < 130000 THEN
    RAISE EXCEPTION 'migration 050 needs PostgreSQL 13 or later (normalize(text, NFKC), to compare models, identifiers and references as the ledger does); this server is %', current_setting('server_version')
      USING HINT = 'upgrade the server, or point DATABASE_URL at a newer one, then start chipledger again';
  END IF;
  IF current_setting('server_encoding') <> 'UTF8' THEN
    RAISE EXCEPTION 'migration 050 needs a database in UTF8 (normalize(text, NFKC) works on UTF8 only); this one is in %', current_setting('server_encoding')
      USING HINT = 'create the database WITH ENCODING ''UTF8'' and restore into it';
  END IF;
END $$;

-- 1. A model as a reader takes it (policy/catalogue.ts modelReading): NFKC, without invisible
--    characters, white space, dashes or underscores, ASCII letters in lower case. "GAUDI 3",
--    "Gaudi-3" and "Gaudi ３" read as Gaudi 3, and "H200\u200b SXM" as H200 SXM.
CREATE FUNCTION product_model_reading(model text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT lower(regexp_replace(normalize(model, NFKC),
    E'[-_\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFF8\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0000-\U000E0FFF\t\n\u000B\f\r \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u058A\u05BE\u1400\u1806\u2010-\u2015\u2212\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u2E5D\u301C\u3030\u30A0\uFE31\uFE32\uFE58\uFE63\uFF0D\U00010D6E\U00010EAD]+',
    '', 'g') COLLATE "C")
$$;

-- 2. The trigger's look-up, and the ledger's load by model: a hash index, as 026's
--    products_model_key, since a model may be 2,000 characters (past a btree entry's bound).
--    products_model_key stays: the exact text is still refused by it first.
CREATE INDEX products_model_reading ON products USING hash (product_model_reading(model));

-- 3. A new product, or one whose model changed (which the ledger never writes), that reads as
--    a product already registered is refused (unique_violation; ledger/refusals.ts answers
--    it 409), naming that product. A trigger rather than an exclusion constraint over the
--    index, for the rows that already read alike (above). The ledger writes under one lock
--    (039 says why that suffices); AFTER, so two products of one statement are compared too.
--    Crash note: it raises inside the batch's transaction, which then commits nothing.
CREATE FUNCTION products_model_reading_once() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  holder text;
  held_as text;
BEGIN
  SELECT (array_agg(p.id ORDER BY p.created_seq, p.id))[1], (array_agg(p.model ORDER BY p.created_seq, p.id))[1] INTO holder, held_as
  FROM products p
  WHERE product_model_reading(p.model) = product_model_reading(NEW.model) AND p.id <> NEW.id;
  IF holder IS NULL THEN RETURN NULL; END IF;
  RAISE EXCEPTION 'product % has model "%", which reads as product %''s "%"; a model is registered once (compared in NFKC, without regard to the case of ASCII letters, white space, dashes, underscores or invisible characters)',
    NEW.id, NEW.model, holder, held_as
    USING ERRCODE = 'unique_violation', CONSTRAINT = 'products_model_reading_once';
END $$;
CREATE TRIGGER products_model_reading_once_insert AFTER INSERT ON products FOR EACH ROW
  EXECUTE FUNCTION products_model_reading_once();
CREATE TRIGGER products_model_reading_once_update AFTER UPDATE OF model ON products FOR EACH ROW
  WHEN (NEW.model IS DISTINCT FROM OLD.model)
  EXECUTE FUNCTION products_model_reading_once();

-- 4. The re-check's part: each product whose model reads as one registered before it.
CREATE FUNCTION ledger_check_product_models() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'product-model', r.id,
         format('model %s reads as product %s''s %s, registered before it; a model is registered once', r.model, r.first_id, r.first_model)
  FROM (SELECT p.id, p.model, first_value(p.id) OVER w AS first_id, first_value(p.model) OVER w AS first_model
        FROM products p
        WINDOW w AS (PARTITION BY product_model_reading(p.model) ORDER BY p.created_seq, p.id)) r
  WHERE r.id <> r.first_id
$$;
INSERT INTO ledger_checks (position, part) VALUES (250, 'ledger_check_product_models');

-- 5. A licence's reference as the ledger spells it (ledger/handlers/licences.ts
--    referenceSpelling), replacing 043's (trimmed, ASCII letters in lower case): NFKC, without
--    white space or invisible characters, every dash as "-", ASCII letters in lower case.
--    White space is dropped, not made one space: "BIS-D-2026 -H200-0417" is BIS-D-2026-H200-0417.
--    The name stays, so that 043's trigger, its re-check part and the ledger's load by
--    reference (store/batch-state.ts) use the new spelling; the index over it is built again,
--    as its entries hold the old one.
CREATE OR REPLACE FUNCTION licence_reference_key(reference text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT lower(regexp_replace(regexp_replace(normalize(reference, NFKC),
    E'[\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFF8\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0000-\U000E0FFF\t\n\u000B\f\r \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+', '', 'g'),
    E'[-\u058A\u05BE\u1400\u1806\u2010-\u2015\u2212\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u2E5D\u301C\u3030\u30A0\uFE31\uFE32\uFE58\uFE63\uFF0D\U00010D6E\U00010EAD]', '-', 'g') COLLATE "C")
$$;
DROP INDEX licences_authority_reference;
CREATE INDEX licences_authority_reference ON licences (authority_org_id, licence_reference_key(reference));

-- 043's trigger, its message saying how references are now compared.
CREATE OR REPLACE FUNCTION licences_reference_once() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  holder text;
  held_as text;
BEGIN
  SELECT (array_agg(l.id ORDER BY l.created_seq, l.id))[1], (array_agg(l.reference ORDER BY l.created_seq, l.id))[1] INTO holder, held_as
  FROM licences l
  WHERE l.authority_org_id = NEW.authority_org_id AND licence_reference_key(l.reference) = licence_reference_key(NEW.reference) AND l.id <> NEW.id;
  IF holder IS NULL THEN RETURN NULL; END IF;
  RAISE EXCEPTION 'licence % has reference "%" of authority %, which licence % holds (as "%"); an authority''s reference names one licence (compared in NFKC, every dash as "-", without white space and without regard to the case of ASCII letters)',
    NEW.id, NEW.reference, NEW.authority_org_id, holder, held_as
    USING ERRCODE = 'unique_violation', CONSTRAINT = 'licences_reference_once';
END $$;

-- 6. An organisation's identifier as the ledger spells it (ledger/schemas.ts
--    identifierSpelling): NFKC, without white space, dashes, dots, slashes or invisible
--    characters (the separators of a code's groups as printed: "CHE-123.456.789" is
--    CHE123456789, "12.345.678/0001-95" 12345678000195), ASCII letters in capitals. The schema
--    now stores identifiers so; rows written before may hold "5493 001K JTII GC8Y 1R12", dots,
--    lower case or full width, which compare the same.
CREATE FUNCTION organisation_identifier_spelling(value text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT upper(regexp_replace(normalize(value, NFKC),
    E'[-\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFF8\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0000-\U000E0FFF\t\n\u000B\f\r \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u058A\u05BE\u1400\u1806\u2010-\u2015\u2212\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u2E5D\u301C\u3030\u30A0\uFE31\uFE32\uFE58\uFE63\uFF0D\U00010D6E\U00010EAD./]+',
    '', 'g') COLLATE "C")
$$;

-- 7. Each identifier of a row as kind=spelling, and a GIN index over them (039's reasons:
--    one index for every kind, without fastupdate): the trigger's look-up, and the ledger's
--    load by identifier (store/batch-state.ts organisationsByIdentifierSql), so that the
--    ledger finds a row stored before in another spelling ("15-048-3782") and refuses the code
--    itself, naming its holder (rule organisation-identifier), before this trigger would fail
--    the batch. 039's index over the jsonb stays, as 039 made it, though neither reads it.
--    With this migration's search_path: PostgreSQL 17 builds and maintains an index with
--    search_path set to pg_catalog alone, where the function would not find
--    organisation_identifier_spelling.
CREATE FUNCTION organisation_identifier_keys(identifiers jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
  SELECT coalesce(array_agg(e.key || '=' || organisation_identifier_spelling(e.value) ORDER BY e.key), '{}')
  FROM jsonb_each_text(identifiers) AS e(key, value)
$$;
CREATE INDEX organisations_identifier_keys ON organisations USING gin (organisation_identifier_keys(identifiers)) WITH (fastupdate = off);

-- 039's trigger, comparing spellings: its message as before.
CREATE OR REPLACE FUNCTION organisations_identifier_once() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  identifier record;
  holder text;
BEGIN
  FOR identifier IN SELECT key, value, value #>> '{}' AS spelt FROM jsonb_each(NEW.identifiers) ORDER BY key LOOP
    SELECT (array_agg(o.id ORDER BY o.created_seq, o.id))[1] INTO holder FROM organisations o
    WHERE organisation_identifier_keys(o.identifiers) @> ARRAY[identifier.key || '=' || organisation_identifier_spelling(identifier.spelt)] AND o.id <> NEW.id;
    IF holder IS NOT NULL THEN
      RAISE EXCEPTION 'organisation % has identifiers.% %, which organisation % holds; an identifier belongs to one organisation', NEW.id, identifier.key, identifier.value, holder
        USING ERRCODE = 'unique_violation', CONSTRAINT = 'organisations_identifier_once';
    END IF;
  END LOOP;
  RETURN NULL;
END $$;

-- 041's part for 039's clause, comparing spellings: what changed is the PARTITION BY.
CREATE OR REPLACE FUNCTION ledger_check_organisation_identifiers() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'organisation-identifier', i.id, format('identifiers.%s %s is held by organisation %s, registered before it; an identifier belongs to one organisation', i.kind, i.value, i.first_id)
  FROM (SELECT o.id, e.key AS kind, e.value, first_value(o.id) OVER (PARTITION BY e.key, organisation_identifier_spelling(e.value) ORDER BY o.created_seq, o.id) AS first_id
        FROM organisations o CROSS JOIN LATERAL jsonb_each_text(o.identifiers) AS e(key, value)) i
  WHERE i.id <> i.first_id
$$;

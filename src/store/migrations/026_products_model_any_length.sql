-- A product's model is unique, and may be 2,000 characters long (ledger/schemas.ts): up to
-- 8,000 bytes in UTF-8, 6,000 in Chinese. A btree index entry holds at most 2,704 bytes (a
-- third of a page), so the unique index of 001 refused a long model with 54000
-- (program_limit_exceeded) instead of storing it, failing the batch it came in.
--
-- An exclusion constraint over a hash index keeps the rule, no two products with equal
-- models (compared in full on a hash match, so no digest collision can refuse a new model),
-- and stores a 4-byte hash per model, whatever its length. A unique btree index on
-- md5(model) would do as well, but md5() fails where PostgreSQL runs in FIPS mode. A
-- duplicate is now refused with 23P01 (exclusion_violation) rather than 23505; the name is
-- the same, and ledger/refusals.ts answers both as a duplicate. Nothing reads products by
-- model, so no query loses an index.
ALTER TABLE products DROP CONSTRAINT products_model_key;
ALTER TABLE products ADD CONSTRAINT products_model_key EXCLUDE USING hash (model WITH =);

-- Units without a GPU UUID (most, at manifest time) need no entry in its unique index:
-- NULLs never collide anyway, and 100,000 of them cost a manifest import an index insert
-- each. Same name, so refusals still name the rule (ledger/refusals.ts).
ALTER TABLE units DROP CONSTRAINT units_gpu_uuid_key;
CREATE UNIQUE INDEX units_gpu_uuid_key ON units (gpu_uuid) WHERE gpu_uuid IS NOT NULL;

-- An allocation may be resized to 0 units (s21 calendar review, finding L2). There is no
-- command to close an allocation, and 001 held every allocation at 1 unit or more: a tranche
-- whose period had ended could give back all but one of its units, so every quarter of a
-- licence's quota stranded a unit, and a Q4 tranche of a licence's remaining units was
-- refused (invariant-1, "99 units unallocated"). allocation.resize now takes 0 (ledger/
-- schemas.ts); the floor stays what invariant 2 says, reserved + shipped, held by 001's other
-- CHECK on the row. allocation.create still takes 1 or more, in the schema alone: an
-- allocation of nothing made afresh says nothing, and an allocation resized to 0 still names
-- its recipient and period in the licence's history.
--
-- 1. The column's CHECK, relaxed from units > 0 to units >= 0. Every row already holds the
--    new rule, so there is nothing to find and stop on. Re-adding the CHECK reads the table
--    once under the ALTER's lock, which the migration holds to its commit in any case
--    (migrate.ts bounds its wait for it); allocations are thousands of rows, not millions.
--    The name is the one PostgreSQL gave 001's column CHECK, kept so that a refusal reads as
--    before.
ALTER TABLE allocations DROP CONSTRAINT allocations_units_check;
ALTER TABLE allocations ADD CONSTRAINT allocations_units_check CHECK (units >= 0);

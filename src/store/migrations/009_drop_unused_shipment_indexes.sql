-- No query reads shipments by allocation: these two indexes served the foreign keys that 004
-- replaced (allocations can no longer be deleted, so nothing looks shipments up by them),
-- and the full re-check (ledger_violations) aggregates every shipment anyway. Each booked
-- shipment paid two index inserts for them.
DROP INDEX shipments_export_allocation;
DROP INDEX shipments_import_allocation;

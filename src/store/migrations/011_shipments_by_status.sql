-- Shipments past booking by status, in creation order, for pages filtered by status
-- ("every cancelled shipment"). Without it such a page walked the shipments in creation order,
-- testing each: 7.7 ms for 10 cancelled among 40,000, growing with the table
-- (bench/experiments/tenant-pages.ts). Booked shipments are left out: a booking, the ledger's
-- busiest write, adds no entry, and the due-date index already holds them. A status change
-- adds one entry; it was never a heap-only update (status is in that index's predicate).
CREATE INDEX shipments_status_created ON shipments (status, created_seq) WHERE status <> 'booked';

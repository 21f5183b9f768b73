-- The read path pages by created_seq (the number in every id), per tenant.
CREATE INDEX organisations_created ON organisations (created_seq);
CREATE INDEX products_created ON products (created_seq);
CREATE INDEX licences_created ON licences (created_seq);
CREATE INDEX allocations_created ON allocations (created_seq);
CREATE INDEX allocations_recipient_created ON allocations (recipient_org_id, created_seq);
CREATE INDEX shipments_created ON shipments (created_seq);
CREATE INDEX shipments_exporter_created ON shipments (exporter_org_id, created_seq);
CREATE INDEX shipments_recipient_created ON shipments (recipient_org_id, created_seq);
CREATE INDEX sites_org_created ON sites (org_id, created_seq);

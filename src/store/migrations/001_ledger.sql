-- The ledger's state tables. Every invariant of DESIGN.md that a table can hold is held
-- here too, so that a bug in the TypeScript checks is stopped by the database.
-- Ids are text with a type prefix and the sequence number of the event that made them
-- (L-7, A-9, S-12): unique across the whole ledger, never reused.

CREATE TABLE organisations (
  id              text PRIMARY KEY,
  name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 2000),
  name_romanised  text CHECK (length(name_romanised) <= 2000),
  country         char(2) NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
  roles           text[] NOT NULL CHECK (roles <@ ARRAY['authority','exporter','recipient','auditor']::text[] AND cardinality(roles) > 0),
  identifiers     jsonb NOT NULL DEFAULT '{}'::jsonb,
  address         text,
  kyc_verified    boolean NOT NULL DEFAULT false,
  demo            boolean NOT NULL DEFAULT false,
  created_seq     bigint NOT NULL
);

CREATE TABLE tokens (
  id          text PRIMARY KEY,
  org_id      text NOT NULL REFERENCES organisations(id),
  role        text NOT NULL CHECK (role IN ('authority_admin','authority_officer','exporter','recipient','auditor')),
  label       text NOT NULL,
  -- SHA-256 of the secret; the secret itself is shown once and never stored.
  secret_hash bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
  created_at  timestamptz NOT NULL,
  revoked_at  timestamptz
);

CREATE TABLE products (
  id           text PRIMARY KEY,
  model        text NOT NULL UNIQUE,
  vendor       text NOT NULL,
  parameters   jsonb NOT NULL,
  eccn         text NOT NULL,
  demo         boolean NOT NULL DEFAULT false,
  created_seq  bigint NOT NULL
);

CREATE TABLE licences (
  id                text PRIMARY KEY,
  version           integer NOT NULL CHECK (version >= 1),
  reference         text NOT NULL,
  authority_org_id  text NOT NULL REFERENCES organisations(id),
  direction         text NOT NULL CHECK (direction IN ('export','import')),
  holder_org_id     text NOT NULL REFERENCES organisations(id),
  product_ids       text[] NOT NULL CHECK (cardinality(product_ids) > 0),
  origin            char(2) NOT NULL,
  destination       char(2) NOT NULL,
  authorised_units  integer NOT NULL CHECK (authorised_units > 0),
  value_minor       bigint CHECK (value_minor >= 0),
  currency          char(3),
  valid_from        timestamptz NOT NULL,
  valid_to          timestamptz NOT NULL,
  conditions        jsonb NOT NULL DEFAULT '[]'::jsonb,
  riders            jsonb NOT NULL DEFAULT '[]'::jsonb,
  status            text NOT NULL CHECK (status IN ('draft','issued','suspended','revoked','surrendered','expired','exhausted')),
  -- Invariant 1, held by the row itself: the sum of allocations (kept here by the
  -- ledger and re-checked by ledger_violations()) never exceeds the authorised units.
  allocated_units   integer NOT NULL DEFAULT 0 CHECK (allocated_units >= 0 AND allocated_units <= authorised_units),
  shipped_units     integer NOT NULL DEFAULT 0 CHECK (shipped_units >= 0 AND shipped_units <= authorised_units),
  demo              boolean NOT NULL DEFAULT false,
  created_seq       bigint NOT NULL,
  updated_seq       bigint NOT NULL,
  CHECK (valid_to > valid_from),
  CHECK ((value_minor IS NULL) = (currency IS NULL))
);
CREATE INDEX licences_holder ON licences (holder_org_id);

-- Named consignees, end users and suppliers of a licence.
CREATE TABLE licence_parties (
  licence_id  text NOT NULL REFERENCES licences(id),
  org_id      text NOT NULL REFERENCES organisations(id),
  role        text NOT NULL CHECK (role IN ('consignee','end_user','supplier')),
  PRIMARY KEY (licence_id, org_id, role)
);
CREATE INDEX licence_parties_org ON licence_parties (org_id);

-- Every version of every licence; amendments add rows, nothing is overwritten.
CREATE TABLE licence_versions (
  licence_id  text NOT NULL REFERENCES licences(id),
  version     integer NOT NULL,
  snapshot    jsonb NOT NULL,
  seq         bigint NOT NULL,
  PRIMARY KEY (licence_id, version)
);

CREATE TABLE allocations (
  id                text PRIMARY KEY,
  licence_id        text NOT NULL REFERENCES licences(id),
  recipient_org_id  text NOT NULL REFERENCES organisations(id),
  units             integer NOT NULL CHECK (units > 0),
  period_start      date,
  period_end        date,
  reserved_units    integer NOT NULL DEFAULT 0,
  shipped_units     integer NOT NULL DEFAULT 0,
  demo              boolean NOT NULL DEFAULT false,
  created_seq       bigint NOT NULL,
  -- Invariant 2, held by the row itself.
  CHECK (reserved_units >= 0 AND shipped_units >= 0 AND reserved_units + shipped_units <= units),
  CHECK ((period_start IS NULL) = (period_end IS NULL) AND (period_end IS NULL OR period_end >= period_start))
);
CREATE INDEX allocations_licence ON allocations (licence_id);
CREATE INDEX allocations_recipient ON allocations (recipient_org_id);

CREATE TABLE sites (
  id              text PRIMARY KEY,
  org_id          text NOT NULL REFERENCES organisations(id),
  name            text NOT NULL,
  province        text NOT NULL,
  city            text NOT NULL,
  latitude        double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
  longitude       double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
  capacity_units  integer NOT NULL CHECK (capacity_units > 0),
  deployed_units  integer NOT NULL DEFAULT 0 CHECK (deployed_units >= 0 AND deployed_units <= capacity_units),
  demo            boolean NOT NULL DEFAULT false,
  created_seq     bigint NOT NULL
);
CREATE INDEX sites_org ON sites (org_id);

CREATE TABLE shipments (
  id                    text PRIMARY KEY,
  exporter_org_id       text NOT NULL REFERENCES organisations(id),
  recipient_org_id      text NOT NULL REFERENCES organisations(id),
  product_id            text NOT NULL REFERENCES products(id),
  origin                char(2) NOT NULL,
  destination           char(2) NOT NULL,
  -- Invariant 2 (atomic reservation on every covering licence): a shipment row cannot
  -- exist without both its export-side and import-side allocation.
  export_allocation_id  text NOT NULL REFERENCES allocations(id),
  import_allocation_id  text NOT NULL REFERENCES allocations(id),
  units                 integer NOT NULL CHECK (units > 0),
  status                text NOT NULL CHECK (status IN ('booked','shipped','cleared','delivered','cancelled','expired')),
  booked_at             timestamptz NOT NULL,
  deadline              timestamptz NOT NULL CHECK (deadline > booked_at),
  reference             text,
  serial_count          integer NOT NULL DEFAULT 0,
  demo                  boolean NOT NULL DEFAULT false,
  created_seq           bigint NOT NULL,
  updated_seq           bigint NOT NULL,
  CHECK (serial_count >= 0 AND serial_count <= units),
  CHECK (export_allocation_id <> import_allocation_id)
);
CREATE INDEX shipments_exporter ON shipments (exporter_org_id, id);
CREATE INDEX shipments_recipient ON shipments (recipient_org_id, id);
CREATE INDEX shipments_due ON shipments (deadline) WHERE status = 'booked';
CREATE INDEX shipments_export_allocation ON shipments (export_allocation_id);
CREATE INDEX shipments_import_allocation ON shipments (import_allocation_id);

-- The manifest of each shipment. A row is live while its shipment is booked, shipped or
-- cleared. Invariant 4, held by the index: a serial is in at most one live shipment.
CREATE TABLE shipment_serials (
  shipment_id  text NOT NULL REFERENCES shipments(id),
  serial       text NOT NULL,
  live         boolean NOT NULL,
  PRIMARY KEY (shipment_id, serial)
);
CREATE UNIQUE INDEX shipment_serials_one_live ON shipment_serials (serial) WHERE live;

-- One row per physical unit: a single site column means deployed at most at one site
-- (invariant 4).
CREATE TABLE units (
  serial            text PRIMARY KEY,
  gpu_uuid          text UNIQUE,
  product_id        text NOT NULL REFERENCES products(id),
  recipient_org_id  text NOT NULL REFERENCES organisations(id),
  custody           text NOT NULL CHECK (custody IN ('licensed','in_transit','delivered','deployed','decommissioned','returned','lost')),
  shipment_id       text NOT NULL REFERENCES shipments(id),
  site_id           text REFERENCES sites(id),
  updated_seq       bigint NOT NULL,
  CHECK ((custody = 'deployed') = (site_id IS NOT NULL))
);
CREATE INDEX units_site ON units (site_id) WHERE site_id IS NOT NULL;
CREATE INDEX units_recipient ON units (recipient_org_id, serial);
CREATE INDEX units_shipment ON units (shipment_id);

-- The event stream: every committed change, in commit order, with its canonical bytes
-- (RFC 8785). seq is gapless from 0 and equals the event's leaf index in the log.
CREATE TABLE events (
  seq         bigint PRIMARY KEY CHECK (seq >= 0),
  at          timestamptz NOT NULL,
  kind        text NOT NULL,
  actor       text NOT NULL,
  subject_id  text,
  -- Organisations that may read this event besides the authority and auditors.
  org_ids     text[] NOT NULL,
  canonical   bytea NOT NULL
);
CREATE INDEX events_subject ON events (subject_id);
CREATE INDEX events_org_ids ON events USING gin (org_ids);

-- One row: the size of the event stream. Every ledger batch locks it first, so it is
-- also the mutex that orders batches from several server processes.
CREATE TABLE log_head (
  id    integer PRIMARY KEY CHECK (id = 1),
  size  bigint NOT NULL CHECK (size >= 0)
);
INSERT INTO log_head VALUES (1, 0);

-- Invariant 6: a key is answered once; a retry gets the stored answer.
CREATE TABLE idempotency_keys (
  scope         text NOT NULL,
  key           text NOT NULL,
  request_hash  bytea NOT NULL,
  status        integer NOT NULL,
  response      jsonb NOT NULL,
  created_at    timestamptz NOT NULL,
  PRIMARY KEY (scope, key)
);

-- Invariant 3, held again at commit: no shipment is booked under a licence that was not
-- issued, valid at booking time, and naming its product, route and recipient.
CREATE FUNCTION shipments_check_licences() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  SELECT n.id, l.id AS licence_id INTO bad
  FROM new_shipments n
  JOIN allocations a ON a.id IN (n.export_allocation_id, n.import_allocation_id)
  JOIN licences l ON l.id = a.licence_id
  WHERE l.status <> 'issued'
     OR n.booked_at < l.valid_from OR n.booked_at >= l.valid_to
     OR NOT (n.product_id = ANY (l.product_ids))
     OR l.origin <> n.origin OR l.destination <> n.destination
     OR a.recipient_org_id <> n.recipient_org_id
     OR (a.id = n.export_allocation_id AND (l.direction <> 'export' OR l.holder_org_id <> n.exporter_org_id))
     OR (a.id = n.import_allocation_id AND l.direction <> 'import')
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invariant 3: shipment % booked under licence % that does not cover it', bad.id, bad.licence_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER shipments_licences_valid AFTER INSERT ON shipments
  REFERENCING NEW TABLE AS new_shipments FOR EACH STATEMENT EXECUTE FUNCTION shipments_check_licences();

-- Invariant 1, held again at commit: the licence's allocated_units is the true sum.
CREATE FUNCTION allocations_check_sum() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  SELECT l.id, l.allocated_units, coalesce(sum(a.units), 0) AS total INTO bad
  FROM licences l LEFT JOIN allocations a ON a.licence_id = l.id
  WHERE l.id IN (SELECT licence_id FROM changed_allocations)
  GROUP BY l.id, l.allocated_units, l.authorised_units
  HAVING coalesce(sum(a.units), 0) <> l.allocated_units OR coalesce(sum(a.units), 0) > l.authorised_units
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invariant 1: licence % allocations sum to % but the licence records %', bad.id, bad.total, bad.allocated_units
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER allocations_sum_insert AFTER INSERT ON allocations
  REFERENCING NEW TABLE AS changed_allocations FOR EACH STATEMENT EXECUTE FUNCTION allocations_check_sum();

-- A full re-check of every invariant from the state tables: tests run it after loads and
-- crashes, `chipledger check` runs it for operators. Each row is one violation.
CREATE FUNCTION ledger_violations() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT 'invariant-1', l.id, format('allocations %s, recorded %s, authorised %s', coalesce(s.total, 0), l.allocated_units, l.authorised_units)
  FROM licences l LEFT JOIN (SELECT licence_id, sum(units) AS total FROM allocations GROUP BY licence_id) s ON s.licence_id = l.id
  WHERE coalesce(s.total, 0) <> l.allocated_units OR coalesce(s.total, 0) > l.authorised_units
  UNION ALL
  SELECT 'invariant-2', a.id, format('reserved %s (shipments say %s), shipped %s (shipments say %s), units %s',
         a.reserved_units, coalesce(r.reserved, 0), a.shipped_units, coalesce(r.shipped, 0), a.units)
  FROM allocations a LEFT JOIN (
    SELECT allocation_id,
           sum(units) FILTER (WHERE status = 'booked') AS reserved,
           sum(units) FILTER (WHERE status IN ('shipped','cleared','delivered')) AS shipped
    FROM (SELECT export_allocation_id AS allocation_id, units, status FROM shipments
          UNION ALL SELECT import_allocation_id, units, status FROM shipments) both_sides
    GROUP BY allocation_id) r ON r.allocation_id = a.id
  WHERE a.reserved_units <> coalesce(r.reserved, 0) OR a.shipped_units <> coalesce(r.shipped, 0)
     OR a.reserved_units + a.shipped_units > a.units
  UNION ALL
  SELECT 'invariant-2', l.id, format('licence shipped %s, allocations shipped %s', l.shipped_units, coalesce(s.shipped, 0))
  FROM licences l LEFT JOIN (SELECT licence_id, sum(shipped_units) AS shipped FROM allocations GROUP BY licence_id) s ON s.licence_id = l.id
  WHERE l.shipped_units <> coalesce(s.shipped, 0)
  UNION ALL
  SELECT 'invariant-4', ss.serial, format('live in %s shipments', count(*))
  FROM shipment_serials ss WHERE ss.live GROUP BY ss.serial HAVING count(*) > 1
  UNION ALL
  SELECT 'invariant-4', ss.shipment_id, format('serial %s is live but its shipment is %s', ss.serial, s.status)
  FROM shipment_serials ss JOIN shipments s ON s.id = ss.shipment_id
  WHERE ss.live <> (s.status IN ('booked','shipped','cleared'))
  UNION ALL
  SELECT 'invariant-4', s.id, format('serial_count %s, manifest rows %s', s.serial_count, coalesce(m.n, 0))
  FROM shipments s LEFT JOIN (SELECT shipment_id, count(*) AS n FROM shipment_serials GROUP BY shipment_id) m ON m.shipment_id = s.id
  WHERE s.serial_count <> coalesce(m.n, 0)
  UNION ALL
  SELECT 'invariant-4', st.id, format('deployed_units %s, units at site %s', st.deployed_units, coalesce(u.n, 0))
  FROM sites st LEFT JOIN (SELECT site_id, count(*) AS n FROM units WHERE site_id IS NOT NULL GROUP BY site_id) u ON u.site_id = st.id
  WHERE st.deployed_units <> coalesce(u.n, 0)
  UNION ALL
  SELECT 'invariant-5', 'events', format('log size %s, events %s, max seq %s', h.size, e.n, e.max_seq)
  FROM log_head h, (SELECT count(*) AS n, coalesce(max(seq), -1) AS max_seq FROM events) e
  WHERE h.size <> e.n OR e.max_seq <> h.size - 1
$$;

CREATE TRIGGER allocations_sum_update AFTER UPDATE ON allocations
  REFERENCING NEW TABLE AS changed_allocations FOR EACH STATEMENT EXECUTE FUNCTION allocations_check_sum();

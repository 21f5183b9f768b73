-- Sites have a country, and units are deployed only in the country they were imported into
-- (s37, from s36's domain review). A site had a province and a city but no country, so
-- nothing stopped units imported into CN under MOFCOM's licence from being reported deployed
-- at the same company's data centre abroad: a re-export, which needs a licence of its own,
-- recorded as a deployment. Now each site has a country (site.register's input, or the
-- registering organisation's), and units.deploy refuses a site outside the country of the
-- unit's shipment (its destination, which its import licence names: invariant 3), rule
-- deployment-destination (ledger/handlers/units.ts). The database holds the same.

-- 1. The column. Every site so far was registered without one and taken to be in its
--    organisation's country (what site.register's input gives when it states none, so that a
--    replay of those events makes the same rows).
ALTER TABLE sites ADD COLUMN country text;
UPDATE sites st SET country = o.country FROM organisations o WHERE o.id = st.org_id;
ALTER TABLE sites ALTER COLUMN country SET NOT NULL,
  ADD CONSTRAINT sites_country_check CHECK (country ~ '^[A-Z]{2}$');

-- 2. It is part of what site.register made, which only the count of deployed units outlives
--    (063's trigger, with the country).
DROP TRIGGER sites_keep_registration ON sites;
CREATE TRIGGER sites_keep_registration BEFORE UPDATE ON sites FOR EACH ROW
  WHEN ((NEW.id, NEW.name, NEW.province, NEW.city, NEW.country, NEW.latitude, NEW.longitude, NEW.capacity_units, NEW.demo, NEW.created_seq)
        IS DISTINCT FROM (OLD.id, OLD.name, OLD.province, OLD.city, OLD.country, OLD.latitude, OLD.longitude, OLD.capacity_units, OLD.demo, OLD.created_seq))
  EXECUTE FUNCTION keep_registration('site', 'site.register', 'only its count of deployed units changes, as units are deployed there and moved away');

-- 3. A unit at a site is in its shipment's destination, when it is written (020's check, which
--    already joins the site and the shipment) and in the re-check (020's clauses).
CREATE OR REPLACE FUNCTION units_check_sites() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  -- Listing and shipping (100,000 rows a statement) put no unit at a site: one pass over
  -- the rows, with nothing joined.
  IF NOT EXISTS (SELECT 1 FROM new_units WHERE site_id IS NOT NULL) THEN
    RETURN NULL;
  END IF;
  SELECT n.serial, n.recipient_org_id, n.shipment_id, n.site_id, s.status, s.destination, st.org_id AS site_owner, st.country INTO bad
  FROM new_units n JOIN sites st ON st.id = n.site_id JOIN shipments s ON s.id = n.shipment_id
  WHERE n.site_id IS NOT NULL AND (s.status <> 'delivered' OR st.org_id <> n.recipient_org_id OR st.country <> s.destination)
  LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF bad.status <> 'delivered' THEN
    RAISE EXCEPTION 'unit % is at site %, but its shipment % is %; only delivered units can be deployed', bad.serial, bad.site_id, bad.shipment_id, bad.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_check_sites';
  END IF;
  IF bad.site_owner <> bad.recipient_org_id THEN
    RAISE EXCEPTION 'unit % is %''s; site % is not', bad.serial, bad.recipient_org_id, bad.site_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'units_check_sites';
  END IF;
  RAISE EXCEPTION 'unit % was imported into % (shipment %); site % is in %: a unit is deployed only in the country it was imported into', bad.serial, bad.destination, bad.shipment_id, bad.site_id, bad.country
    USING ERRCODE = 'check_violation', CONSTRAINT = 'units_check_sites';
END $$;

CREATE OR REPLACE FUNCTION ledger_check_unit_owners() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  -- 020's clauses.
  SELECT 'invariant-4', u.serial, format('deployed at site %s of %s, but the unit is %s''s', u.site_id, st.org_id, u.recipient_org_id)
  FROM units u JOIN sites st ON st.id = u.site_id
  WHERE st.org_id <> u.recipient_org_id
  UNION ALL
  SELECT 'invariant-4', u.serial,
         CASE WHEN s.recipient_org_id <> u.recipient_org_id
              THEN format('the unit is %s''s, but its shipment %s is for %s', u.recipient_org_id, s.id, s.recipient_org_id)
              ELSE format('the unit is %s, but its shipment %s is %s', u.custody, s.id, s.status) END
  FROM units u JOIN shipments s ON s.id = u.shipment_id
  WHERE s.recipient_org_id <> u.recipient_org_id
     OR (u.custody IN ('delivered', 'deployed') AND s.status <> 'delivered')
  UNION ALL
  -- 072's: deployed in the country it was imported into.
  SELECT 'invariant-3', u.serial, format('deployed at site %s in %s, but it was imported into %s (shipment %s)', st.id, st.country, s.destination, s.id)
  FROM units u JOIN sites st ON st.id = u.site_id JOIN shipments s ON s.id = u.shipment_id
  WHERE st.country <> s.destination
$$;

-- Reference rows keep what their registration made them, and each organisation's KYC marks are
-- held to the events that set them (s29).
--
-- The writer role may update organisations, products and sites, as the ledger does: only an
-- organisation's KYC marks (organisation.set_kyc) and a site's count of deployed units
-- (units.deploy and its moves) ever change, and a product never does. Yet whoever held the
-- writer's connection could make an exporter an authority, move a recipient to another
-- country, give the H200 the ECCN of an uncontrolled part or another datasheet (what the
-- classification and every licence's product were judged on), or double a data centre's
-- capacity, and neither the triggers nor `chipledger check` said a word.
--
-- 1. The registration's columns never change: a trigger a row, as tokens_keep_grant (055).
--    Who may change them by hand is the owner, triggers off, as for every other record.
CREATE FUNCTION keep_registration() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% % keeps what % made it; %', TG_ARGV[0], OLD.id, TG_ARGV[1], TG_ARGV[2]
    USING ERRCODE = 'restrict_violation', CONSTRAINT = TG_TABLE_NAME || '_keep_registration', TABLE = TG_TABLE_NAME;
END $$;
CREATE TRIGGER organisations_keep_registration BEFORE UPDATE ON organisations FOR EACH ROW
  WHEN ((NEW.id, NEW.name, NEW.name_romanised, NEW.country, NEW.roles, NEW.identifiers, NEW.address, NEW.demo, NEW.created_seq)
        IS DISTINCT FROM (OLD.id, OLD.name, OLD.name_romanised, OLD.country, OLD.roles, OLD.identifiers, OLD.address, OLD.demo, OLD.created_seq))
  EXECUTE FUNCTION keep_registration('organisation', 'organisation.register', 'only its KYC marks change, by organisation.set_kyc');
CREATE TRIGGER products_keep_registration BEFORE UPDATE ON products FOR EACH ROW
  WHEN (OLD.* IS DISTINCT FROM NEW.*)
  EXECUTE FUNCTION keep_registration('product', 'product.register', 'nothing changes it (register the part again under its own model)');
-- A site's owner has its own trigger and message (020's sites_keep_owner).
CREATE TRIGGER sites_keep_registration BEFORE UPDATE ON sites FOR EACH ROW
  WHEN ((NEW.id, NEW.name, NEW.province, NEW.city, NEW.latitude, NEW.longitude, NEW.capacity_units, NEW.demo, NEW.created_seq)
        IS DISTINCT FROM (OLD.id, OLD.name, OLD.province, OLD.city, OLD.latitude, OLD.longitude, OLD.capacity_units, OLD.demo, OLD.created_seq))
  EXECUTE FUNCTION keep_registration('site', 'site.register', 'only its count of deployed units changes, as units are deployed there and moved away');

-- 2. The re-check's part event-state holds each organisation's KYC marks to its
--    organisation.set_kyc events, the newest of each authority deciding, as migration 015
--    rebuilt the marks from them: the organisation is input.organisationId; the authority is
--    effects.authorityId (every event since 015), or for events before it the organisation of
--    the event's actor (its token's, or the body's actor.org), counted only where that is an
--    authority. A mark the writer added or took away by UPDATE is named with the event that
--    says otherwise. The events are parsed as in 062 (a fast pass, then event by event where
--    some bytes are not JSON); they are few, one an organisation and authority at most a review.
CREATE FUNCTION ledger_kyc_violations(careful boolean) RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH parsed AS MATERIALIZED (
    SELECT e.seq, t.org_id AS token_org, m.input, m.effects, m.actor
    FROM events e
    LEFT JOIN tokens t ON t.id = e.actor
    CROSS JOIN LATERAL (SELECT CASE WHEN careful THEN NULL ELSE convert_from(e.canonical, 'UTF8')::json END AS body) j
    CROSS JOIN LATERAL (SELECT
        CASE WHEN careful THEN ledger_event_member(e.canonical, 'input') ELSE j.body -> 'input' END AS input,
        CASE WHEN careful THEN ledger_event_member(e.canonical, 'effects') ELSE j.body -> 'effects' END AS effects,
        CASE WHEN careful THEN ledger_event_member(e.canonical, 'actor') ELSE j.body -> 'actor' END AS actor) m
    WHERE e.kind = 'organisation.set_kyc'
  ),
  decided AS (
    SELECT DISTINCT ON (target.id, authority.id) target.id AS org_id, authority.id AS authority_id, p.seq,
           (p.input ->> 'verified') = 'true' AS verified
    FROM parsed p
    JOIN organisations target ON target.id = p.input ->> 'organisationId'
    JOIN organisations authority ON authority.id = coalesce(p.effects ->> 'authorityId', p.token_org, p.actor ->> 'org')
                                AND 'authority' = ANY (authority.roles)
    ORDER BY target.id, authority.id, p.seq DESC
  ),
  marked AS (
    SELECT o.id AS org_id, m.authority_id, count(*) AS times
    FROM organisations o CROSS JOIN LATERAL unnest(o.kyc_verified_by) AS m(authority_id)
    GROUP BY 1, 2
  )
  SELECT 'event-state', coalesce(m.org_id, d.org_id),
    CASE
      WHEN m.times > 1 THEN format('the organisation lists %s among the authorities that verified its KYC %s times', m.authority_id, m.times)
      WHEN d.org_id IS NULL THEN format('the organisation is marked KYC-verified by %s, but no organisation.set_kyc event of that authority verified it', m.authority_id)
      WHEN m.org_id IS NULL THEN format('the organisation is not marked KYC-verified by %s, but that authority''s newest organisation.set_kyc event for it, %s, verified it', d.authority_id, d.seq)
      ELSE format('the organisation is marked KYC-verified by %s, but that authority''s newest organisation.set_kyc event for it, %s, withdrew it', m.authority_id, d.seq)
    END
  FROM marked m
  FULL JOIN decided d ON d.org_id = m.org_id AND d.authority_id = m.authority_id
  WHERE m.times > 1 OR (m.org_id IS NULL AND d.verified) OR (m.org_id IS NOT NULL AND NOT coalesce(d.verified, false))
  ORDER BY 2, 3
$$;

CREATE FUNCTION ledger_check_kyc_events() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  SELECT * FROM ledger_parsing_events_check('ledger_kyc_violations')
$$;
INSERT INTO ledger_checks (position, part) VALUES (340, 'ledger_check_kyc_events');

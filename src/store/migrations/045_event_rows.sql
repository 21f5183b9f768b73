-- The state tables hold the rows their events made, and no others (s17, backup review).
--
-- The re-check compared the state tables with each other and the events with the log, but
-- never the one with the other: a database holding every event and none of the state passed
-- it. A restore does that: schema, then data only, as a role that may not use
-- --disable-triggers, loads events, tiles and the log's head while every state table's COPY
-- fails on its triggers. `chipledger check` said every invariant held, serve started and
-- signed, and `organisation register` registered again a USCC that an organisation of the
-- log (now of the log only) held: the refusal reads the table, which had lost it.
--
-- 1. The part ledger_check_event_rows: for each kind of event that makes a row, the row that
--    event made (its id is the event's subject, its created_seq the event's seq), and for each
--    row, the event that made it. The kinds and their tables (ledger/handlers: a handler that
--    puts a row with created_seq, or a token):
--      organisation.register → organisations   product.register → products
--      licence.create → licences                allocation.create → allocations
--      shipment.book → shipments                site.register → sites
--      token.create → tokens
--    Every such row is written by the ledger in the batch that writes its event (store/
--    batch-writes.ts): the demo loader and the admin commands (`organisation register`,
--    `token create`, as the system actor) submit commands like any client, and no migration
--    writes events or these rows. So a row without its event, or an event without its row,
--    was written or lost outside the ledger. Units and licence versions are not compared:
--    a unit is made by a manifest and keeps no created_seq, and a licence's versions are
--    compared with it by its own part (030).
--    Tokens keep no created_seq: their id carries the seq (TOK-<seq>, ledger/handler.ts
--    newId), as every id here does; the other tables are compared by both.
--
--    One pass over the events, one over each table, and one hash full join of the two on
--    (seq, kind, id): over 150,000 events of which 100,000 bookings, 0.2–0.3 s on a 2-core
--    machine (about 1.5 µs an event; the event-readers part takes 0.8 s over the same log;
--    constraints-045.test.ts checks the plan). No index on events' kind: every event written
--    would pay for it, and the re-check already reads every event (event_times, event_readers).
--    Only the few unmatched rows look their seq up again (events' primary key), to say what
--    event, if any, that seq is.
CREATE FUNCTION ledger_check_event_rows() RETURNS TABLE (invariant text, subject text, detail text) LANGUAGE sql STABLE AS $$
  WITH made AS (
    SELECT 'organisation.register'::text AS kind, 'organisations'::text AS held_in, o.id, o.created_seq AS seq FROM organisations o
    UNION ALL SELECT 'product.register', 'products', p.id, p.created_seq FROM products p
    UNION ALL SELECT 'licence.create', 'licences', l.id, l.created_seq FROM licences l
    UNION ALL SELECT 'allocation.create', 'allocations', a.id, a.created_seq FROM allocations a
    UNION ALL SELECT 'shipment.book', 'shipments', s.id, s.created_seq FROM shipments s
    UNION ALL SELECT 'site.register', 'sites', st.id, st.created_seq FROM sites st
    -- An id that is not TOK-<digits> names no seq, so no event: the row is named.
    UNION ALL SELECT 'token.create', 'tokens', t.id, CASE WHEN t.id ~ '^TOK-[0-9]{1,18}$' THEN substr(t.id, 5)::bigint END FROM tokens t
  ),
  making AS (
    SELECT e.seq, e.kind, e.subject_id,
           CASE e.kind WHEN 'organisation.register' THEN 'organisations' WHEN 'product.register' THEN 'products'
                       WHEN 'licence.create' THEN 'licences' WHEN 'allocation.create' THEN 'allocations'
                       WHEN 'shipment.book' THEN 'shipments' WHEN 'site.register' THEN 'sites' ELSE 'tokens' END AS held_in
    FROM events e
    WHERE e.kind IN ('organisation.register', 'product.register', 'licence.create', 'allocation.create', 'shipment.book', 'site.register', 'token.create')
  ),
  unmatched AS (
    SELECT n.seq AS event_seq, n.kind AS event_kind, n.subject_id, n.held_in AS event_held_in,
           m.seq AS row_seq, m.kind AS row_kind, m.id AS row_id, m.held_in AS row_held_in
    FROM making n FULL JOIN made m ON m.seq = n.seq AND m.kind = n.kind AND m.id = n.subject_id
    WHERE n.seq IS NULL OR m.id IS NULL
  )
  SELECT 'event-rows', 'event ' || u.event_seq, format('%s made %s, which is not in %s', u.event_kind, coalesce(u.subject_id, '(no subject)'), u.event_held_in)
  FROM unmatched u WHERE u.event_seq IS NOT NULL
  UNION ALL
  SELECT 'event-rows', u.row_id,
         CASE WHEN u.row_seq IS NULL THEN format('%s holds %s, whose id is not TOK-<seq>, so it names no event', u.row_held_in, u.row_id)
              WHEN e.seq IS NULL THEN format('%s holds %s, made by event %s, but there is no event %s', u.row_held_in, u.row_id, u.row_seq, u.row_seq)
              ELSE format('%s holds %s, made by event %s, but event %s is %s of %s, not %s of it', u.row_held_in, u.row_id, u.row_seq, u.row_seq,
                          e.kind, coalesce(e.subject_id, '(no subject)'), u.row_kind) END
  FROM unmatched u LEFT JOIN events e ON e.seq = u.row_seq
  WHERE u.event_seq IS NULL
$$;
INSERT INTO ledger_checks (position, part) VALUES (200, 'ledger_check_event_rows');

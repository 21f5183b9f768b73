-- A token is made only with its token.create event (s26, the review that attacked the database
-- with the writer's connection alone).
--
-- A token row is a credential: the API takes it at once. One INSERT into tokens, with a secret's
-- hash of the writer's choosing, gave an authority admin's token that served requests; only
-- `chipledger check` named it afterwards (045's part event-rows: no event made it). Now the
-- transaction that inserts a token must hold the event that made it: event TOK-<seq>'s seq, of
-- kind token.create and subject that id, as the ledger writes both in one batch. Checked at
-- commit (deferred), since a batch writes its events and its rows in an order of its own.
-- Forging a token now means forging its event too, and with it the log's leaf, tiles and head,
-- which the checkpointer and the start-up check hold to the stored tree. Tokens are made
-- rarely: one look-up by primary key each.
CREATE FUNCTION tokens_made_by_their_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  made_by bigint;
BEGIN
  IF NEW.id ~ '^TOK-[0-9]{1,18}$' THEN
    made_by := substr(NEW.id, 5)::bigint;
    IF EXISTS (SELECT 1 FROM events e WHERE e.seq = made_by AND e.kind = 'token.create' AND e.subject_id = NEW.id) THEN
      RETURN NULL;
    END IF;
  END IF;
  RAISE EXCEPTION 'token % was not made by its token.create event (event % of kind token.create with subject %, in the same transaction): tokens are made through the ledger only',
    NEW.id, coalesce(made_by::text, '(none: the id is not TOK-<seq>)'), NEW.id
    USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'tokens_made_by_their_event', TABLE = 'tokens';
END $$;
CREATE CONSTRAINT TRIGGER tokens_made_by_their_event AFTER INSERT ON tokens
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tokens_made_by_their_event();

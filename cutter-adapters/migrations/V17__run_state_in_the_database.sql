-- V17: live run records and reports in the database (issue 18).
--
-- Until now a live run's record (its state, phases, accepted approvals, facts) lived in
-- `runs/<id>/state.json` on the machine that started it, and its reports only in that
-- machine's reports folder: another machine could not resume it, and losing the machine lost
-- the only record of where the run stood. From here on:
--
--   * `run_state` holds the current record of every live run begun here (`run`), as JSON with
--     a revision number; `run_state_history` keeps every saved revision (append-only), so the
--     record's history is evidence, not a file that can be rewritten;
--   * the exec role writes them only through `fn_run_state_save`, which refuses a record of a
--     run never begun here, a revision that is not the current one plus one (optimistic
--     concurrency: two processes that both think they drive the run cannot both save), and a
--     record whose identity disagrees with the run's row (run id, document, mode, knowledge
--     base, source pin, payload, protection): a record can be saved only as the run it is;
--   * `run_report` keeps every report a live run wrote (name, sha256, body), append-only,
--     written through `fn_run_report_store`, which recomputes the sha256 of the body.
--
-- What the database cannot check: whether the state a record claims (its phases, its facts)
-- is true. Those are the orchestrator's; every effect they describe (units, approvals,
-- enactment, locks) is itself guarded by V10–V14, so a lying record cannot make the database
-- write anything its own guards refuse.
--
-- Attacks on this are tested in cutter-adapters/tests/pg_state_attacks.rs.

-- ---------------------------------------------------------------------------------------------
-- 1. Run records.

CREATE TABLE cutter_governance.run_state (
    run_id   text PRIMARY KEY REFERENCES cutter_governance.run (run_id),
    revision integer NOT NULL CHECK (revision >= 1),
    record   jsonb NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    db_user  text NOT NULL DEFAULT session_user,
    actor    text NOT NULL CHECK (btrim(actor) <> '')
);
REVOKE ALL ON cutter_governance.run_state FROM PUBLIC;

CREATE TABLE cutter_governance.run_state_history (
    run_id   text NOT NULL REFERENCES cutter_governance.run (run_id),
    revision integer NOT NULL CHECK (revision >= 1),
    record   jsonb NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    db_user  text NOT NULL DEFAULT session_user,
    actor    text NOT NULL CHECK (btrim(actor) <> ''),
    PRIMARY KEY (run_id, revision)
);
REVOKE ALL ON cutter_governance.run_state_history FROM PUBLIC;

-- The current record moves one revision at a time and stays with its run; it is never
-- deleted. (The exec role cannot write the table at all; this guards the owner too.)
CREATE FUNCTION cutter_governance.tg_run_state_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('run %s: a run''s record is never deleted', OLD.run_id);
    END IF;
    IF NEW.run_id IS DISTINCT FROM OLD.run_id OR NEW.revision IS DISTINCT FROM OLD.revision + 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('run %s: a record moves from revision %s to %s only', OLD.run_id, OLD.revision, OLD.revision + 1);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER run_state_guard BEFORE UPDATE OR DELETE ON cutter_governance.run_state
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_run_state_guard();
CREATE TRIGGER run_state_no_truncate BEFORE TRUNCATE ON cutter_governance.run_state
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER run_state_history_append_only BEFORE UPDATE OR DELETE ON cutter_governance.run_state_history
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER run_state_history_no_truncate BEFORE TRUNCATE ON cutter_governance.run_state_history
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- Saves revision p_revision of a run's record: 1 for the first save, else the current
-- revision plus one. The record must be the run's: its id, document, mode, knowledge base,
-- source pin and payload agree with the run's row (a pin or payload not yet in the record is
-- allowed: a record saved between the database's commit and the process's save catches up at
-- the next save). Returns nothing; a refusal says why.
CREATE FUNCTION cutter_governance.fn_run_state_save(p_run_id text, p_revision integer, p_record jsonb, p_actor text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v_current integer;
    r jsonb := p_record;
BEGIN
    SELECT * INTO v_run FROM cutter_governance.run x WHERE x.run_id = p_run_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s was never begun in this knowledge base; its record stays where it was started', p_run_id);
    END IF;
    IF coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = format('save run %s: say who acts (actor)', p_run_id);
    END IF;
    IF r IS NULL OR jsonb_typeof(r) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = format('save run %s: the record is not a JSON object', p_run_id);
    END IF;
    IF r->>'run_id' IS DISTINCT FROM p_run_id
       OR r->>'document_id' IS DISTINCT FROM v_run.document_id
       OR r->>'mode' IS DISTINCT FROM 'live' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('save run %s: the record names run %s, document %s, mode %s; the run is %s of document %s, live',
                             p_run_id, coalesce(r->>'run_id', '(none)'), coalesce(r->>'document_id', '(none)'),
                             coalesce(r->>'mode', '(none)'), p_run_id, v_run.document_id);
    END IF;
    IF jsonb_typeof(r->'knowledge_base') = 'object'
       AND r->'knowledge_base'->>'kb_id' IS DISTINCT FROM v_run.kb_id::text THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('save run %s: the record names knowledge base %s, the run began in %s',
                             p_run_id, coalesce(r->'knowledge_base'->>'kb_id', '(none)'), v_run.kb_id);
    END IF;
    -- A protected run stays protected (its SG_1 needs the protected allowance); a record may
    -- say protected when the registry does not (the config asked for it).
    IF v_run.protected AND (r->'protected') IS DISTINCT FROM 'true'::jsonb THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('save run %s: the record says the run is not protected; its document was protected when it began', p_run_id);
    END IF;
    IF r->>'expected_source_sha256' IS NOT NULL AND r->>'expected_source_sha256' <> v_run.source_sha256 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('save run %s: the record pins source %s, the run''s registered pin is %s',
                             p_run_id, r->>'expected_source_sha256', v_run.source_sha256);
    END IF;
    IF r->>'payload_sha256' IS NOT NULL AND v_run.payload_sha256 IS NOT NULL
       AND r->>'payload_sha256' <> v_run.payload_sha256 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('save run %s: the record''s payload is %s, the run recorded %s',
                             p_run_id, r->>'payload_sha256', v_run.payload_sha256);
    END IF;
    SELECT s.revision INTO v_current FROM cutter_governance.run_state s
    WHERE s.run_id = p_run_id FOR UPDATE;
    IF p_revision IS DISTINCT FROM coalesce(v_current, 0) + 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK006',
            MESSAGE = format('save run %s: revision %s is not the next one (the record is at revision %s); another process saved the run meanwhile — read it again',
                             p_run_id, coalesce(p_revision::text, '(none)'), coalesce(v_current, 0));
    END IF;
    IF v_current IS NULL THEN
        -- Two first saves racing: the primary key refuses the second (a unique violation).
        INSERT INTO cutter_governance.run_state (run_id, revision, record, actor)
        VALUES (p_run_id, p_revision, r, p_actor);
    ELSE
        UPDATE cutter_governance.run_state
        SET revision = p_revision, record = r, saved_at = clock_timestamp(), db_user = session_user,
            actor = p_actor
        WHERE run_id = p_run_id;
    END IF;
    INSERT INTO cutter_governance.run_state_history (run_id, revision, record, actor)
    VALUES (p_run_id, p_revision, r, p_actor);
END
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_run_state_save(text, integer, jsonb, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 2. Reports.

-- A report is stored again only when its body changed (a review page regenerated, a report
-- superseded): the latest of a name is its current text, the earlier ones stay.
CREATE TABLE cutter_governance.run_report (
    run_id    text NOT NULL REFERENCES cutter_governance.run (run_id),
    name      text NOT NULL CHECK (name ~ '^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$' AND length(name) <= 255),
    sha256    text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    body      bytea NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    db_user   text NOT NULL DEFAULT session_user,
    PRIMARY KEY (run_id, name, sha256),
    CHECK (sha256 = encode(sha256(body), 'hex'))
);
REVOKE ALL ON cutter_governance.run_report FROM PUBLIC;
CREATE TRIGGER run_report_append_only BEFORE UPDATE OR DELETE ON cutter_governance.run_report
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER run_report_no_truncate BEFORE TRUNCATE ON cutter_governance.run_report
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- Stores a report of a run begun here; the sha256 given must be the body's. Returns whether
-- it was new (the same body under the same name is stored once).
CREATE FUNCTION cutter_governance.fn_run_report_store(p_run_id text, p_name text, p_sha256 text, p_body bytea)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_stored integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.run x WHERE x.run_id = p_run_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s was never begun in this knowledge base; its reports stay where it was started', p_run_id);
    END IF;
    IF p_body IS NULL OR p_sha256 IS DISTINCT FROM encode(sha256(p_body), 'hex') THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('store report %s of run %s: sha256 %s is not the body''s', p_name, p_run_id, coalesce(p_sha256, '(none)'));
    END IF;
    INSERT INTO cutter_governance.run_report (run_id, name, sha256, body)
    VALUES (p_run_id, p_name, p_sha256, p_body)
    ON CONFLICT (run_id, name, sha256) DO NOTHING;
    GET DIAGNOSTICS v_stored = ROW_COUNT;
    RETURN v_stored = 1;
END
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_run_report_store(text, text, text, bytea) FROM PUBLIC;

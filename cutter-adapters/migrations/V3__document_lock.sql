-- V3: the per-document lock of live runs lives in the database, so two processes or machines
-- cutting the same document cannot both pass `mark`. A claim survives the pauses between the
-- gates (it is a row, not a session) and is released by closeout, void or revert. Every claim,
-- release and forced clear is logged.

CREATE TABLE cutter_governance.document_lock (
    document_id text PRIMARY KEY REFERENCES cutter_governance.source_registry (document_id),
    run_id      text NOT NULL CHECK (run_id <> ''),
    claimed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE cutter_governance.document_lock_log (
    log_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id text NOT NULL,
    run_id      text NOT NULL,
    action      text NOT NULL CHECK (action IN ('claimed', 'released', 'cleared')),
    reason      text,
    logged_by   text NOT NULL DEFAULT session_user,
    logged_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TRIGGER document_lock_log_append_only BEFORE UPDATE OR DELETE ON cutter_governance.document_lock_log
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();

-- Claims the document for the run and returns the holder: the run itself if the claim
-- succeeded (or it already held it), else the run that holds it. Atomic through the primary
-- key: of any number of concurrent claims exactly one inserts. Needs no arming: `mark` runs
-- before the first gate, and a claim writes no unit.
CREATE FUNCTION cutter_governance.fn_lock_document(p_document_id text, p_run_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_holder text;
BEGIN
    INSERT INTO cutter_governance.document_lock (document_id, run_id)
    VALUES (p_document_id, p_run_id)
    ON CONFLICT (document_id) DO NOTHING;
    IF FOUND THEN
        INSERT INTO cutter_governance.document_lock_log (document_id, run_id, action)
        VALUES (p_document_id, p_run_id, 'claimed');
        RETURN p_run_id;
    END IF;
    SELECT run_id INTO v_holder FROM cutter_governance.document_lock WHERE document_id = p_document_id;
    RETURN v_holder;
END
$$;

-- Releases the run's claim (idempotent; another run's claim is left alone).
CREATE FUNCTION cutter_governance.fn_unlock_document(p_document_id text, p_run_id text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM cutter_governance.document_lock
    WHERE document_id = p_document_id AND run_id = p_run_id;
    IF FOUND THEN
        INSERT INTO cutter_governance.document_lock_log (document_id, run_id, action)
        VALUES (p_document_id, p_run_id, 'released');
    END IF;
END
$$;

-- V7: the document lock is enforced where the units are written, not only at `mark`.
--
-- A run may write a document's units (insert, enact, retire, delete drafts) only while it
-- holds that document's lock. Checked per statement over the changed rows (transition
-- tables), so a bulk insert pays one join, not a lookup per row, and a violation rolls the
-- whole statement back. Every unit row names the run that created it, and only that run ever
-- changes it, so the check is: the lock of the row's document is held by its creating run.
-- Also: a lock claim that races with a release retries instead of returning nothing; a
-- repeated verify result must equal the recorded one in every column; and the governance
-- tables refuse TRUNCATE like the unit tables (the append-only triggers do not fire on it).

CREATE FUNCTION cutter_governance.tg_require_document_lock() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_doc text;
    v_run text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT o.document_id, o.created_by_run INTO v_doc, v_run FROM old_rows o
        WHERE NOT EXISTS (SELECT 1 FROM cutter_governance.document_lock l
                          WHERE l.document_id = o.document_id AND l.run_id = o.created_by_run)
        LIMIT 1;
    ELSE
        SELECT n.document_id, n.created_by_run INTO v_doc, v_run FROM new_rows n
        WHERE NOT EXISTS (SELECT 1 FROM cutter_governance.document_lock l
                          WHERE l.document_id = n.document_id AND l.run_id = n.created_by_run)
        LIMIT 1;
    END IF;
    IF v_doc IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s does not hold the lock of document %s', v_run, v_doc);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER information_unit_lock_insert AFTER INSERT ON public.information_unit
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_require_document_lock();
CREATE TRIGGER information_unit_lock_update AFTER UPDATE ON public.information_unit
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_require_document_lock();
CREATE TRIGGER information_unit_lock_delete AFTER DELETE ON public.information_unit
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_require_document_lock();
CREATE TRIGGER unit_version_lock_insert AFTER INSERT ON public.unit_version
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_require_document_lock();
CREATE TRIGGER unit_version_lock_delete AFTER DELETE ON public.unit_version
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_require_document_lock();

CREATE OR REPLACE FUNCTION cutter_governance.fn_lock_document(p_document_id text, p_run_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_holder text;
BEGIN
    -- Between a refused insert and the read of the holder, the holder may release: try again
    -- until one of the two finds a row.
    LOOP
        INSERT INTO cutter_governance.document_lock (document_id, run_id)
        VALUES (p_document_id, p_run_id)
        ON CONFLICT (document_id) DO NOTHING;
        IF FOUND THEN
            INSERT INTO cutter_governance.document_lock_log (document_id, run_id, action)
            VALUES (p_document_id, p_run_id, 'claimed');
            RETURN p_run_id;
        END IF;
        SELECT run_id INTO v_holder FROM cutter_governance.document_lock
        WHERE document_id = p_document_id;
        IF FOUND THEN
            RETURN v_holder;
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION public.fn_record_verify(p_run_id text, p_phase text, p_passed boolean,
                                                  p_checked bigint, p_mismatches text[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row cutter_governance.verify_result%ROWTYPE;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    SELECT * INTO v_row FROM cutter_governance.verify_result
    WHERE run_id = p_run_id AND phase = p_phase;
    IF FOUND THEN
        IF v_row.passed IS DISTINCT FROM p_passed OR v_row.checked IS DISTINCT FROM p_checked
           OR v_row.mismatches IS DISTINCT FROM coalesce(p_mismatches, '{}') THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('verify %s of run %s is already recorded with another result (passed=%s, checked=%s)',
                                 p_phase, p_run_id, v_row.passed, v_row.checked);
        END IF;
        RETURN;
    END IF;
    INSERT INTO cutter_governance.verify_result (run_id, phase, passed, checked, mismatches)
    VALUES (p_run_id, p_phase, p_passed, p_checked, coalesce(p_mismatches, '{}'));
END
$$;

CREATE TRIGGER cut_change_set_no_truncate BEFORE TRUNCATE ON cutter_governance.cut_change_set
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER affected_row_no_truncate BEFORE TRUNCATE ON cutter_governance.cut_change_set_affected_row
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER manifest_envelope_no_truncate BEFORE TRUNCATE ON cutter_governance.manifest_envelope
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER approval_signature_no_truncate BEFORE TRUNCATE ON cutter_governance.approval_signature
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER review_decision_no_truncate BEFORE TRUNCATE ON cutter_governance.review_decision
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER verify_result_no_truncate BEFORE TRUNCATE ON cutter_governance.verify_result
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER document_lock_log_no_truncate BEFORE TRUNCATE ON cutter_governance.document_lock_log
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

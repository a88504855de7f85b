-- V2: the approvals themselves become evidence in the database, not only in the run's files.
-- Each gate's signature row keeps the Ed25519 signature, and the review decision keeps the
-- sha256 of the SG_2 approval document that used it, its approver and signing time; the SG_2
-- approval gets its own signature row. Columns are nullable only because V1 rows (never in
-- production) predate them; the functions below always fill them.

ALTER TABLE cutter_governance.approval_signature ADD COLUMN signature text;

ALTER TABLE cutter_governance.review_decision
    ADD COLUMN approval_sha256 text,
    ADD COLUMN approver        text,
    ADD COLUMN signed_at       timestamptz;

DROP FUNCTION public.fn_leg_b_record(text, text, text, text, bigint, text, text, jsonb, text, text,
                                     text, timestamptz, timestamptz, boolean);

-- Leg B: the manifest envelope and the SG_1 signature row. A repeat returns 'already_present'.
CREATE FUNCTION public.fn_leg_b_record(
    p_run_id text, p_document_id text, p_payload_sha256 text, p_source_sha256 text,
    p_unit_count bigint, p_backup_sha256 text, p_grant_sha256 text, p_manifest jsonb,
    p_gate text, p_approver text, p_approval_sha256 text, p_signed_at timestamptz,
    p_accepted_at timestamptz, p_self_approved boolean, p_signature text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_change_doc text;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    IF EXISTS (SELECT 1 FROM cutter_governance.manifest_envelope WHERE run_id = p_run_id) THEN
        RETURN 'already_present';
    END IF;
    SELECT document_id INTO v_change_doc FROM cutter_governance.cut_change_set WHERE run_id = p_run_id;
    IF NOT FOUND OR v_change_doc <> p_document_id THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s has no leg A change set for document %s', p_run_id, p_document_id);
    END IF;
    INSERT INTO cutter_governance.manifest_envelope (run_id, document_id, payload_sha256, source_sha256,
        unit_count, backup_sha256, grant_sha256, manifest)
    VALUES (p_run_id, p_document_id, p_payload_sha256, p_source_sha256, p_unit_count,
            p_backup_sha256, p_grant_sha256, p_manifest);
    INSERT INTO cutter_governance.approval_signature (run_id, gate, approver, document_sha256,
        signed_at, accepted_at, self_approved, signature)
    VALUES (p_run_id, p_gate, p_approver, p_approval_sha256, p_signed_at, p_accepted_at,
            p_self_approved, p_signature);
    RETURN 'created';
END
$$;

DROP FUNCTION public.fn_iu_enact(text, text, text);

-- Draft → enacted for every draft the run created, one lifecycle-log row each. The review
-- decision id is recorded here, with the SG_2 approval's sha256, and belongs to this run for
-- ever; the SG_2 signature row is written in the same transaction.
CREATE FUNCTION public.fn_iu_enact(
    p_run_id text, p_document_id text, p_review_decision_id text, p_approval_sha256 text,
    p_approver text, p_signed_at timestamptz, p_accepted_at timestamptz,
    p_self_approved boolean, p_signature text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_owner text;
    v_moved bigint;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    SELECT run_id INTO v_owner FROM cutter_governance.review_decision
    WHERE review_decision_id = p_review_decision_id;
    IF FOUND AND v_owner <> p_run_id THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('review decision %s already used by run %s', p_review_decision_id, v_owner);
    ELSIF NOT FOUND THEN
        INSERT INTO cutter_governance.review_decision (review_decision_id, run_id, document_id,
            approval_sha256, approver, signed_at)
        VALUES (p_review_decision_id, p_run_id, p_document_id, p_approval_sha256, p_approver,
                p_signed_at);
    END IF;
    INSERT INTO cutter_governance.approval_signature (run_id, gate, approver, document_sha256,
        signed_at, accepted_at, self_approved, signature)
    VALUES (p_run_id, 'SG_2', p_approver, p_approval_sha256, p_signed_at, p_accepted_at,
            p_self_approved, p_signature)
    ON CONFLICT (run_id, gate) DO NOTHING;

    PERFORM set_config('cutter.lifecycle_writer', 'on', true);
    WITH moved AS (
        UPDATE public.information_unit SET lifecycle_status = 'enacted'
        WHERE document_id = p_document_id AND created_by_run = p_run_id AND lifecycle_status = 'draft'
        RETURNING unit_key
    ), logged AS (
        INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status, review_decision_id)
        SELECT p_run_id, p_document_id, unit_key, 'draft', 'enacted', p_review_decision_id FROM moved
        RETURNING 1
    )
    SELECT count(*) INTO v_moved FROM logged;
    PERFORM set_config('cutter.lifecycle_writer', '', true);
    RETURN v_moved;
END
$$;

-- V11: the governance holds under concurrency and against a caller who times its statements.
--
-- A review of V10 by attack found ways around it with only the exec role's connection; each is
-- closed here and has a test in cutter-adapters/tests/pg_attacks.rs:
--
-- 1. leg A's payload check could be fired early (SET CONSTRAINTS ALL IMMEDIATE after the
--    approved units) and more units added after it: the check now marks the change set as
--    checked, and no chunk is accepted after that; chunks cannot write past the recorded unit
--    count, and the plan positions must be exactly 0..n-1 (fn_written_payload says so).
-- 2. drafts could be deleted or retired between leg A and SG_2, and SG_2 would enact what was
--    left: fn_iu_enact enacts only a run whose written units still hash to the approved
--    payload, none of them retired.
-- 3. a REPEATABLE READ (or SERIALIZABLE) transaction kept seeing the arming, the lock and the
--    keys as they were when it began: writes are refused outside READ COMMITTED, the run's
--    lock row is held (FOR KEY SHARE) by every writer until it commits, so clearing or
--    releasing a lock waits for the writers and then sees what they wrote, and leg A's commit
--    checks the arming and the lock once more.
-- 4. approval and key times were measured with now() (the start of the transaction): the wall
--    clock is used instead.
-- 5. an SG_C approval could be replayed after it expired to retire more of the run's enacted
--    units: a compensation of enacted units retires all of them at once, so a replay finds
--    nothing left to retire.
-- 6. approvals replayed across knowledge bases: signing forms v3 (single) and batch v2 sign
--    the knowledge base's id, and nothing else is accepted.
-- 7. fn_check_approval answered about any run: it needs the run armed, like every call of
--    the run.
-- 8. payload hashing assumed UTF-8 without saying so: a database in another encoding is
--    refused.

DO $$
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('the knowledge base must be a UTF8 database, this one is %s: payloads and approvals are hashed as UTF-8; create the database with ENCODING ''UTF8''',
                             current_setting('server_encoding'));
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Arming: checked in READ COMMITTED only, where every statement sees what is committed now.

CREATE OR REPLACE FUNCTION cutter_governance.fn_require_armed(p_run_id text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- A REPEATABLE READ snapshot taken while the run was armed would keep it armed after a
    -- disarm, and keep a cleared lock or a revoked key valid, for as long as the transaction
    -- stays open.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: the knowledge base is written only in READ COMMITTED transactions (this one is %s); do not change default_transaction_isolation for the cutter roles',
                             p_run_id, upper(current_setting('transaction_isolation')));
    END IF;
    IF NOT cutter_governance.fn_run_armed(p_run_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK001',
            MESSAGE = format('kill-switch is off for run %s', p_run_id);
    END IF;
END
$$;

-- The run, armed, for this document; with p_need_lock, holding the document's lock, and
-- holding on to the lock row until the transaction ends: a clear or a release of the lock
-- waits for this writer and then sees its units.
CREATE OR REPLACE FUNCTION cutter_governance.fn_require_run(p_run_id text, p_document_id text, p_need_lock boolean)
RETURNS cutter_governance.run
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    SELECT * INTO v_run FROM cutter_governance.run WHERE run_id = p_run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s was never begun in this knowledge base', p_run_id);
    END IF;
    IF v_run.document_id IS DISTINCT FROM p_document_id THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s cuts document %s, not %s', p_run_id, v_run.document_id, p_document_id);
    END IF;
    IF p_need_lock THEN
        PERFORM 1 FROM cutter_governance.document_lock l
        WHERE l.document_id = p_document_id AND l.run_id = p_run_id
        FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s does not hold the lock of document %s', p_run_id, p_document_id);
        END IF;
    END IF;
    RETURN v_run;
END
$$;

-- Releases the run's own claim only when it leaves nothing behind. The lock row is taken
-- first, so a writer of the run still in flight finishes before the drafts are counted.
CREATE OR REPLACE FUNCTION cutter_governance.fn_unlock_document(p_document_id text, p_run_id text, p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    PERFORM 1 FROM cutter_governance.document_lock l
    WHERE l.document_id = p_document_id AND l.run_id = p_run_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM public.information_unit u
               WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
                 AND u.lifecycle_status = 'draft') THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s still has draft units of %s: void or revert it before its lock is released', p_run_id, p_document_id);
    END IF;
    DELETE FROM cutter_governance.document_lock WHERE document_id = p_document_id AND run_id = p_run_id;
    INSERT INTO cutter_governance.document_lock_log (document_id, run_id, action, actor)
    VALUES (p_document_id, p_run_id, 'released', p_actor);
    RETURN true;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Approvals: the wall clock, the knowledge base's id in what is signed.

-- Checks an approval (as JSON, the fields a person signed) for a gate of a run, entirely on
-- server state: the run's own document, pins and payload, the trusted keys, the policy's time
-- window on the server clock, single-use review decisions. Raises CK004 with the reason on any
-- refusal. A repeat of the approval already recorded for this run and gate (a resumed crash)
-- is a replay: it verifies again but is not refused for having expired since.
--
-- Single approvals are `cutter.approval-signing.v3`:
--   "cutter.approval-signing.v3\n" field(gate) field(run_id) opt(knowledge_base) field(document_id)
--   field(source_sha256) field(payload_sha256) field(signed_utc) field(allowance)
--   field(approver) opt(review_decision_id) opt(protected_allowance) opt(reason)
--   field(self_approved)
-- Batch approvals are `cutter.batch-approval-signing.v2` (v1 with opt(knowledge_base) after the
-- batch id; see cutter-core batch_approval.rs),
-- and this run must be one of the listed (run_id, payload_sha256) pairs.
CREATE OR REPLACE FUNCTION cutter_governance.fn_verify_approval(p_run cutter_governance.run, p_gate text, p_approval jsonb)
RETURNS cutter_governance.approval_verdict
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a jsonb := coalesce(p_approval, '{}'::jsonb);
    v_format text := a->>'signing';
    v_gate text := a->>'gate';
    v_signed_text text := a->>'signed_utc';
    v_signed timestamptz;
    v_policy cutter_governance.policy%ROWTYPE;
    v_ttl interval;
    v_sig bytea;
    v_msg bytea;
    v_rd text;
    v_rd_norm text;
    v_owner record;
    v_key record;
    v_prev cutter_governance.approval_signature%ROWTYPE;
    v_replay boolean := false;
    v_batch_id text;
    v_runs text[];
    v_payloads text[];
    v_found boolean := false;
    i integer;
    v_out cutter_governance.approval_verdict;
    -- The wall clock, not the transaction's start: a caller could open a transaction while an
    -- approval is fresh and use it after it expired.
    v_now timestamptz := clock_timestamp();
    v_kb text := p_run.kb_id::text;
BEGIN
    IF p_run.payload_sha256 IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s has no recorded plan; an approval needs the payload it approves', p_run.run_id);
    END IF;
    IF v_gate IS DISTINCT FROM p_gate THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004',
            MESSAGE = format('the approval is for gate %s, the run needs %s', coalesce(v_gate, '(none)'), p_gate);
    END IF;
    IF a->>'allowance' IS DISTINCT FROM 'explicit' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = 'the approval does not say allowance = "explicit"';
    END IF;
    IF coalesce(btrim(a->>'approver'), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = 'the approval names no approver';
    END IF;
    IF coalesce(a->>'self_approved', 'false') <> 'false' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = 'a self-approved rehearsal is not valid for a live run';
    END IF;
    IF v_signed_text IS NULL OR v_signed_text !~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004',
            MESSAGE = format('signed_utc %s is not a UTC time of the form 2026-11-25T10:00:00Z', coalesce(v_signed_text, '(none)'));
    END IF;
    BEGIN
        v_signed := v_signed_text::timestamptz;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = format('signed_utc %s is not a valid time', v_signed_text);
    END;

    -- The fields that bind it to this run.
    -- Both forms sign the knowledge base, so an approval for a run of a staging database does
    -- not replay in production under the same run id, pin and payload.
    IF v_format IN ('cutter.approval-signing.v3', 'cutter.batch-approval-signing.v2')
       AND a->>'knowledge_base' IS DISTINCT FROM v_kb THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004',
            MESSAGE = format('the approval was signed for knowledge base %s, this is knowledge base %s: sign the request of this knowledge base''s run',
                             coalesce(a->>'knowledge_base', '(none)'), v_kb);
    END IF;
    IF v_format = 'cutter.approval-signing.v3' THEN
        IF a->>'run_id' IS DISTINCT FROM p_run.run_id THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the approval is for run %s, not %s', coalesce(a->>'run_id', '(none)'), p_run.run_id);
        END IF;
        IF a->>'document_id' IS DISTINCT FROM p_run.document_id THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the approval is for document %s, the run cuts %s', coalesce(a->>'document_id', '(none)'), p_run.document_id);
        END IF;
        IF a->>'source_sha256' IS DISTINCT FROM p_run.source_sha256 THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the approval names source sha256 %s, the registry pin of the run is %s', coalesce(a->>'source_sha256', '(none)'), p_run.source_sha256);
        END IF;
        IF a->>'payload_sha256' IS DISTINCT FROM p_run.payload_sha256 THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the approval is for payload %s, the run recorded %s', coalesce(a->>'payload_sha256', '(none)'), p_run.payload_sha256);
        END IF;
        v_rd := a->>'review_decision_id';
        v_msg := convert_to('cutter.approval-signing.v3', 'UTF8') || '\x0a'::bytea
            || cutter_governance.fn_sign_field(p_gate)
            || cutter_governance.fn_sign_field(p_run.run_id)
            || cutter_governance.fn_sign_field(v_kb)
            || cutter_governance.fn_sign_field(p_run.document_id)
            || cutter_governance.fn_sign_field(p_run.source_sha256)
            || cutter_governance.fn_sign_field(p_run.payload_sha256)
            || cutter_governance.fn_sign_field(v_signed_text)
            || cutter_governance.fn_sign_field('explicit')
            || cutter_governance.fn_sign_field(a->>'approver')
            || cutter_governance.fn_sign_opt(a->>'review_decision_id')
            || cutter_governance.fn_sign_opt(a->>'protected_allowance')
            || cutter_governance.fn_sign_opt(a->>'reason')
            || cutter_governance.fn_sign_field('false');
    ELSIF v_format = 'cutter.batch-approval-signing.v2' THEN
        IF p_gate NOT IN ('SG_1', 'SG_2') THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = 'a batch approval cannot authorise a compensation';
        END IF;
        IF p_gate = 'SG_1' AND p_run.protected THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('document %s is protected: its SG_1 needs its own approval with protected_allowance, not a batch approval', p_run.document_id);
        END IF;
        v_batch_id := a->>'batch_id';
        IF coalesce(v_batch_id, '') = '' OR jsonb_typeof(a->'runs') IS DISTINCT FROM 'array'
           OR jsonb_typeof(a->'payloads') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = 'the batch approval lacks its batch id or its list of runs';
        END IF;
        SELECT array_agg(x ORDER BY o) INTO v_runs FROM jsonb_array_elements_text(a->'runs') WITH ORDINALITY AS t(x, o);
        SELECT array_agg(x ORDER BY o) INTO v_payloads FROM jsonb_array_elements_text(a->'payloads') WITH ORDINALITY AS t(x, o);
        IF coalesce(cardinality(v_runs), 0) = 0 OR cardinality(v_runs) IS DISTINCT FROM cardinality(v_payloads) THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = 'the batch approval lists no runs, or runs and payloads differ in number';
        END IF;
        FOR i IN 1 .. cardinality(v_runs) LOOP
            IF v_runs[i] = p_run.run_id AND v_payloads[i] = p_run.payload_sha256 THEN
                v_found := true;
            END IF;
        END LOOP;
        IF NOT v_found THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the batch approval does not list run %s with payload %s', p_run.run_id, p_run.payload_sha256);
        END IF;
        IF a->>'review_decision_id' IS NOT NULL THEN
            v_rd := (a->>'review_decision_id') || '/' || p_run.run_id;
        END IF;
        v_msg := convert_to('cutter.batch-approval-signing.v2', 'UTF8') || '\x0a'::bytea
            || cutter_governance.fn_sign_field(p_gate)
            || cutter_governance.fn_sign_field(v_batch_id)
            || cutter_governance.fn_sign_field(v_kb)
            || cutter_governance.fn_sign_field(v_signed_text)
            || cutter_governance.fn_sign_field('explicit')
            || cutter_governance.fn_sign_field(a->>'approver')
            || cutter_governance.fn_sign_opt(a->>'review_decision_id')
            || cutter_governance.fn_sign_field(cardinality(v_runs)::text);
        FOR i IN 1 .. cardinality(v_runs) LOOP
            v_msg := v_msg || cutter_governance.fn_sign_field(v_runs[i])
                           || cutter_governance.fn_sign_field(v_payloads[i]);
        END LOOP;
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'CK004',
            MESSAGE = format('the approval is signed in format %s; this knowledge base verifies cutter.approval-signing.v3 and cutter.batch-approval-signing.v2 (sign the request again with this cutter)',
                             coalesce(v_format, 'cutter.approval-signing.v1'));
    END IF;

    -- What each gate needs besides the signature.
    IF p_gate = 'SG_1' AND p_run.protected
       AND btrim(coalesce(a->>'protected_allowance', '')) IS DISTINCT FROM p_run.document_id THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004',
            MESSAGE = format('document %s is protected: the SG_1 approval must carry protected_allowance = "%s"', p_run.document_id, p_run.document_id);
    END IF;
    IF p_gate IN ('SG_2', 'SG_C') THEN
        IF v_rd IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = format('the %s approval has no review decision id', p_gate);
        END IF;
        v_rd_norm := cutter_governance.fn_normalize_review_decision(v_rd);
    END IF;
    IF p_gate = 'SG_C' AND coalesce(btrim(a->>'reason'), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = 'a compensation approval must give its reason';
    END IF;

    -- The signature: by a key the admin trusts for this approver, unrevoked, valid when signed.
    BEGIN
        IF left(a->>'signature', 8) IS DISTINCT FROM 'ed25519:' THEN
            RAISE EXCEPTION 'prefix';
        END IF;
        v_sig := decode(substr(a->>'signature', 9), 'base64');
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004', MESSAGE = 'the signature is not of the form ed25519:<base64 of 64 bytes>';
    END;
    SELECT k.fingerprint INTO v_key
    FROM cutter_governance.approver_key k
    WHERE k.approver = a->>'approver' AND k.revoked_at IS NULL
      AND k.valid_from <= v_signed AND (k.valid_until IS NULL OR k.valid_until > v_now)
      AND cutter_governance.ed25519_verify(k.public_key, v_msg, v_sig)
    LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004',
            MESSAGE = format('the signature does not verify under any key this knowledge base trusts for approver %s (trusted keys live in cutter_governance.approver_key: `cutter approve trust`)', quote_literal(a->>'approver'));
    END IF;

    -- A repeat of the recorded approval (a resume after a crash) is not refused for its age.
    SELECT * INTO v_prev FROM cutter_governance.approval_signature s
    WHERE s.run_id = p_run.run_id AND s.gate = p_gate;
    IF FOUND THEN
        IF v_prev.signature IS DISTINCT FROM a->>'signature' THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('run %s already recorded another %s approval (by %s)', p_run.run_id, p_gate, v_prev.approver);
        END IF;
        v_replay := true;
    END IF;

    IF NOT v_replay THEN
        SELECT * INTO v_policy FROM cutter_governance.policy;
        v_ttl := CASE p_gate WHEN 'SG_1' THEN v_policy.sg1_ttl WHEN 'SG_2' THEN v_policy.sg2_ttl
                             ELSE v_policy.compensation_ttl END;
        IF v_signed > v_now + v_policy.max_clock_skew THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the approval was signed at %s, in the future of the server clock (%s)', v_signed_text, v_now);
        END IF;
        IF v_now > v_signed + v_ttl THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the %s approval signed at %s expired after %s (server clock %s)', p_gate, v_signed_text, v_ttl, v_now);
        END IF;
        IF v_rd_norm IS NOT NULL THEN
            SELECT d.run_id, d.gate INTO v_owner FROM cutter_governance.review_decision d
            WHERE d.review_decision_id = v_rd_norm;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'CK004',
                    MESSAGE = format('review decision %s was already used (run %s, %s); a review decision is used once', v_rd_norm, v_owner.run_id, coalesce(v_owner.gate, 'SG_2'));
            END IF;
        END IF;
    END IF;

    v_out.key_fingerprint := v_key.fingerprint;
    v_out.review_decision_id := v_rd_norm;
    v_out.signed_at := v_signed;
    v_out.approver := a->>'approver';
    v_out.batch_id := v_batch_id;
    v_out.replay := v_replay;
    RETURN v_out;
END
$$;

-- Verifies and records an approval; accepted_at is the wall clock, like verified_at.
CREATE OR REPLACE FUNCTION cutter_governance.fn_accept_approval(p_run cutter_governance.run, p_gate text,
                                                                p_approval jsonb, p_actor text)
RETURNS cutter_governance.approval_verdict
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v cutter_governance.approval_verdict;
    v_doc_sha text := p_approval->>'document_sha256';
BEGIN
    v := cutter_governance.fn_verify_approval(p_run, p_gate, p_approval);
    IF v.replay THEN
        RETURN v;
    END IF;
    INSERT INTO cutter_governance.approval_signature (run_id, gate, approver, document_sha256,
        signed_at, accepted_at, self_approved, signature, signing_format, key_fingerprint,
        review_decision_id, protected_allowance, reason, batch_id, verified_at, actor)
    VALUES (p_run.run_id, p_gate, v.approver, coalesce(v_doc_sha, ''), v.signed_at, clock_timestamp(), false,
            p_approval->>'signature', p_approval->>'signing', v.key_fingerprint,
            v.review_decision_id, p_approval->>'protected_allowance', p_approval->>'reason',
            v.batch_id, clock_timestamp(), p_actor);
    IF v.review_decision_id IS NOT NULL THEN
        INSERT INTO cutter_governance.review_decision (review_decision_id, run_id, document_id,
            approval_sha256, approver, signed_at, gate)
        VALUES (v.review_decision_id, p_run.run_id, p_run.document_id, coalesce(v_doc_sha, ''),
                v.approver, v.signed_at, p_gate);
    END IF;
    RETURN v;
END
$$;

-- Asks whether an approval would be accepted now, recording nothing; like every call of a
-- run, only while the run is armed.
CREATE OR REPLACE FUNCTION public.fn_check_approval(p_run_id text, p_document_id text, p_gate text, p_approval jsonb)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v cutter_governance.approval_verdict;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, false);
    v := cutter_governance.fn_verify_approval(v_run, p_gate, p_approval);
    RETURN v.key_fingerprint;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- What a run wrote: the payload, and whether its plan positions are exactly 0..n-1 (ties or
-- gaps would make the read-back order, and so the hash, a matter of chance).

DROP FUNCTION cutter_governance.fn_written_payload(text, text);
CREATE FUNCTION cutter_governance.fn_written_payload(p_run_id text, p_document_id text,
                                                     OUT payload_sha256 text, OUT units bigint,
                                                     OUT positions_ok boolean, OUT retired bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT encode(sha256(convert_to(
               'cutter.payload.v1' || chr(10) || count(*)::text || chr(10)
               || coalesce(string_agg(
                      octet_length(u.unit_key)::text || ':' || u.unit_key || chr(10)
                   || octet_length(coalesce(u.parent_key, ''))::text || ':' || coalesce(u.parent_key, '') || chr(10)
                   || octet_length(u.ordinal::text)::text || ':' || u.ordinal::text || chr(10)
                   || octet_length(u.unit_kind)::text || ':' || u.unit_kind || chr(10)
                   || octet_length(u.section_type)::text || ':' || u.section_type || chr(10)
                   || octet_length(u.title)::text || ':' || u.title || chr(10)
                   || octet_length(v.body_sha256)::text || ':' || v.body_sha256 || chr(10),
                   '' ORDER BY u.plan_position), ''),
               'UTF8')), 'hex'),
           count(*),
           count(*) = 0 OR (min(u.plan_position) = 0 AND max(u.plan_position) = count(*) - 1
                            AND count(DISTINCT u.plan_position) = count(*)),
           count(*) FILTER (WHERE u.lifecycle_status = 'retired')
    FROM public.information_unit u
    JOIN public.unit_version v
      ON v.document_id = u.document_id AND v.unit_key = u.unit_key AND v.version_no = 1
     AND v.created_by_run = u.created_by_run
    WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_written_payload(text, text) FROM PUBLIC;

-- Leg A's payload check has run for these change sets: no unit may be added after it, even
-- in the same transaction (where SET CONSTRAINTS ... IMMEDIATE could have fired it early).
CREATE TABLE cutter_governance.cut_change_set_checked (
    run_id     text PRIMARY KEY REFERENCES cutter_governance.cut_change_set (run_id),
    units      bigint NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER cut_change_set_checked_append_only BEFORE UPDATE OR DELETE ON cutter_governance.cut_change_set_checked
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER cut_change_set_checked_no_truncate BEFORE TRUNCATE ON cutter_governance.cut_change_set_checked
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
REVOKE ALL ON cutter_governance.cut_change_set_checked FROM PUBLIC;

-- Existing change sets were checked at their commit by V10.
INSERT INTO cutter_governance.cut_change_set_checked (run_id, units)
SELECT run_id, unit_count FROM cutter_governance.cut_change_set;

-- At the commit of leg A (or earlier, if the caller fires it early): the run is still armed
-- and holds the lock, the units written are exactly the approved payload in positions
-- 0..n-1, and from now on no chunk is accepted.
CREATE OR REPLACE FUNCTION cutter_governance.tg_change_set_complete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w record;
BEGIN
    PERFORM cutter_governance.fn_require_run(NEW.run_id, NEW.document_id, true);
    SELECT * INTO w FROM cutter_governance.fn_written_payload(NEW.run_id, NEW.document_id);
    IF w.units <> NEW.unit_count OR w.payload_sha256 <> NEW.payload_sha256 OR NOT w.positions_ok THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('leg A of run %s: the %s units written hash to payload %s (plan positions %s), the approved payload is %s with %s units; nothing is committed',
                             NEW.run_id, w.units, w.payload_sha256,
                             CASE WHEN w.positions_ok THEN '0..n-1' ELSE 'not 0..n-1' END,
                             NEW.payload_sha256, NEW.unit_count);
    END IF;
    INSERT INTO cutter_governance.cut_change_set_checked (run_id, units) VALUES (NEW.run_id, w.units);
    RETURN NULL;
END
$$;

-- Writes one chunk of leg A (internal): only while the change set is unchecked, and never
-- past the recorded unit count.
CREATE OR REPLACE FUNCTION cutter_governance.fn_iu_insert_chunk(
    p_run_id text, p_document_id text, p_offset integer,
    p_keys text[], p_parents text[], p_ordinals integer[], p_unit_kinds text[],
    p_section_types text[], p_titles text[], p_bodies text[], p_body_sha256s text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_n integer := coalesce(cardinality(p_keys), 0);
    v_count integer;
BEGIN
    IF coalesce(cardinality(p_parents), 0) <> v_n OR coalesce(cardinality(p_ordinals), 0) <> v_n
       OR coalesce(cardinality(p_unit_kinds), 0) <> v_n OR coalesce(cardinality(p_section_types), 0) <> v_n
       OR coalesce(cardinality(p_titles), 0) <> v_n OR coalesce(cardinality(p_bodies), 0) <> v_n
       OR coalesce(cardinality(p_body_sha256s), 0) <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'the unit arrays differ in length';
    END IF;
    IF EXISTS (SELECT 1 FROM cutter_governance.cut_change_set_checked k WHERE k.run_id = p_run_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: leg A''s payload was already checked; no unit is added after that', p_run_id);
    END IF;
    IF v_n = 0 THEN
        RETURN 0;
    END IF;
    SELECT c.unit_count INTO v_count FROM cutter_governance.cut_change_set c WHERE c.run_id = p_run_id;
    IF p_offset IS NULL OR p_offset < 0 OR v_count IS NULL OR p_offset::bigint + v_n > v_count THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: a chunk at offset %s of %s units does not fit in the %s units of the plan',
                             p_run_id, coalesce(p_offset::text, '(none)'), v_n, coalesce(v_count::text, '(none)'));
    END IF;
    -- Set-returning functions in the select list advance in lockstep and stream.
    INSERT INTO public.information_unit (document_id, unit_key, parent_key, ordinal, plan_position,
                                         unit_kind, section_type, title, lifecycle_status, created_by_run)
    SELECT p_document_id, unnest(p_keys), unnest(p_parents), unnest(p_ordinals),
           generate_series(p_offset, p_offset + v_n - 1), unnest(p_unit_kinds),
           unnest(p_section_types), unnest(p_titles), 'draft', p_run_id;

    INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256, created_by_run)
    SELECT p_document_id, unnest(p_keys), 1, unnest(p_bodies), unnest(p_body_sha256s), p_run_id;

    INSERT INTO cutter_governance.cut_change_set_affected_row (run_id, table_name, document_id, unit_key, action)
    SELECT p_run_id, 'public.information_unit', p_document_id, unnest(p_keys), 'insert'
    UNION ALL
    SELECT p_run_id, 'public.unit_version', p_document_id, unnest(p_keys), 'insert';
    RETURN v_n;
END
$$;

-- Draft → enacted under SG_2, only while what the run wrote is still exactly the payload the
-- approver reviewed: no unit deleted, added or retired since leg A.
CREATE OR REPLACE FUNCTION public.fn_iu_enact(p_run_id text, p_document_id text, p_approval jsonb, p_actor text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v cutter_governance.approval_verdict;
    w record;
    v_moved bigint;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.manifest_envelope m WHERE m.run_id = p_run_id)
       OR NOT EXISTS (SELECT 1 FROM cutter_governance.verify_result r
                      WHERE r.run_id = p_run_id AND r.phase = 'structural_verify' AND r.passed)
       OR NOT EXISTS (SELECT 1 FROM cutter_governance.verify_result r
                      WHERE r.run_id = p_run_id AND r.phase = 'write_verify' AND r.passed) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s cannot be enacted before leg B and both verifies have passed', p_run_id);
    END IF;
    SELECT * INTO w FROM cutter_governance.fn_written_payload(p_run_id, p_document_id);
    IF w.units IS DISTINCT FROM v_run.unit_count::bigint OR w.payload_sha256 IS DISTINCT FROM v_run.payload_sha256
       OR NOT w.positions_ok OR w.retired <> 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: its units are no longer the approved payload (%s units hash to %s, %s retired; approved %s with %s units); void it and cut again',
                             p_run_id, w.units, w.payload_sha256, w.retired, v_run.payload_sha256, v_run.unit_count);
    END IF;
    v := cutter_governance.fn_accept_approval(v_run, 'SG_2', p_approval, p_actor);
    PERFORM set_config('cutter.lifecycle_writer', 'on', true);
    WITH moved AS (
        UPDATE public.information_unit SET lifecycle_status = 'enacted'
        WHERE document_id = p_document_id AND created_by_run = p_run_id AND lifecycle_status = 'draft'
        RETURNING unit_key
    ), logged AS (
        INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
            review_decision_id, reason, approval_gate, key_fingerprint, actor)
        SELECT p_run_id, p_document_id, unit_key, 'draft', 'enacted', v.review_decision_id,
               'enacted under SG_2', 'SG_2', v.key_fingerprint, p_actor
        FROM moved
        RETURNING 1
    )
    SELECT count(*) INTO v_moved FROM logged;
    PERFORM set_config('cutter.lifecycle_writer', '', true);
    RETURN v_moved;
END
$$;

-- Compensation: retire (with a lifecycle-log row) or hard-delete drafts, only among the units
-- this run created. Retiring enacted units needs a verified compensation approval (SG_C)
-- whose reason is the one given, and retires all of the run's enacted units at once; drafts
-- never enacted need only the arming. Every log row carries the reason, and the decision id
-- when there is an approval.
CREATE OR REPLACE FUNCTION public.fn_iu_compensate(p_run_id text, p_document_id text,
                                        p_retire_keys text[], p_delete_keys text[],
                                        p_reason text, p_approval jsonb, p_actor text)
RETURNS TABLE (retired bigint, deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v cutter_governance.approval_verdict;
    v_retired bigint;
    v_deleted bigint;
    v_missing bigint;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'a compensation must give its reason';
    END IF;
    IF EXISTS (SELECT 1 FROM public.information_unit u
               WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
                 AND u.lifecycle_status = 'enacted' AND u.unit_key = ANY (coalesce(p_retire_keys, '{}'))) THEN
        IF p_approval IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('run %s has enacted units: retiring them needs a signed compensation approval (SG_C)', p_run_id);
        END IF;
        IF btrim(coalesce(p_approval->>'reason', '')) IS DISTINCT FROM btrim(p_reason) THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = 'the compensation reason differs from the reason the approver signed';
        END IF;
        -- The approver signed the compensation of the run: all its enacted units go at once,
        -- so the approval, replayed later, finds nothing left to retire.
        SELECT count(*) INTO v_missing FROM public.information_unit u
        WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
          AND u.lifecycle_status = 'enacted' AND NOT (u.unit_key = ANY (coalesce(p_retire_keys, '{}')));
        IF v_missing > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s: a compensation under SG_C retires every enacted unit of the run at once; %s enacted units are not in this one', p_run_id, v_missing);
        END IF;
        v := cutter_governance.fn_accept_approval(v_run, 'SG_C', p_approval, p_actor);
    END IF;

    PERFORM set_config('cutter.lifecycle_writer', 'on', true);
    WITH target AS (
        SELECT u.unit_key, u.lifecycle_status AS from_status
        FROM public.information_unit u
        WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
          AND u.lifecycle_status <> 'retired' AND u.unit_key = ANY (coalesce(p_retire_keys, '{}'))
        FOR UPDATE
    ), moved AS (
        UPDATE public.information_unit u SET lifecycle_status = 'retired'
        FROM target t
        WHERE u.document_id = p_document_id AND u.unit_key = t.unit_key
        RETURNING u.unit_key, t.from_status
    ), logged AS (
        INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
            review_decision_id, reason, approval_gate, key_fingerprint, actor)
        SELECT p_run_id, p_document_id, unit_key, from_status, 'retired',
               CASE WHEN from_status = 'enacted' THEN v.review_decision_id END, p_reason,
               CASE WHEN from_status = 'enacted' THEN 'SG_C' END,
               CASE WHEN from_status = 'enacted' THEN v.key_fingerprint END, p_actor
        FROM moved
        RETURNING 1
    )
    SELECT count(*) INTO v_retired FROM logged;

    DELETE FROM public.unit_version uv
    USING public.information_unit u
    WHERE uv.document_id = p_document_id AND u.document_id = uv.document_id AND u.unit_key = uv.unit_key
      AND u.created_by_run = p_run_id AND u.lifecycle_status = 'draft'
      AND u.unit_key = ANY (coalesce(p_delete_keys, '{}'));
    DELETE FROM public.information_unit u
    WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
      AND u.lifecycle_status = 'draft' AND u.unit_key = ANY (coalesce(p_delete_keys, '{}'));
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    PERFORM set_config('cutter.lifecycle_writer', '', true);
    RETURN QUERY SELECT v_retired, v_deleted;
END
$$;

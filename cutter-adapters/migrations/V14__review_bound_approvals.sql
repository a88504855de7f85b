-- V14: the signature binds the review page (issue 16).
--
-- At SG_1 and SG_2 the approver is shown a review page (a self-contained HTML rendering of the
-- change plan, written by the orchestrator into the run's reports). Until now the signature
-- bound the payload sha256, what is written, but not the page a person read before signing:
-- a page could be regenerated (another plan rendering, a changed template) and an approval
-- signed over the old one would still pass. From here on:
--
--   * the run records the sha256 of its review page per gate (cutter_governance.run_review),
--     through fn_run_record_review, callable by the exec role while the run is armed and has
--     not passed the gate; recording again at the same gate replaces it (a regenerated page
--     must be approved again); once the gate's approval is accepted the row never changes;
--   * fn_verify_approval accepts at SG_1 and SG_2 only `cutter.approval-signing.v4`, whose
--     review_sha256 must be the run's recorded page, and rebuilds the v4 bytes with the page
--     from its own record; SG_C (a compensation, which has no page) takes v3 or v4 without
--     one. Batch approvals (`cutter.batch-approval-signing.v2`) are unchanged: they do not
--     bind a review page (a known gap).
--
-- The v4 signing form (cutter-core signing.rs):
--   "cutter.approval-signing.v4\n" field(gate) field(run_id) opt(knowledge_base)
--   field(document_id) field(source_sha256) field(payload_sha256) opt(review_sha256)
--   field(signed_utc) field(allowance) field(approver) opt(review_decision_id)
--   opt(protected_allowance) opt(reason) field(self_approved)
--
-- Attacks on this are tested in cutter-adapters/tests/pg_review_attacks.rs.

-- ---------------------------------------------------------------------------------------------
-- 1. The run's review pages.

CREATE TABLE cutter_governance.run_review (
    run_id      text NOT NULL REFERENCES cutter_governance.run (run_id),
    gate        text NOT NULL CHECK (gate IN ('SG_1', 'SG_2')),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    db_user     text NOT NULL DEFAULT session_user,
    PRIMARY KEY (run_id, gate)
);
REVOKE ALL ON cutter_governance.run_review FROM PUBLIC;

-- A page is replaced only while its gate is open; once an approval of the gate is recorded,
-- the page it signed is the evidence of what was approved. Rows are never deleted. (The exec
-- role cannot write the table at all; this guards the owner's own functions too.)
CREATE FUNCTION cutter_governance.tg_run_review_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('run %s: a recorded review page is never deleted', OLD.run_id);
    END IF;
    IF (NEW.run_id, NEW.gate) IS DISTINCT FROM (OLD.run_id, OLD.gate) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('run %s: a review page stays with its run and gate', OLD.run_id);
    END IF;
    IF EXISTS (SELECT 1 FROM cutter_governance.approval_signature s
               WHERE s.run_id = OLD.run_id AND s.gate = OLD.gate) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('run %s already accepted its %s approval, signed over review page %s: that page stays recorded',
                             OLD.run_id, OLD.gate, OLD.sha256);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER run_review_guard BEFORE UPDATE OR DELETE ON cutter_governance.run_review
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_run_review_guard();
CREATE TRIGGER run_review_no_truncate BEFORE TRUNCATE ON cutter_governance.run_review
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- Records (or, while the gate is open, replaces) the review page of a gate of an armed run
-- whose plan is recorded: the page shows that plan.
CREATE FUNCTION cutter_governance.fn_run_record_review(p_run_id text, p_gate text, p_sha256 text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v_old text;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    SELECT * INTO v_run FROM cutter_governance.run r WHERE r.run_id = p_run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s was never begun in this knowledge base', p_run_id);
    END IF;
    IF p_gate IS NULL OR p_gate NOT IN ('SG_1', 'SG_2') THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: a review page is recorded for SG_1 or SG_2, not %s', p_run_id, coalesce(p_gate, '(none)'));
    END IF;
    IF p_sha256 IS NULL OR p_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: the review page''s sha256 must be 64 lowercase hex digits, not %s', p_run_id, coalesce(quote_literal(p_sha256), '(none)'));
    END IF;
    -- Only the run that holds its document records its pages, as only it records its plan.
    PERFORM cutter_governance.fn_require_run(p_run_id, v_run.document_id, true);
    IF v_run.payload_sha256 IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s has no recorded plan; a review page shows the plan, record it first', p_run_id);
    END IF;
    -- The row first (FOR UPDATE), then the gate: an approval being accepted holds the row FOR
    -- SHARE until it commits, so this waits for it and then sees it.
    SELECT r.sha256 INTO v_old FROM cutter_governance.run_review r
    WHERE r.run_id = p_run_id AND r.gate = p_gate
    FOR UPDATE;
    IF EXISTS (SELECT 1 FROM cutter_governance.approval_signature s
               WHERE s.run_id = p_run_id AND s.gate = p_gate) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('run %s already accepted its %s approval, signed over review page %s: the page is what was approved and is not recorded again',
                             p_run_id, p_gate, coalesce(v_old, '(none)'));
    END IF;
    INSERT INTO cutter_governance.run_review AS r (run_id, gate, sha256)
    VALUES (p_run_id, p_gate, p_sha256)
    ON CONFLICT (run_id, gate) DO UPDATE
        SET sha256 = EXCLUDED.sha256, recorded_at = clock_timestamp(), db_user = session_user
        WHERE r.sha256 IS DISTINCT FROM EXCLUDED.sha256;
END
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_run_record_review(text, text, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 2. Approvals: v4 at SG_1 and SG_2, over the run's recorded page.

-- fn_verify_approval as in V11, every check kept, with the review page: single approvals are
-- `cutter.approval-signing.v4` at SG_1 and SG_2 (review_sha256 equal to the run's recorded
-- page, rebuilt from that record) and v3 or v4 without a page at SG_C; batch approvals
-- `cutter.batch-approval-signing.v2` as before.
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
    v_review text;
    v_signed_review bytea := ''::bytea;
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
    IF v_format IN ('cutter.approval-signing.v3', 'cutter.approval-signing.v4',
                    'cutter.batch-approval-signing.v2')
       AND a->>'knowledge_base' IS DISTINCT FROM v_kb THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004',
            MESSAGE = format('the approval was signed for knowledge base %s, this is knowledge base %s: sign the request of this knowledge base''s run',
                             coalesce(a->>'knowledge_base', '(none)'), v_kb);
    END IF;
    IF v_format IN ('cutter.approval-signing.v3', 'cutter.approval-signing.v4') THEN
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
        -- The review page (V14): an SG_1 or SG_2 approval signs, in v4, the page this run
        -- recorded for the gate; SG_C has none and takes v3 or v4 without one.
        IF p_gate IN ('SG_1', 'SG_2') THEN
            IF v_format <> 'cutter.approval-signing.v4' THEN
                RAISE EXCEPTION USING ERRCODE = 'CK004',
                    MESSAGE = format('the %s approval is signed in %s, which does not sign the review page: sign the request again with `cutter approve sign` (cutter.approval-signing.v4) — it names the review page',
                                     p_gate, v_format);
            END IF;
            -- FOR SHARE: a page recorded again while this approval is accepted waits for it,
            -- and then finds the gate passed (fn_run_record_review).
            SELECT r.sha256 INTO v_review FROM cutter_governance.run_review r
            WHERE r.run_id = p_run.run_id AND r.gate = p_gate
            FOR SHARE;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'CK004',
                    MESSAGE = format('run %s recorded no review page for %s, so no approval can say what was reviewed: resume the run with a cutter that writes the review page, then sign its request',
                                     p_run.run_id, p_gate);
            END IF;
            IF a->>'review_sha256' IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'CK004',
                    MESSAGE = format('the %s approval names no review page (review_sha256): sign the request again with `cutter approve sign` — it names the review page', p_gate);
            END IF;
            IF a->>'review_sha256' IS DISTINCT FROM v_review THEN
                RAISE EXCEPTION USING ERRCODE = 'CK004',
                    MESSAGE = format('the approval was signed over review page %s, the run''s page is %s: open the run''s review page (`cutter review %s`) and sign its request',
                                     a->>'review_sha256', v_review, p_run.run_id);
            END IF;
        ELSIF a->>'review_sha256' IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the %s approval names review page %s, but a compensation has none: request the compensation approval again and sign that', p_gate, a->>'review_sha256');
        END IF;
        IF v_format = 'cutter.approval-signing.v4' THEN
            -- The run's own record, not the client's copy (equal here, but this is what the
            -- signature must cover).
            v_signed_review := cutter_governance.fn_sign_opt(v_review);
        END IF;
        v_rd := a->>'review_decision_id';
        v_msg := convert_to(v_format, 'UTF8') || '\x0a'::bytea
            || cutter_governance.fn_sign_field(p_gate)
            || cutter_governance.fn_sign_field(p_run.run_id)
            || cutter_governance.fn_sign_field(v_kb)
            || cutter_governance.fn_sign_field(p_run.document_id)
            || cutter_governance.fn_sign_field(p_run.source_sha256)
            || cutter_governance.fn_sign_field(p_run.payload_sha256)
            || v_signed_review
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
            MESSAGE = format('the approval is signed in format %s; this knowledge base verifies cutter.approval-signing.v4 (v3 for a compensation) and cutter.batch-approval-signing.v2 (sign the request again with this cutter)',
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


-- V10: the database enforces the governance, whoever holds the exec role.
--
-- Before this migration the write functions trusted their caller for almost everything: the
-- approvals (any approver name, signature and review decision id were recorded as given), the
-- source pin and protected flag, the bond between a chunk of leg A and the transaction that
-- created its change set (a session setting any session could set), and the document locks
-- (any session could release any run's lock, and a claim handed out the holder's run id).
-- From here on every write function decides on server state only:
--
--   * a run exists in `run` (begun through `fn_run_begin`, which copies the source pin and the
--     protected flag from `source_registry`), its id is armed on the server's clock, and it
--     holds its document's lock;
--   * the payload sha256 is recorded once, at cutplan (`fn_run_plan`), and every approval must
--     be signed over exactly it; leg A's units must hash to it (a deferred constraint trigger
--     recomputes the canonical payload over the written rows at commit);
--   * every approval (SG_1 at leg A, SG_2 at enactment, SG_C at the compensation of enacted
--     units) is verified here: the canonical signing text is rebuilt from the fields, the
--     Ed25519 signature is checked with `ed25519_verify` (V9) against the keys in
--     `approver_key`, which only the admin role writes; the time window is checked on the
--     server's clock against the ceilings in `policy`; review decision ids are normalised and
--     single-use across gates;
--   * arming is written only through `fn_arm_run` (admin), timed by the server and capped by
--     `policy.max_arm_ttl`;
--   * the actor (the person or host the client says it acts for) and the database user are on
--     every run, arming, lock and lifecycle-log row.
--
-- Custom SQLSTATEs (the adapter translates them):
--   CK001  the kill-switch is off for the run
--   CK002  a cutter rule refused the write (the message says which)
--   CK003  an immutable or append-only row was to be changed
--   CK004  an approval was refused (the message says why)
--   CK005  the run is not in a state that allows this (a phase before it is missing)

-- ---------------------------------------------------------------------------------------------
-- Identity of this knowledge base: a run records it when it begins, and every later command
-- compares, so a run can never be resumed, voided or reverted against another database.

CREATE TABLE cutter_governance.kb_identity (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    kb_id             uuid NOT NULL DEFAULT gen_random_uuid(),
    database_name     text NOT NULL DEFAULT current_database(),
    -- The cluster's system identifier when the installer could read it (a superuser can).
    system_identifier text,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

DO $$
DECLARE
    v_sysid text;
BEGIN
    BEGIN
        SELECT system_identifier::text INTO v_sysid FROM pg_catalog.pg_control_system();
    EXCEPTION WHEN insufficient_privilege THEN
        v_sysid := NULL;
    END;
    INSERT INTO cutter_governance.kb_identity (system_identifier) VALUES (v_sysid);
END
$$;

CREATE TRIGGER kb_identity_append_only BEFORE UPDATE OR DELETE ON cutter_governance.kb_identity
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER kb_identity_no_truncate BEFORE TRUNCATE ON cutter_governance.kb_identity
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- The identity as it is now: the stored id, the live database name and the live system
-- identifier (NULL where the admin role may not read it). SECURITY DEFINER, so the exec and
-- verify roles can ask without reading pg_control_system() themselves.
CREATE FUNCTION cutter_governance.fn_kb_identity()
RETURNS TABLE (kb_id uuid, database_name text, system_identifier text, recorded_system_identifier text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_live text;
BEGIN
    BEGIN
        SELECT c.system_identifier::text INTO v_live FROM pg_catalog.pg_control_system() c;
    EXCEPTION WHEN insufficient_privilege THEN
        v_live := NULL;
    END;
    RETURN QUERY SELECT i.kb_id, current_database()::text, v_live, i.system_identifier
                 FROM cutter_governance.kb_identity i;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Ceilings the database enforces whatever a client or its config says. The admin role may
-- tighten them (UPDATE); the checks keep them within the design's limits.

CREATE TABLE cutter_governance.policy (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_arm_ttl      interval NOT NULL DEFAULT interval '4 hours'
                     CHECK (max_arm_ttl > interval '0' AND max_arm_ttl <= interval '4 hours'),
    sg1_ttl          interval NOT NULL DEFAULT interval '24 hours'
                     CHECK (sg1_ttl > interval '0' AND sg1_ttl <= interval '24 hours'),
    sg2_ttl          interval NOT NULL DEFAULT interval '12 hours'
                     CHECK (sg2_ttl > interval '0' AND sg2_ttl <= interval '12 hours'),
    compensation_ttl interval NOT NULL DEFAULT interval '12 hours'
                     CHECK (compensation_ttl > interval '0' AND compensation_ttl <= interval '12 hours'),
    max_clock_skew   interval NOT NULL DEFAULT interval '5 minutes'
                     CHECK (max_clock_skew >= interval '0' AND max_clock_skew <= interval '1 hour')
);
INSERT INTO cutter_governance.policy DEFAULT VALUES;
CREATE TRIGGER policy_no_delete BEFORE DELETE ON cutter_governance.policy
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER policy_no_truncate BEFORE TRUNCATE ON cutter_governance.policy
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- ---------------------------------------------------------------------------------------------
-- Trusted approver keys: the trust root of approvals lives here, written only by the admin
-- role (through fn_trust_key / fn_revoke_key), never in a client's config file.

CREATE TABLE cutter_governance.approver_key (
    public_key  bytea PRIMARY KEY CHECK (octet_length(public_key) = 32),
    -- 'SHA256:' and the first 16 hex digits of sha256(public_key), for people; never decides.
    fingerprint text NOT NULL,
    approver    text NOT NULL CHECK (btrim(approver) <> '' AND approver !~ '[[:cntrl:]]'),
    valid_from  timestamptz NOT NULL,
    valid_until timestamptz,
    revoked_at  timestamptz,
    actor       text NOT NULL,
    added_by    text NOT NULL DEFAULT session_user,
    added_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (valid_until IS NULL OR valid_until > valid_from)
);

CREATE TABLE cutter_governance.approver_key_log (
    log_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    fingerprint text NOT NULL,
    approver    text NOT NULL,
    action      text NOT NULL CHECK (action IN ('trusted', 'revoked')),
    actor       text NOT NULL,
    logged_by   text NOT NULL DEFAULT session_user,
    logged_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER approver_key_log_append_only BEFORE UPDATE OR DELETE ON cutter_governance.approver_key_log
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER approver_key_log_no_truncate BEFORE TRUNCATE ON cutter_governance.approver_key_log
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- A key is never deleted or rebound to another name; it can only be revoked (once).
CREATE FUNCTION cutter_governance.tg_approver_key_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = 'a trusted key is never deleted; revoke it with `cutter approve revoke`';
    END IF;
    IF (NEW.public_key, NEW.fingerprint, NEW.approver, NEW.valid_from, NEW.valid_until, NEW.actor,
        NEW.added_by, NEW.added_at)
       IS DISTINCT FROM
       (OLD.public_key, OLD.fingerprint, OLD.approver, OLD.valid_from, OLD.valid_until, OLD.actor,
        OLD.added_by, OLD.added_at)
       OR OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('trusted key %s: only an unrevoked key can change, and only by being revoked', OLD.fingerprint);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER approver_key_guard BEFORE UPDATE OR DELETE ON cutter_governance.approver_key
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_approver_key_guard();
CREATE TRIGGER approver_key_no_truncate BEFORE TRUNCATE ON cutter_governance.approver_key
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

CREATE FUNCTION cutter_governance.fn_key_fingerprint(p_public_key bytea) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'SHA256:' || substr(encode(sha256(p_public_key), 'hex'), 1, 16)
$$;

-- Trusts a key for an approver (admin only). The same key for the same approver again is a
-- no-op that returns 'already trusted'; a key already bound to another name is refused.
CREATE FUNCTION cutter_governance.fn_trust_key(p_approver text, p_public_key bytea,
                                               p_valid_from timestamptz, p_valid_until timestamptz,
                                               p_actor text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row cutter_governance.approver_key%ROWTYPE;
    v_fpr text := cutter_governance.fn_key_fingerprint(p_public_key);
BEGIN
    IF p_public_key IS NULL OR NOT cutter_governance.ed25519_public_key_ok(p_public_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('trust key %s: it is not a valid Ed25519 public key (or a weak, small-order one that would accept forgeries)', v_fpr);
    END IF;
    IF p_approver IS NULL OR btrim(p_approver) = '' OR p_approver ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = 'trust a key: the approver name is empty or has control characters';
    END IF;
    IF coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'trust a key: say who acts (actor)';
    END IF;
    SELECT * INTO v_row FROM cutter_governance.approver_key WHERE public_key = p_public_key;
    IF FOUND THEN
        IF v_row.approver <> p_approver THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('trust key %s for %s: it is already the key of %s', v_fpr, p_approver, v_row.approver);
        END IF;
        IF v_row.revoked_at IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('trust key %s: it was revoked at %s and cannot be trusted again; make a new key', v_fpr, v_row.revoked_at);
        END IF;
        RETURN 'already trusted';
    END IF;
    -- By default a key is valid for approvals signed from now, less the clock skew the
    -- policy allows (a signing time has whole seconds, and the signer's clock may lag).
    INSERT INTO cutter_governance.approver_key (public_key, fingerprint, approver, valid_from, valid_until, actor)
    VALUES (p_public_key, v_fpr, p_approver,
            coalesce(p_valid_from, clock_timestamp() - (SELECT max_clock_skew FROM cutter_governance.policy) - interval '1 second'),
            p_valid_until, p_actor);
    INSERT INTO cutter_governance.approver_key_log (fingerprint, approver, action, actor)
    VALUES (v_fpr, p_approver, 'trusted', p_actor);
    RETURN 'trusted';
END
$$;

-- Revokes a key (admin only): approvals it signed are refused from now on, even those signed
-- before. Returns whether a key was revoked.
CREATE FUNCTION cutter_governance.fn_revoke_key(p_public_key bytea, p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row cutter_governance.approver_key%ROWTYPE;
BEGIN
    IF coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'revoke a key: say who acts (actor)';
    END IF;
    UPDATE cutter_governance.approver_key SET revoked_at = clock_timestamp()
    WHERE public_key = p_public_key AND revoked_at IS NULL
    RETURNING * INTO v_row;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO cutter_governance.approver_key_log (fingerprint, approver, action, actor)
    VALUES (v_row.fingerprint, v_row.approver, 'revoked', p_actor);
    RETURN true;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- The database's record of each live run. Begun by the run itself (exec, armed); its source
-- pin and protected flag come from the registry, its payload is recorded once at cutplan.

CREATE TABLE cutter_governance.run (
    run_id         text PRIMARY KEY CHECK (run_id ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$'),
    document_id    text NOT NULL REFERENCES cutter_governance.source_registry (document_id),
    kb_id          uuid NOT NULL,
    source_sha256  text NOT NULL CHECK (source_sha256 ~ '^[0-9a-f]{64}$'),
    protected      boolean NOT NULL,
    payload_sha256 text CHECK (payload_sha256 ~ '^[0-9a-f]{64}$'),
    unit_count     integer CHECK (unit_count >= 0),
    actor          text NOT NULL CHECK (btrim(actor) <> ''),
    db_user        text NOT NULL DEFAULT session_user,
    cutter_version text NOT NULL,
    cutter_commit  text NOT NULL,
    begun_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    planned_at     timestamptz,
    CHECK ((payload_sha256 IS NULL) = (unit_count IS NULL) AND (payload_sha256 IS NULL) = (planned_at IS NULL))
);
CREATE INDEX run_document_idx ON cutter_governance.run (document_id);

-- A run row changes once: its plan is recorded. Nothing else of it ever changes.
CREATE FUNCTION cutter_governance.tg_run_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR (NEW.run_id, NEW.document_id, NEW.kb_id, NEW.source_sha256, NEW.protected, NEW.actor,
           NEW.db_user, NEW.cutter_version, NEW.cutter_commit, NEW.begun_at)
          IS DISTINCT FROM
          (OLD.run_id, OLD.document_id, OLD.kb_id, OLD.source_sha256, OLD.protected, OLD.actor,
           OLD.db_user, OLD.cutter_version, OLD.cutter_commit, OLD.begun_at)
       OR OLD.payload_sha256 IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('run %s: the record is immutable once its plan is recorded (%s refused)', OLD.run_id, TG_OP);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER run_guard BEFORE UPDATE OR DELETE ON cutter_governance.run
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_run_guard();
CREATE TRIGGER run_no_truncate BEFORE TRUNCATE ON cutter_governance.run
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- ---------------------------------------------------------------------------------------------
-- Arming: written only through fn_arm_run, timed by the server, capped by the policy, logged.

ALTER TABLE cutter_governance.kill_switch_arming
    ADD COLUMN actor   text,
    ADD COLUMN db_user text NOT NULL DEFAULT session_user;

CREATE TABLE cutter_governance.kill_switch_log (
    log_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id     text NOT NULL,
    action     text NOT NULL CHECK (action IN ('armed', 'disarmed')),
    expires_at timestamptz,
    actor      text NOT NULL,
    logged_by  text NOT NULL DEFAULT session_user,
    logged_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER kill_switch_log_append_only BEFORE UPDATE OR DELETE ON cutter_governance.kill_switch_log
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER kill_switch_log_no_truncate BEFORE TRUNCATE ON cutter_governance.kill_switch_log
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- Whoever writes an arming row (even the owner, by hand): the server's clock is the start and
-- the policy's ceiling bounds the end.
CREATE FUNCTION cutter_governance.tg_arming_capped() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_max interval := (SELECT max_arm_ttl FROM cutter_governance.policy);
BEGIN
    NEW.armed_at := clock_timestamp();
    IF NEW.expires_at <= NEW.armed_at THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('arm run %s: the expiry %s is not in the future of the server clock %s', NEW.run_id, NEW.expires_at, NEW.armed_at);
    END IF;
    IF NEW.expires_at > NEW.armed_at + coalesce(v_max, interval '4 hours') THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('arm run %s: at most %s at a time (the knowledge base''s policy.max_arm_ttl)', NEW.run_id, coalesce(v_max, interval '4 hours'));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER kill_switch_arming_capped BEFORE INSERT OR UPDATE ON cutter_governance.kill_switch_arming
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_arming_capped();

-- Arms a run for p_ttl from the server's now (admin only); returns the expiry.
CREATE FUNCTION cutter_governance.fn_arm_run(p_run_id text, p_ttl interval, p_actor text)
RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_expires timestamptz := clock_timestamp() + p_ttl;
BEGIN
    IF coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = format('arm run %s: say who acts (actor)', p_run_id);
    END IF;
    IF p_ttl IS NULL OR p_ttl <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = format('arm run %s: the duration must be positive', p_run_id);
    END IF;
    INSERT INTO cutter_governance.kill_switch_arming (run_id, armed_at, expires_at, actor)
    VALUES (p_run_id, clock_timestamp(), v_expires, p_actor)
    ON CONFLICT (run_id) DO UPDATE SET armed_at = EXCLUDED.armed_at, expires_at = EXCLUDED.expires_at,
                                       actor = EXCLUDED.actor, db_user = EXCLUDED.db_user
    RETURNING expires_at INTO v_expires;
    INSERT INTO cutter_governance.kill_switch_log (run_id, action, expires_at, actor)
    VALUES (p_run_id, 'armed', v_expires, p_actor);
    RETURN v_expires;
END
$$;

-- The expiry of a run's arming if it is armed now (the server's clock), else NULL.
CREATE FUNCTION cutter_governance.fn_arming_expiry(p_run_id text) RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.expires_at FROM cutter_governance.kill_switch_arming a
    WHERE a.run_id = p_run_id AND a.expires_at > clock_timestamp()
$$;

-- Disarms a run (admin and exec: turning writes off is always safe). Returns whether it was armed.
CREATE FUNCTION cutter_governance.fn_disarm_run(p_run_id text, p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM cutter_governance.kill_switch_arming WHERE run_id = p_run_id;
    IF FOUND THEN
        INSERT INTO cutter_governance.kill_switch_log (run_id, action, actor)
        VALUES (p_run_id, 'disarmed', coalesce(nullif(btrim(p_actor), ''), session_user));
        RETURN true;
    END IF;
    RETURN false;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Evidence columns: who acted, under which approval, why.

ALTER TABLE cutter_governance.document_lock_log ADD COLUMN actor text;

ALTER TABLE public.iu_lifecycle_log
    ADD COLUMN reason          text,
    ADD COLUMN approval_gate   text CHECK (approval_gate IN ('SG_2', 'SG_C')),
    ADD COLUMN key_fingerprint text,
    ADD COLUMN actor           text,
    ADD COLUMN db_user         text NOT NULL DEFAULT session_user;

-- The SG_1 row is now written by leg A itself, before the change set exists.
ALTER TABLE cutter_governance.approval_signature
    DROP CONSTRAINT approval_signature_run_id_fkey,
    DROP CONSTRAINT approval_signature_gate_check,
    ADD CONSTRAINT approval_signature_gate_check CHECK (gate IN ('SG_1', 'SG_2', 'SG_C')),
    ADD COLUMN signing_format     text,
    ADD COLUMN key_fingerprint    text,
    ADD COLUMN review_decision_id text,
    ADD COLUMN protected_allowance text,
    ADD COLUMN reason             text,
    ADD COLUMN batch_id           text,
    ADD COLUMN verified_at        timestamptz,
    ADD COLUMN actor              text,
    ADD COLUMN db_user            text NOT NULL DEFAULT session_user;

ALTER TABLE cutter_governance.review_decision
    DROP CONSTRAINT review_decision_run_id_fkey,
    ADD COLUMN gate text CHECK (gate IN ('SG_2', 'SG_C'));

-- Leg A's change set is bound to the transaction that creates it.
ALTER TABLE cutter_governance.cut_change_set ADD COLUMN created_xid xid8;

-- ---------------------------------------------------------------------------------------------
-- Internal checks (SECURITY DEFINER helpers; no role but the owner may call them directly).

-- The run, armed, for this document; with p_need_lock, holding the document's lock.
CREATE FUNCTION cutter_governance.fn_require_run(p_run_id text, p_document_id text, p_need_lock boolean)
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
    IF p_need_lock AND NOT EXISTS (SELECT 1 FROM cutter_governance.document_lock l
                                   WHERE l.document_id = p_document_id AND l.run_id = p_run_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s does not hold the lock of document %s', p_run_id, p_document_id);
    END IF;
    RETURN v_run;
END
$$;

-- A review decision id as it is compared: trimmed and lower-cased, from a small alphabet, so
-- `RD-1`, ` rd-1 ` and `Rd-1` are one decision.
CREATE FUNCTION cutter_governance.fn_normalize_review_decision(p_id text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text := lower(btrim(coalesce(p_id, '')));
BEGIN
    IF v !~ '^[a-z0-9][a-z0-9._:/-]{0,127}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK004',
            MESSAGE = format('review decision id %s: use 1 to 128 of a-z, 0-9, ''.'', ''_'', '':'', ''/'', ''-'' (case does not count)', quote_literal(coalesce(p_id, '')));
    END IF;
    RETURN v;
END
$$;

-- field(s) of the canonical signing forms: byte length, ':', the bytes, '\n'.
CREATE FUNCTION cutter_governance.fn_sign_field(p text) RETURNS bytea
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT convert_to(octet_length(convert_to(p, 'UTF8'))::text || ':', 'UTF8')
           || convert_to(p, 'UTF8') || '\x0a'::bytea
$$;

CREATE FUNCTION cutter_governance.fn_sign_opt(p text) RETURNS bytea
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN p IS NULL THEN '\x2d0a'::bytea ELSE cutter_governance.fn_sign_field(p) END
$$;

-- What an approval verified to: the key that signed it and its normalised review decision.
CREATE TYPE cutter_governance.approval_verdict AS (
    key_fingerprint    text,
    review_decision_id text,
    signed_at          timestamptz,
    approver           text,
    batch_id           text,
    replay             boolean
);

-- Checks an approval (as JSON, the fields a person signed) for a gate of a run, entirely on
-- server state: the run's own document, pins and payload, the trusted keys, the policy's time
-- window on the server clock, single-use review decisions. Raises CK004 with the reason on any
-- refusal. A repeat of the approval already recorded for this run and gate (a resumed crash)
-- is a replay: it verifies again but is not refused for having expired since.
--
-- Single approvals are `cutter.approval-signing.v2`:
--   "cutter.approval-signing.v2\n" field(gate) field(run_id) field(document_id)
--   field(source_sha256) field(payload_sha256) field(signed_utc) field(allowance)
--   field(approver) opt(review_decision_id) opt(protected_allowance) opt(reason)
--   field(self_approved)
-- Batch approvals are `cutter.batch-approval-signing.v1` (see cutter-core batch_approval.rs),
-- and this run must be one of the listed (run_id, payload_sha256) pairs.
CREATE FUNCTION cutter_governance.fn_verify_approval(p_run cutter_governance.run, p_gate text, p_approval jsonb)
RETURNS cutter_governance.approval_verdict
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
    IF v_format = 'cutter.approval-signing.v2' THEN
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
        v_msg := convert_to('cutter.approval-signing.v2', 'UTF8') || '\x0a'::bytea
            || cutter_governance.fn_sign_field(p_gate)
            || cutter_governance.fn_sign_field(p_run.run_id)
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
    ELSIF v_format = 'cutter.batch-approval-signing.v1' THEN
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
        v_msg := convert_to('cutter.batch-approval-signing.v1', 'UTF8') || '\x0a'::bytea
            || cutter_governance.fn_sign_field(p_gate)
            || cutter_governance.fn_sign_field(v_batch_id)
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
            MESSAGE = format('the approval is signed in format %s; this knowledge base verifies cutter.approval-signing.v2 (re-sign it with this cutter) and cutter.batch-approval-signing.v1',
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
      AND k.valid_from <= v_signed AND (k.valid_until IS NULL OR k.valid_until > now())
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
        IF v_signed > now() + v_policy.max_clock_skew THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the approval was signed at %s, in the future of the server clock (%s)', v_signed_text, now());
        END IF;
        IF now() > v_signed + v_ttl THEN
            RAISE EXCEPTION USING ERRCODE = 'CK004',
                MESSAGE = format('the %s approval signed at %s expired after %s (server clock %s)', p_gate, v_signed_text, v_ttl, now());
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

-- Verifies the approval and records it (signature row, review decision). A replay records
-- nothing new.
CREATE FUNCTION cutter_governance.fn_accept_approval(p_run cutter_governance.run, p_gate text,
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
    VALUES (p_run.run_id, p_gate, v.approver, coalesce(v_doc_sha, ''), v.signed_at, now(), false,
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

-- The canonical payload (`cutter.payload.v1`, see cutter-core plan.rs) of the units a run
-- wrote, in plan order, hashed where the rows are. Returns the sha and the number of units.
CREATE FUNCTION cutter_governance.fn_written_payload(p_run_id text, p_document_id text,
                                                     OUT payload_sha256 text, OUT units bigint)
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
           count(*)
    FROM public.information_unit u
    JOIN public.unit_version v
      ON v.document_id = u.document_id AND v.unit_key = u.unit_key AND v.version_no = 1
     AND v.created_by_run = u.created_by_run
    WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
$$;

-- At the commit of leg A: the units written are exactly the approved payload. Deferred, so it
-- sees every chunk; whoever commits a change set cannot skip it (SET CONSTRAINTS ... IMMEDIATE
-- only makes it fire before the units exist, which fails).
-- SECURITY DEFINER: a deferred trigger fires at COMMIT, outside the function that queued it,
-- as the committing session's role.
CREATE FUNCTION cutter_governance.tg_change_set_complete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w record;
BEGIN
    SELECT * INTO w FROM cutter_governance.fn_written_payload(NEW.run_id, NEW.document_id);
    IF w.units <> NEW.unit_count OR w.payload_sha256 <> NEW.payload_sha256 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('leg A of run %s: the %s units written hash to payload %s, the approved payload is %s with %s units; nothing is committed',
                             NEW.run_id, w.units, w.payload_sha256, NEW.payload_sha256, NEW.unit_count);
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER cut_change_set_complete AFTER INSERT ON cutter_governance.cut_change_set
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_change_set_complete();

-- ---------------------------------------------------------------------------------------------
-- The run's own functions (exec).

-- Begins a run: records it with the registry's pin and protected flag and this knowledge
-- base's id; returns them. A repeat for the same document returns the record (a resume after a
-- crash); a run id this knowledge base already knew otherwise is refused.
CREATE FUNCTION cutter_governance.fn_run_begin(p_run_id text, p_document_id text, p_actor text,
                                               p_cutter_version text, p_cutter_commit text)
RETURNS TABLE (kb_id uuid, source_sha256 text, protected boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v_reg cutter_governance.source_registry%ROWTYPE;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    SELECT * INTO v_run FROM cutter_governance.run r WHERE r.run_id = p_run_id;
    IF FOUND THEN
        IF v_run.document_id <> p_document_id THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s was begun for document %s, not %s', p_run_id, v_run.document_id, p_document_id);
        END IF;
        RETURN QUERY SELECT v_run.kb_id, v_run.source_sha256, v_run.protected;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM cutter_governance.document_lock_log g WHERE g.run_id = p_run_id)
       OR EXISTS (SELECT 1 FROM cutter_governance.cut_change_set c WHERE c.run_id = p_run_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run id %s is already known to this knowledge base; choose another', p_run_id);
    END IF;
    SELECT * INTO v_reg FROM cutter_governance.source_registry s WHERE s.document_id = p_document_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('document %s is not in the source registry; register it with `cutter source register FILE --document-id %s --title TITLE`', p_document_id, p_document_id);
    END IF;
    IF coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = format('begin run %s: say who acts (actor)', p_run_id);
    END IF;
    INSERT INTO cutter_governance.run (run_id, document_id, kb_id, source_sha256, protected, actor,
                                       cutter_version, cutter_commit)
    VALUES (p_run_id, p_document_id, (SELECT i.kb_id FROM cutter_governance.kb_identity i),
            v_reg.pinned_sha256, v_reg.protected, p_actor,
            coalesce(p_cutter_version, 'unknown'), coalesce(p_cutter_commit, 'unknown'))
    RETURNING * INTO v_run;
    RETURN QUERY SELECT v_run.kb_id, v_run.source_sha256, v_run.protected;
END
$$;

-- Records the plan a run will ask its approvers to sign: once; the same again is a no-op.
CREATE FUNCTION cutter_governance.fn_run_plan(p_run_id text, p_document_id text,
                                              p_payload_sha256 text, p_unit_count integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    IF v_run.payload_sha256 IS NOT NULL THEN
        IF v_run.payload_sha256 = p_payload_sha256 AND v_run.unit_count = p_unit_count THEN
            RETURN;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s already recorded payload %s (%s units); a run''s plan never changes', p_run_id, v_run.payload_sha256, v_run.unit_count);
    END IF;
    UPDATE cutter_governance.run SET payload_sha256 = p_payload_sha256, unit_count = p_unit_count,
                                     planned_at = clock_timestamp()
    WHERE run_id = p_run_id;
END
$$;

-- Claims the document for the run (armed, begun for this document). Returns whether the run
-- holds it now; never says who else does.
DROP FUNCTION cutter_governance.fn_lock_document(text, text);
CREATE FUNCTION cutter_governance.fn_lock_document(p_document_id text, p_run_id text, p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM cutter_governance.fn_require_run(p_run_id, p_document_id, false);
    LOOP
        INSERT INTO cutter_governance.document_lock (document_id, run_id)
        VALUES (p_document_id, p_run_id)
        ON CONFLICT (document_id) DO NOTHING;
        IF FOUND THEN
            INSERT INTO cutter_governance.document_lock_log (document_id, run_id, action, actor)
            VALUES (p_document_id, p_run_id, 'claimed', p_actor);
            RETURN true;
        END IF;
        -- Between a refused insert and this read the holder may release: try again.
        PERFORM 1 FROM cutter_governance.document_lock l WHERE l.document_id = p_document_id;
        IF FOUND THEN
            RETURN EXISTS (SELECT 1 FROM cutter_governance.document_lock l
                           WHERE l.document_id = p_document_id AND l.run_id = p_run_id);
        END IF;
    END LOOP;
END
$$;

-- Releases the run's own claim (armed), only when it leaves nothing behind: no draft of the
-- run remains (closed out, voided, reverted, or never written). Idempotent.
DROP FUNCTION cutter_governance.fn_unlock_document(text, text);
CREATE FUNCTION cutter_governance.fn_unlock_document(p_document_id text, p_run_id text, p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.document_lock l
                   WHERE l.document_id = p_document_id AND l.run_id = p_run_id) THEN
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

-- Clears a stale lock by hand (admin only), logged with the reason and the actor.
CREATE FUNCTION cutter_governance.fn_clear_document_lock(p_document_id text, p_run_id text,
                                                         p_reason text, p_actor text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF coalesce(btrim(p_reason), '') = '' OR coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'clear a lock: give the reason and the actor';
    END IF;
    DELETE FROM cutter_governance.document_lock WHERE document_id = p_document_id AND run_id = p_run_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO cutter_governance.document_lock_log (document_id, run_id, action, reason, actor)
    VALUES (p_document_id, p_run_id, 'cleared', p_reason, p_actor);
    RETURN true;
END
$$;

-- Writes one chunk of leg A (internal).
CREATE FUNCTION cutter_governance.fn_iu_insert_chunk(
    p_run_id text, p_document_id text, p_offset integer,
    p_keys text[], p_parents text[], p_ordinals integer[], p_unit_kinds text[],
    p_section_types text[], p_titles text[], p_bodies text[], p_body_sha256s text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_n integer := coalesce(cardinality(p_keys), 0);
BEGIN
    IF coalesce(cardinality(p_parents), 0) <> v_n OR coalesce(cardinality(p_ordinals), 0) <> v_n
       OR coalesce(cardinality(p_unit_kinds), 0) <> v_n OR coalesce(cardinality(p_section_types), 0) <> v_n
       OR coalesce(cardinality(p_titles), 0) <> v_n OR coalesce(cardinality(p_bodies), 0) <> v_n
       OR coalesce(cardinality(p_body_sha256s), 0) <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'the unit arrays differ in length';
    END IF;
    IF v_n = 0 THEN
        RETURN 0;
    END IF;
    IF p_offset IS NULL OR p_offset < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'a chunk offset must be zero or more';
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

DROP FUNCTION public.fn_iu_create(text, text, text, integer, text[], text[], integer[], text[],
                                  text[], text[], text[], text[]);
DROP FUNCTION public.fn_iu_create_more(text, text, integer, text[], text[], integer[], text[],
                                       text[], text[], text[], text[]);

-- Leg A, first chunk: under a verified SG_1 approval of exactly the recorded payload, creates
-- the change set bound to this transaction. A repeat of a committed run answers
-- 'already_present' and writes nothing.
CREATE FUNCTION public.fn_iu_create(
    p_run_id text, p_document_id text, p_approval jsonb, p_actor text, p_total integer,
    p_keys text[], p_parents text[], p_ordinals integer[], p_unit_kinds text[],
    p_section_types text[], p_titles text[], p_bodies text[], p_body_sha256s text[])
RETURNS TABLE (result text, created bigint, already_present bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v_existing cutter_governance.cut_change_set%ROWTYPE;
    v_reg cutter_governance.source_registry%ROWTYPE;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    -- Two sessions repeating the same run serialize here, so exactly one of them creates.
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    SELECT * INTO v_existing FROM cutter_governance.cut_change_set c WHERE c.run_id = p_run_id;
    IF FOUND THEN
        RETURN QUERY SELECT 'already_present'::text, 0::bigint, v_existing.unit_count::bigint;
        RETURN;
    END IF;
    IF v_run.payload_sha256 IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s has no recorded plan (cutplan) to write', p_run_id);
    END IF;
    IF p_total IS DISTINCT FROM v_run.unit_count THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s recorded %s units at cutplan, leg A announces %s', p_run_id, v_run.unit_count, p_total);
    END IF;
    SELECT * INTO v_reg FROM cutter_governance.source_registry s WHERE s.document_id = p_document_id;
    IF v_reg.pinned_sha256 IS DISTINCT FROM v_run.source_sha256 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s was begun on pin %s, the registry now pins %s', p_run_id, v_run.source_sha256, v_reg.pinned_sha256);
    END IF;
    IF v_reg.protected AND NOT v_run.protected THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('document %s became protected after run %s began; start a new run', p_document_id, p_run_id);
    END IF;
    PERFORM cutter_governance.fn_accept_approval(v_run, 'SG_1', p_approval, p_actor);
    INSERT INTO cutter_governance.cut_change_set (run_id, document_id, payload_sha256, unit_count, created_xid)
    VALUES (p_run_id, p_document_id, v_run.payload_sha256, v_run.unit_count, pg_current_xact_id());
    PERFORM cutter_governance.fn_iu_insert_chunk(p_run_id, p_document_id, 0, p_keys, p_parents,
        p_ordinals, p_unit_kinds, p_section_types, p_titles, p_bodies, p_body_sha256s);
    RETURN QUERY SELECT 'created'::text, coalesce(cardinality(p_keys), 0)::bigint, 0::bigint;
END
$$;

-- Leg A, every further chunk: only in the transaction that created the run's change set.
CREATE FUNCTION public.fn_iu_create_more(
    p_run_id text, p_document_id text, p_offset integer,
    p_keys text[], p_parents text[], p_ordinals integer[], p_unit_kinds text[],
    p_section_types text[], p_titles text[], p_bodies text[], p_body_sha256s text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.cut_change_set c
                   WHERE c.run_id = p_run_id AND c.created_xid = pg_current_xact_id()) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: units are added only in the transaction that created its change set', p_run_id);
    END IF;
    RETURN cutter_governance.fn_iu_insert_chunk(p_run_id, p_document_id, p_offset, p_keys, p_parents,
        p_ordinals, p_unit_kinds, p_section_types, p_titles, p_bodies, p_body_sha256s);
END
$$;

-- Asks whether an approval would be accepted now, recording nothing: `resume` asks before it
-- moves the run through the gate, so a refusal leaves the run paused and the approval unused.
CREATE FUNCTION public.fn_check_approval(p_run_id text, p_document_id text, p_gate text, p_approval jsonb)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v cutter_governance.approval_verdict;
BEGIN
    SELECT * INTO v_run FROM cutter_governance.run r WHERE r.run_id = p_run_id;
    IF NOT FOUND OR v_run.document_id IS DISTINCT FROM p_document_id THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s of document %s was never begun in this knowledge base', p_run_id, p_document_id);
    END IF;
    v := cutter_governance.fn_verify_approval(v_run, p_gate, p_approval);
    RETURN v.key_fingerprint;
END
$$;

DROP FUNCTION public.fn_leg_b_record(text, text, text, text, bigint, text, text, jsonb, text, text,
                                     text, timestamptz, timestamptz, boolean, text);

-- Leg B: the manifest envelope, after leg A and its structural verify. Payload, source pin and
-- unit count come from the run's record; the SG_1 approval is already recorded by leg A.
CREATE FUNCTION public.fn_leg_b_record(p_run_id text, p_document_id text, p_backup_sha256 text,
                                       p_grant_sha256 text, p_manifest jsonb)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    IF EXISTS (SELECT 1 FROM cutter_governance.manifest_envelope m WHERE m.run_id = p_run_id) THEN
        RETURN 'already_present';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.cut_change_set c WHERE c.run_id = p_run_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s has no leg A change set for document %s', p_run_id, p_document_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.verify_result r
                   WHERE r.run_id = p_run_id AND r.phase = 'structural_verify' AND r.passed) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s has no passed structural verify to record leg B on', p_run_id);
    END IF;
    INSERT INTO cutter_governance.manifest_envelope (run_id, document_id, payload_sha256, source_sha256,
        unit_count, backup_sha256, grant_sha256, manifest)
    VALUES (p_run_id, p_document_id, v_run.payload_sha256, v_run.source_sha256, v_run.unit_count,
            p_backup_sha256, p_grant_sha256, p_manifest);
    RETURN 'created';
END
$$;

-- A verify result of the run (armed, begun); one per phase, a repeat must be equal.
CREATE OR REPLACE FUNCTION public.fn_record_verify(p_run_id text, p_phase text, p_passed boolean,
                                                  p_checked bigint, p_mismatches text[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row cutter_governance.verify_result%ROWTYPE;
    v_doc text;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    SELECT document_id INTO v_doc FROM cutter_governance.run WHERE run_id = p_run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s was never begun in this knowledge base', p_run_id);
    END IF;
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

DROP FUNCTION public.fn_iu_enact(text, text, text, text, text, timestamptz, timestamptz, boolean, text);

-- Draft → enacted for every draft the run created, under a verified SG_2 approval, after leg B
-- and both verifies passed; one lifecycle-log row each with the decision, key and actor.
CREATE FUNCTION public.fn_iu_enact(p_run_id text, p_document_id text, p_approval jsonb, p_actor text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v cutter_governance.approval_verdict;
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

DROP FUNCTION public.fn_iu_compensate(text, text, text[], text[]);

-- Compensation: retire (with a lifecycle-log row) or hard-delete drafts, only among the units
-- this run created. Retiring an enacted unit needs a verified compensation approval (SG_C)
-- whose reason is the one given; drafts never enacted need only the arming. Every log row
-- carries the reason, and the decision id when there is an approval.
CREATE FUNCTION public.fn_iu_compensate(p_run_id text, p_document_id text,
                                        p_retire_keys text[], p_delete_keys text[],
                                        p_reason text, p_approval jsonb, p_actor text)
RETURNS TABLE (retired bigint, deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v cutter_governance.approval_verdict;
    v_retired bigint;
    v_deleted bigint;
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

-- cutter knowledge base, version 1: the unit tables, the governance schema, the immutability
-- triggers and the write functions.
--
-- Roles are not named here: their names are configurable, so `provision` (Rust) creates them,
-- hands every object below to the admin role and grants the rest. What this file guarantees
-- does not depend on grants: triggers reject changes to immutable rows whoever asks, and every
-- write function refuses unless the run is armed.
--
-- Custom SQLSTATEs (the adapter translates them):
--   CK001  the kill-switch is off for the run (no unexpired arming row)
--   CK002  a cutter rule refused the write (the message says which)
--   CK003  an immutable or append-only row was to be changed

CREATE SCHEMA cutter_governance;

-- The source registry: a document must be registered (with its pinned sha256) before units of
-- it can exist.
CREATE TABLE cutter_governance.source_registry (
    document_id   text PRIMARY KEY CHECK (document_id <> ''),
    title         text NOT NULL,
    pinned_sha256 text NOT NULL CHECK (pinned_sha256 ~ '^[0-9a-f]{64}$'),
    protected     boolean NOT NULL DEFAULT false,
    registered_at timestamptz NOT NULL DEFAULT now()
);

-- Run-scoped arming. Only the admin role may write here; the write functions read it.
CREATE TABLE cutter_governance.kill_switch_arming (
    run_id     text PRIMARY KEY CHECK (run_id <> ''),
    armed_at   timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CHECK (expires_at > armed_at)
);

CREATE TABLE public.information_unit (
    document_id      text NOT NULL REFERENCES cutter_governance.source_registry (document_id),
    unit_key         text NOT NULL CHECK (unit_key <> ''),
    parent_key       text,
    ordinal          integer NOT NULL CHECK (ordinal >= 1),
    -- The unit's index in the cut plan: reading back in this order gives plan order (parents
    -- before children, siblings by ordinal) without re-deriving the tree.
    plan_position    integer NOT NULL CHECK (plan_position >= 0),
    unit_kind        text NOT NULL CHECK (unit_kind <> ''),
    section_type     text NOT NULL CHECK (section_type <> ''),
    title            text NOT NULL,
    lifecycle_status text NOT NULL DEFAULT 'draft'
        CHECK (lifecycle_status IN ('draft', 'enacted', 'retired')),
    created_by_run   text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, unit_key),
    FOREIGN KEY (document_id, parent_key)
        REFERENCES public.information_unit (document_id, unit_key)
);
CREATE INDEX information_unit_run_idx ON public.information_unit (created_by_run);

CREATE TABLE public.unit_version (
    document_id    text NOT NULL,
    unit_key       text NOT NULL,
    version_no     integer NOT NULL DEFAULT 1 CHECK (version_no >= 1),
    body           text NOT NULL,
    -- The database recomputes the hash, so a body and its hash can never disagree.
    body_sha256    text NOT NULL
        CHECK (body_sha256 = encode(sha256(convert_to(body, 'UTF8')), 'hex')),
    created_by_run text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, unit_key, version_no),
    FOREIGN KEY (document_id, unit_key) REFERENCES public.information_unit (document_id, unit_key)
);

CREATE TABLE public.iu_lifecycle_log (
    log_id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id             text NOT NULL,
    document_id        text NOT NULL,
    unit_key           text NOT NULL,
    from_status        text NOT NULL CHECK (from_status IN ('draft', 'enacted', 'retired')),
    to_status          text NOT NULL CHECK (to_status IN ('draft', 'enacted', 'retired')),
    review_decision_id text,
    logged_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (document_id, unit_key) REFERENCES public.information_unit (document_id, unit_key)
);
CREATE INDEX iu_lifecycle_log_unit_idx ON public.iu_lifecycle_log (document_id, unit_key);

CREATE TABLE cutter_governance.cut_change_set (
    run_id         text PRIMARY KEY CHECK (run_id <> ''),
    document_id    text NOT NULL REFERENCES cutter_governance.source_registry (document_id),
    payload_sha256 text NOT NULL,
    unit_count     integer NOT NULL CHECK (unit_count >= 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cutter_governance.cut_change_set_affected_row (
    run_id      text NOT NULL REFERENCES cutter_governance.cut_change_set (run_id),
    table_name  text NOT NULL CHECK (table_name IN ('public.information_unit', 'public.unit_version')),
    document_id text NOT NULL,
    unit_key    text NOT NULL,
    action      text NOT NULL CHECK (action IN ('insert')),
    PRIMARY KEY (run_id, table_name, unit_key)
);

CREATE TABLE cutter_governance.manifest_envelope (
    run_id         text PRIMARY KEY REFERENCES cutter_governance.cut_change_set (run_id),
    document_id    text NOT NULL,
    payload_sha256 text NOT NULL,
    source_sha256  text NOT NULL,
    unit_count     bigint NOT NULL,
    backup_sha256  text NOT NULL,
    grant_sha256   text NOT NULL,
    manifest       jsonb NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cutter_governance.approval_signature (
    run_id          text NOT NULL REFERENCES cutter_governance.cut_change_set (run_id),
    gate            text NOT NULL CHECK (gate IN ('SG_1', 'SG_2')),
    approver        text NOT NULL,
    document_sha256 text NOT NULL,
    signed_at       timestamptz NOT NULL,
    accepted_at     timestamptz NOT NULL,
    self_approved   boolean NOT NULL,
    PRIMARY KEY (run_id, gate)
);

-- The id is the primary key: a review decision can be used by exactly one run.
CREATE TABLE cutter_governance.review_decision (
    review_decision_id text PRIMARY KEY CHECK (review_decision_id <> ''),
    run_id             text NOT NULL REFERENCES cutter_governance.cut_change_set (run_id),
    document_id        text NOT NULL,
    decided_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cutter_governance.verify_result (
    verify_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id      text NOT NULL,
    phase       text NOT NULL,
    passed      boolean NOT NULL,
    checked     bigint NOT NULL,
    mismatches  text[] NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- ---------------------------------------------------------------------------------------------
-- Immutability. Triggers, not grants: they hold for the owner and superusers too.

CREATE FUNCTION cutter_governance.tg_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'CK003',
        MESSAGE = format('%s.%s is append-only: %s refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP);
END
$$;

CREATE TRIGGER iu_lifecycle_log_append_only BEFORE UPDATE OR DELETE ON public.iu_lifecycle_log
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER iu_lifecycle_log_no_truncate BEFORE TRUNCATE ON public.iu_lifecycle_log
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER cut_change_set_append_only BEFORE UPDATE OR DELETE ON cutter_governance.cut_change_set
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER affected_row_append_only BEFORE UPDATE OR DELETE ON cutter_governance.cut_change_set_affected_row
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER manifest_envelope_append_only BEFORE UPDATE OR DELETE ON cutter_governance.manifest_envelope
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER approval_signature_append_only BEFORE UPDATE OR DELETE ON cutter_governance.approval_signature
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER review_decision_append_only BEFORE UPDATE OR DELETE ON cutter_governance.review_decision
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER verify_result_append_only BEFORE UPDATE OR DELETE ON cutter_governance.verify_result
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();

-- A unit version is never updated; it may only be deleted together with its unit while that
-- unit is still a draft (hard compensation of a run that never got enacted).
CREATE FUNCTION cutter_governance.tg_unit_version_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM public.information_unit u
        WHERE u.document_id = OLD.document_id AND u.unit_key = OLD.unit_key
          AND u.lifecycle_status = 'draft'
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'CK003',
        MESSAGE = format('unit version %s/%s v%s is immutable: %s refused',
                         OLD.document_id, OLD.unit_key, OLD.version_no, TG_OP);
END
$$;
CREATE TRIGGER unit_version_immutable BEFORE UPDATE OR DELETE ON public.unit_version
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_unit_version_immutable();

-- An information unit changes only its lifecycle status, only forward, and only inside the
-- write functions (which set `cutter.lifecycle_writer` for their own transaction). Only drafts
-- can be deleted.
CREATE FUNCTION cutter_governance.tg_information_unit_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.lifecycle_status = 'draft'
           AND coalesce(current_setting('cutter.lifecycle_writer', true), '') = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit %s/%s (%s) cannot be deleted outside compensation of a draft',
                             OLD.document_id, OLD.unit_key, OLD.lifecycle_status);
    END IF;
    IF (NEW.document_id, NEW.unit_key, NEW.parent_key, NEW.ordinal, NEW.plan_position,
        NEW.unit_kind, NEW.section_type, NEW.title, NEW.created_by_run, NEW.created_at)
       IS DISTINCT FROM
       (OLD.document_id, OLD.unit_key, OLD.parent_key, OLD.ordinal, OLD.plan_position,
        OLD.unit_kind, OLD.section_type, OLD.title, OLD.created_by_run, OLD.created_at) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit %s/%s is immutable except for its lifecycle status',
                             OLD.document_id, OLD.unit_key);
    END IF;
    IF coalesce(current_setting('cutter.lifecycle_writer', true), '') <> 'on' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit %s/%s: the lifecycle status changes only through the cutter functions',
                             OLD.document_id, OLD.unit_key);
    END IF;
    IF NOT ((OLD.lifecycle_status = 'draft' AND NEW.lifecycle_status IN ('enacted', 'retired'))
            OR (OLD.lifecycle_status = 'enacted' AND NEW.lifecycle_status = 'retired')) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit %s/%s: %s -> %s is not a lifecycle transition',
                             OLD.document_id, OLD.unit_key, OLD.lifecycle_status, NEW.lifecycle_status);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER information_unit_guard BEFORE UPDATE OR DELETE ON public.information_unit
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_information_unit_guard();
CREATE TRIGGER information_unit_no_truncate BEFORE TRUNCATE ON public.information_unit
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER unit_version_no_truncate BEFORE TRUNCATE ON public.unit_version
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- ---------------------------------------------------------------------------------------------
-- The kill-switch, enforced inside the database.

CREATE FUNCTION cutter_governance.fn_run_armed(p_run_id text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM cutter_governance.kill_switch_arming a
        WHERE a.run_id = p_run_id AND a.expires_at > clock_timestamp()
    )
$$;

CREATE FUNCTION cutter_governance.fn_require_armed(p_run_id text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT cutter_governance.fn_run_armed(p_run_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK001',
            MESSAGE = format('kill-switch is off for run %s', p_run_id);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Write functions. SECURITY DEFINER (they run as the admin role, which owns the tables) with a
-- fixed search_path, so the exec role needs EXECUTE and nothing else.

-- Leg A, set-based: one call inserts every unit, its version, the change set and the affected
-- rows. Returns 'created' or, for a run id already cut, 'already_present' and changes nothing.
CREATE FUNCTION public.fn_iu_create(
    p_run_id text, p_document_id text, p_payload_sha256 text,
    p_keys text[], p_parents text[], p_ordinals integer[], p_unit_kinds text[],
    p_section_types text[], p_titles text[], p_bodies text[], p_body_sha256s text[])
RETURNS TABLE (result text, created bigint, already_present bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_n integer := coalesce(cardinality(p_keys), 0);
    v_existing cutter_governance.cut_change_set%ROWTYPE;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    -- Two sessions repeating the same run serialize here, so exactly one of them creates.
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    SELECT * INTO v_existing FROM cutter_governance.cut_change_set WHERE run_id = p_run_id;
    IF FOUND THEN
        IF v_existing.document_id <> p_document_id THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s already cut document %s', p_run_id, v_existing.document_id);
        END IF;
        RETURN QUERY SELECT 'already_present'::text, 0::bigint, v_existing.unit_count::bigint;
        RETURN;
    END IF;
    IF coalesce(cardinality(p_parents), 0) <> v_n OR coalesce(cardinality(p_ordinals), 0) <> v_n
       OR coalesce(cardinality(p_unit_kinds), 0) <> v_n OR coalesce(cardinality(p_section_types), 0) <> v_n
       OR coalesce(cardinality(p_titles), 0) <> v_n OR coalesce(cardinality(p_bodies), 0) <> v_n
       OR coalesce(cardinality(p_body_sha256s), 0) <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'the unit arrays differ in length';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.source_registry WHERE document_id = p_document_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('document %s is not registered', p_document_id);
    END IF;

    INSERT INTO public.information_unit (document_id, unit_key, parent_key, ordinal, plan_position,
                                         unit_kind, section_type, title, lifecycle_status, created_by_run)
    SELECT p_document_id, k, p, o, (i - 1)::integer, uk, st, t, 'draft', p_run_id
    FROM unnest(p_keys, p_parents, p_ordinals, p_unit_kinds, p_section_types, p_titles)
         WITH ORDINALITY AS u(k, p, o, uk, st, t, i);

    INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256, created_by_run)
    SELECT p_document_id, k, 1, b, h, p_run_id
    FROM unnest(p_keys, p_bodies, p_body_sha256s) AS u(k, b, h);

    INSERT INTO cutter_governance.cut_change_set (run_id, document_id, payload_sha256, unit_count)
    VALUES (p_run_id, p_document_id, p_payload_sha256, v_n);

    INSERT INTO cutter_governance.cut_change_set_affected_row (run_id, table_name, document_id, unit_key, action)
    SELECT p_run_id, t.name, p_document_id, k, 'insert'
    FROM unnest(p_keys) AS u(k)
    CROSS JOIN (VALUES ('public.information_unit'), ('public.unit_version')) AS t(name);

    RETURN QUERY SELECT 'created'::text, v_n::bigint, 0::bigint;
END
$$;

-- Draft → enacted for every draft the run created, one lifecycle-log row each. The review
-- decision id is recorded here and belongs to this run for ever.
CREATE FUNCTION public.fn_iu_enact(p_run_id text, p_document_id text, p_review_decision_id text)
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
        INSERT INTO cutter_governance.review_decision (review_decision_id, run_id, document_id)
        VALUES (p_review_decision_id, p_run_id, p_document_id);
    END IF;

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

-- Compensation: retire (with a lifecycle-log row) or hard-delete drafts, only among the units
-- this run created; keys of other runs are skipped, as the core's plan expects.
CREATE FUNCTION public.fn_iu_compensate(p_run_id text, p_document_id text,
                                        p_retire_keys text[], p_delete_keys text[])
RETURNS TABLE (retired bigint, deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_retired bigint;
    v_deleted bigint;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
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
        INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status)
        SELECT p_run_id, p_document_id, unit_key, from_status, 'retired' FROM moved
        RETURNING 1
    )
    SELECT count(*) INTO v_retired FROM logged;

    DELETE FROM public.unit_version v
    USING public.information_unit u
    WHERE v.document_id = p_document_id AND u.document_id = v.document_id AND u.unit_key = v.unit_key
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

-- Leg B: the manifest envelope and the SG_1 signature row. A repeat returns 'already_present'.
CREATE FUNCTION public.fn_leg_b_record(
    p_run_id text, p_document_id text, p_payload_sha256 text, p_source_sha256 text,
    p_unit_count bigint, p_backup_sha256 text, p_grant_sha256 text, p_manifest jsonb,
    p_gate text, p_approver text, p_approval_sha256 text, p_signed_at timestamptz,
    p_accepted_at timestamptz, p_self_approved boolean)
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
        signed_at, accepted_at, self_approved)
    VALUES (p_run_id, p_gate, p_approver, p_approval_sha256, p_signed_at, p_accepted_at, p_self_approved);
    RETURN 'created';
END
$$;

CREATE FUNCTION public.fn_record_verify(p_run_id text, p_phase text, p_passed boolean,
                                        p_checked bigint, p_mismatches text[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    INSERT INTO cutter_governance.verify_result (run_id, phase, passed, checked, mismatches)
    VALUES (p_run_id, p_phase, p_passed, p_checked, coalesce(p_mismatches, '{}'));
END
$$;

-- Per-document fingerprints for the "other documents unchanged" check: deterministic, computed
-- where the rows are, so only one short row per document crosses the wire.
CREATE VIEW cutter_governance.document_fingerprint AS
SELECT u.document_id,
       count(*)::bigint AS units,
       encode(sha256(convert_to(string_agg(
           u.unit_key || chr(31) || coalesce(u.parent_key, '') || chr(31) || u.ordinal::text
           || chr(31) || coalesce(v.body_sha256, '') || chr(31) || u.lifecycle_status,
           chr(10) ORDER BY u.unit_key COLLATE "C"), 'UTF8')), 'hex') AS content_sha256
FROM public.information_unit u
LEFT JOIN public.unit_version v
       ON v.document_id = u.document_id AND v.unit_key = u.unit_key AND v.version_no = 1
GROUP BY u.document_id;

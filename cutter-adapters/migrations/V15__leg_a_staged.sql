-- V15: leg A at close to COPY speed, and plans that do not depend on stale statistics (issue 18).
--
-- 1. Leg A stages its writes with a binary COPY into cutter_governance.leg_a_stage, an
--    admin-owned UNLOGGED table into which the exec role may only INSERT, and only into the
--    columns that describe a write: the transaction that staged a row is the column default
--    (created_xid), which exec cannot give. It can neither read, change nor delete a staged row,
--    its own or another session's. One call of public.fn_iu_change_staged then does, inside one
--    SECURITY DEFINER function and the caller's transaction, everything fn_iu_change did: the
--    run armed and holding its document's lock (fn_require_run), idempotent per run id (a repeat
--    answers 'already_present' and writes nothing), the pin, the protected flag and the verified
--    SG_1 over exactly the recorded payload; then it takes only the rows staged by this very
--    transaction for this run, requires exactly the plan's number of writes at positions
--    0..n-1, checks every write as fn_iu_change_chunk does (set-based, in one pass), and writes
--    them with one INSERT ... SELECT per table. The change set is bound to the transaction as
--    before, so V11's deferred trigger recomputes the canonical payload from the written rows at
--    commit. Staged rows never become units any other way, and the call empties the stage of
--    what it can see (its own rows and any committed leftovers), so nothing lingers.
--
--    The audit trail of a write is its row's created_by_run (and change_position): leg A has
--    not written cut_change_set_affected_row rows since V13, and does not now.
--
-- 2. Functions that join a run's new rows to a document are planned without nested loops (and
--    sort in memory: work_mem 64 MB for the call): with
--    statistics taken before a large document was written (a new knowledge base, autovacuum not
--    yet run), the planner believes the document has a row or two and a nested loop over it is
--    quadratic (V13 did this for fn_written_payload and fn_iu_enact; the per-chunk checks of
--    fn_iu_change_chunk took minutes on a 100,000-unit document).

-- ---------------------------------------------------------------------------------------------
-- 1. The stage.

CREATE UNLOGGED TABLE cutter_governance.leg_a_stage (
    created_xid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
    run_id           text NOT NULL,
    pos              integer NOT NULL,
    op               text,
    unit_key         text,
    version_no       integer,
    parent_key       text,
    ordinal          integer,
    unit_kind        text,
    section_type     text,
    title            text,
    body             text,
    body_sha256      text,
    provision_status text
);
REVOKE ALL ON cutter_governance.leg_a_stage FROM PUBLIC;
-- The column grant to the exec role is made by provisioning (it knows the role's name), on
-- every column but created_xid.

-- ---------------------------------------------------------------------------------------------
-- 2. Leg A from the stage.

-- Opening a run's change set, shared by both legs A (fn_iu_change and fn_iu_change_staged):
-- the run armed and holding its document (fn_require_run), the recorded plan and its number of
-- writes, the payload format, the registry's pin and protection as when the run began, and a
-- verified SG_1 over exactly the recorded payload; then the change set, bound to this
-- transaction. Returns NULL when it opened the change set, or the unit count of the change set
-- a committed repeat of the run already wrote (its caller answers 'already_present'). Not
-- callable by exec: only through the two legs, which run as its owner.
CREATE FUNCTION cutter_governance.fn_open_change_set(
    p_run_id text, p_document_id text, p_approval jsonb, p_actor text, p_total integer,
    p_payload_format text)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v_existing cutter_governance.cut_change_set%ROWTYPE;
    v_reg cutter_governance.source_registry%ROWTYPE;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    -- Two sessions repeating the same run serialize here, so exactly one of them creates.
    -- Serialized on the run's row, not an advisory lock: advisory locks have no privileges,
    -- so any role could take this one first and stall the run; a row lock needs UPDATE.
    PERFORM 1 FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR UPDATE;
    SELECT * INTO v_existing FROM cutter_governance.cut_change_set c WHERE c.run_id = p_run_id;
    IF FOUND THEN
        RETURN v_existing.unit_count;
    END IF;
    IF v_run.payload_sha256 IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s has no recorded plan (cutplan) to write', p_run_id);
    END IF;
    IF p_total IS DISTINCT FROM v_run.unit_count THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s recorded %s writes at cutplan, leg A announces %s', p_run_id, v_run.unit_count, p_total);
    END IF;
    IF p_payload_format IS NULL OR p_payload_format NOT IN ('cutter.payload.v1', 'cutter.change.v1') THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: payload format %s is neither cutter.payload.v1 (a first version, every unit added and in force) nor cutter.change.v1',
                             p_run_id, coalesce(p_payload_format, '(none)'));
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
    INSERT INTO cutter_governance.cut_change_set (run_id, document_id, payload_sha256, unit_count,
                                                  created_xid, payload_format)
    VALUES (p_run_id, p_document_id, v_run.payload_sha256, v_run.unit_count, pg_current_xact_id(),
            p_payload_format);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_open_change_set(text, text, jsonb, text, integer, text) FROM PUBLIC;

-- The chunked leg A's first chunk opens its change set the same way.
CREATE OR REPLACE FUNCTION public.fn_iu_change(
    p_run_id text, p_document_id text, p_approval jsonb, p_actor text, p_total integer,
    p_payload_format text, p_ops text[], p_keys text[], p_versions integer[], p_parents text[], p_ordinals integer[],
    p_unit_kinds text[], p_section_types text[], p_titles text[], p_bodies text[],
    p_body_sha256s text[], p_statuses text[])
RETURNS TABLE (result text, written bigint, already_present bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_present bigint;
BEGIN
    v_present := cutter_governance.fn_open_change_set(p_run_id, p_document_id, p_approval, p_actor,
                                                      p_total, p_payload_format);
    IF v_present IS NOT NULL THEN
        RETURN QUERY SELECT 'already_present'::text, 0::bigint, v_present;
        RETURN;
    END IF;
    PERFORM cutter_governance.fn_iu_change_chunk(p_run_id, p_document_id, 0, p_ops, p_keys, p_versions,
        p_parents, p_ordinals, p_unit_kinds, p_section_types, p_titles, p_bodies, p_body_sha256s, p_statuses);
    RETURN QUERY SELECT 'created'::text, coalesce(cardinality(p_keys), 0)::bigint, 0::bigint;
END
$$;

CREATE FUNCTION public.fn_iu_change_staged(
    p_run_id text, p_document_id text, p_approval jsonb, p_actor text, p_total integer,
    p_payload_format text)
RETURNS TABLE (result text, written bigint, already_present bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off SET work_mem = '64MB' AS $$
DECLARE
    v_present bigint;
    v_xid xid8 := pg_current_xact_id();
    v_n bigint;
    v_keys bigint;
    v_positions bigint;
    v_min integer;
    v_max integer;
    v_not_first bigint;
    v_bad record;
    v_written bigint;
BEGIN
    v_present := cutter_governance.fn_open_change_set(p_run_id, p_document_id, p_approval, p_actor,
                                                      p_total, p_payload_format);
    IF v_present IS NOT NULL THEN
        DELETE FROM cutter_governance.leg_a_stage;
        RETURN QUERY SELECT 'already_present'::text, 0::bigint, v_present;
        RETURN;
    END IF;

    -- What this transaction staged for this run, in one pass: exactly the plan's writes, at
    -- positions 0..n-1, each unit once, each write well formed.
    SELECT count(*), count(DISTINCT s.unit_key), count(DISTINCT s.pos), min(s.pos), max(s.pos),
           count(*) FILTER (WHERE s.op IS DISTINCT FROM 'add' OR s.provision_status IS DISTINCT FROM 'in_force')
    INTO v_n, v_keys, v_positions, v_min, v_max, v_not_first
    FROM cutter_governance.leg_a_stage s
    WHERE s.created_xid = v_xid AND s.run_id = p_run_id;
    IF v_n <> p_total THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: %s writes were staged in this transaction, the change plan has %s',
                             p_run_id, v_n, p_total);
    END IF;
    IF v_n > 0 AND (v_positions <> v_n OR v_min <> 0 OR v_max <> v_n - 1) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: the staged writes are not at positions 0..%s, each once', p_run_id, v_n - 1);
    END IF;
    IF v_keys <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: a change plan changes each unit once; the staged writes name a unit twice', p_run_id);
    END IF;
    -- A change set in the old payload format is a first version: nothing but units added, in
    -- force (that format signs neither revisions, removals nor a status).
    IF p_payload_format = 'cutter.payload.v1' AND v_not_first > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: a change set in payload format cutter.payload.v1 only adds units in force; revisions, removals and repealed provisions are written as cutter.change.v1', p_run_id);
    END IF;

    -- Every write well formed, and against the document as it is: an add of a unit it does
    -- not have, a revise or a remove of an enacted unit at the version enacted now, with
    -- nothing else pending on it. The first offending write, by position.
    SELECT s.pos, s.op, s.unit_key AS k, s.version_no AS ver, u.lifecycle_status,
           cur.version_no AS enacted, coalesce(d.created_by_run, m.created_by_run) AS pending_run,
           (s.op IS NULL OR s.op NOT IN ('add', 'revise', 'remove') OR s.unit_key IS NULL OR s.unit_key = ''
            OR s.version_no IS NULL
            OR (s.op = 'add' AND s.version_no <> 1) OR (s.op = 'revise' AND s.version_no < 2)
            OR (s.op <> 'remove' AND (s.ordinal IS NULL OR s.ordinal < 1 OR s.unit_kind IS NULL
                                      OR s.section_type IS NULL OR s.title IS NULL OR s.body IS NULL
                                      OR s.body_sha256 IS NULL OR s.provision_status IS NULL
                                      OR s.provision_status NOT IN ('in_force', 'repealed')))) AS malformed
    INTO v_bad
    FROM cutter_governance.leg_a_stage s
    LEFT JOIN public.information_unit u ON u.document_id = p_document_id AND u.unit_key = s.unit_key
    LEFT JOIN public.unit_version cur
           ON cur.document_id = p_document_id AND cur.unit_key = s.unit_key AND cur.version_status = 'enacted'
    LEFT JOIN public.unit_version d
           ON d.document_id = p_document_id AND d.unit_key = s.unit_key AND d.version_status = 'draft'
    LEFT JOIN public.unit_removal m
           ON m.document_id = p_document_id AND m.unit_key = s.unit_key AND m.status = 'pending'
    WHERE s.created_xid = v_xid AND s.run_id = p_run_id
      AND (s.op IS NULL OR s.op NOT IN ('add', 'revise', 'remove') OR s.unit_key IS NULL OR s.unit_key = ''
           OR s.version_no IS NULL
           OR (s.op = 'add' AND s.version_no <> 1) OR (s.op = 'revise' AND s.version_no < 2)
           OR (s.op <> 'remove' AND (s.ordinal IS NULL OR s.ordinal < 1 OR s.unit_kind IS NULL
                                     OR s.section_type IS NULL OR s.title IS NULL OR s.body IS NULL
                                     OR s.body_sha256 IS NULL OR s.provision_status IS NULL
                                     OR s.provision_status NOT IN ('in_force', 'repealed')))
           OR (s.op = 'add' AND u.unit_key IS NOT NULL)
           OR (s.op IN ('revise', 'remove')
               AND (u.unit_key IS NULL OR u.lifecycle_status <> 'enacted'
                    OR cur.version_no IS DISTINCT FROM CASE WHEN s.op = 'revise' THEN s.version_no - 1 ELSE s.version_no END
                    OR d.unit_key IS NOT NULL OR m.unit_key IS NOT NULL)))
    ORDER BY s.pos LIMIT 1;
    IF FOUND THEN
        IF v_bad.malformed THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s: write %s (%s of %s, version %s) is not a well-formed change: add is version 1, revise a later version, both with every field and a status in_force or repealed',
                                 p_run_id, v_bad.pos, coalesce(v_bad.op, '(no op)'), coalesce(v_bad.k, '(no key)'), coalesce(v_bad.ver::text, '(none)'));
        ELSIF v_bad.op = 'add' THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s: unit %s of %s already exists (%s): a change plan revises or removes it, it never adds it again',
                                 p_run_id, v_bad.k, p_document_id, v_bad.lifecycle_status);
        ELSIF v_bad.lifecycle_status IS DISTINCT FROM 'enacted'
              OR v_bad.enacted IS DISTINCT FROM (CASE WHEN v_bad.op = 'revise' THEN v_bad.ver - 1 ELSE v_bad.ver END) THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s: cannot %s unit %s of %s as version %s: it is %s, enacted at version %s',
                                 p_run_id, v_bad.op, v_bad.k, p_document_id, v_bad.ver,
                                 coalesce(v_bad.lifecycle_status, 'not in the document'),
                                 coalesce(v_bad.enacted::text, '(none)'));
        ELSE
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s: unit %s of %s already has a pending change of run %s; void that run first',
                                 p_run_id, v_bad.k, p_document_id, v_bad.pending_run);
        END IF;
    END IF;

    -- The writes. Foreign keys are checked at the end of each statement, so the order of the
    -- rows within one does not matter (no sort of the bodies).
    INSERT INTO public.information_unit (document_id, unit_key, parent_key, ordinal, plan_position,
                                         unit_kind, section_type, title, lifecycle_status, created_by_run)
    SELECT p_document_id, s.unit_key, s.parent_key, s.ordinal, s.pos, s.unit_kind, s.section_type,
           s.title, 'draft', p_run_id
    FROM cutter_governance.leg_a_stage s
    WHERE s.created_xid = v_xid AND s.run_id = p_run_id AND s.op = 'add';

    INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256, created_by_run,
                                     parent_key, ordinal, unit_kind, section_type, title,
                                     provision_status, change_position, version_status)
    SELECT p_document_id, s.unit_key, s.version_no, s.body, s.body_sha256, p_run_id, s.parent_key,
           s.ordinal, s.unit_kind, s.section_type, s.title, s.provision_status, s.pos, 'draft'
    FROM cutter_governance.leg_a_stage s
    WHERE s.created_xid = v_xid AND s.run_id = p_run_id AND s.op IN ('add', 'revise');

    INSERT INTO public.unit_removal (document_id, unit_key, version_no, created_by_run, change_position, status)
    SELECT p_document_id, s.unit_key, s.version_no, p_run_id, s.pos, 'pending'
    FROM cutter_governance.leg_a_stage s
    WHERE s.created_xid = v_xid AND s.run_id = p_run_id AND s.op = 'remove';

    -- Everything this transaction can see of the stage goes: what it staged (for this run or
    -- any other name) and what committed transactions left without writing it.
    DELETE FROM cutter_governance.leg_a_stage;
    v_written := v_n;
    RETURN QUERY SELECT 'created'::text, v_written, 0::bigint;
END
$$;
REVOKE ALL ON FUNCTION public.fn_iu_change_staged(text, text, jsonb, text, integer, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 3. The chunked leg A (kept for callers of fn_iu_change / fn_iu_change_more) without nested
-- loops: its per-chunk checks joined a chunk's keys to the whole document by a nested loop when
-- the statistics predate the document, quadratic over a large first cut.

ALTER FUNCTION cutter_governance.fn_iu_change_chunk(text, text, integer, text[], text[], integer[],
    text[], integer[], text[], text[], text[], text[], text[], text[]) SET enable_nestloop = off;

-- The payload check at leg A's commit and at enactment sorts every write of the run by
-- position; with the default work_mem a 100,000-unit document's sort spills to disk
-- (0.6 s instead of 0.4 s). Per call, not per session: nothing else changes.
ALTER FUNCTION cutter_governance.fn_written_payload(text, text) SET work_mem = '64MB';

-- V13: amendments as the normal, governed path (issue 15).
--
-- Until now leg A created every unit of a plan, so cutting a document that already had units
-- failed on a duplicate key. From here on a run writes a *change plan* against what is enacted:
--
--   add      a new unit: an information_unit row (draft) and its unit_version 1 (draft);
--   revise   a new version of an enacted unit: one unit_version row (draft) carrying every
--            field of that version (parent, ordinal, kind, section type, title, body, status);
--   remove   an enacted unit retired by the amendment: one unit_removal mark (pending).
--
-- Unchanged units get nothing. The change set's payload is `cutter.change.v1` (see
-- cutter-core change.rs), recomputed here from the written rows at leg A's commit and again at
-- enactment; change sets written before this migration keep `cutter.payload.v1` and are still
-- verified by the old formula (cut_change_set.payload_format).
--
-- Enactment (fn_iu_enact) applies a change set atomically under the verified SG_2: new units
-- and versions come into force, each version a revision replaces is superseded (kept, with when
-- and by which run), removed units are retired; compensation (fn_iu_compensate) reverts it
-- exactly: before enactment it drops the run's drafts and marks, after enactment (under SG_C,
-- all of the run's effects at once) it withdraws the run's versions, puts the superseded ones
-- back in force and reinstates the removed units. A withdrawn version is never in force.
--
-- What is in force is read through public.unit_in_force (now) and
-- public.document_in_force(document, as_of => ..., version => ...). A version is in force
-- from its document version's effective date when the source version was registered with one
-- (migration V12's source_version.effective_date), else from its enactment, until its
-- successor's start. This file reads V12's tables only dynamically (fn_change_origin), so it
-- applies with or without them.

-- ---------------------------------------------------------------------------------------------
-- 1. A version carries the whole unit, and its own lifecycle.

ALTER TABLE public.unit_version
    ADD COLUMN parent_key        text,
    ADD COLUMN ordinal           integer CHECK (ordinal >= 1),
    ADD COLUMN unit_kind         text CHECK (unit_kind <> ''),
    ADD COLUMN section_type      text CHECK (section_type <> ''),
    ADD COLUMN title             text,
    ADD COLUMN provision_status  text NOT NULL DEFAULT 'in_force'
        CHECK (provision_status IN ('in_force', 'repealed')),
    -- The write's position in its change set (NULL for versions written before V13).
    ADD COLUMN change_position   integer CHECK (change_position >= 0),
    ADD COLUMN version_status    text NOT NULL DEFAULT 'draft'
        CHECK (version_status IN ('draft', 'enacted', 'superseded', 'withdrawn')),
    ADD COLUMN enacted_at        timestamptz,
    -- The document version the enacting run cut, and when the version came into force.
    ADD COLUMN document_version  integer CHECK (document_version >= 1),
    ADD COLUMN in_force_from     timestamptz,
    ADD COLUMN superseded_at     timestamptz,
    ADD COLUMN superseded_by_run text,
    ADD COLUMN withdrawn_at      timestamptz;

-- Existing data: every version is a version 1 whose fields are its unit's. Enacted units were
-- enacted by their creating run (the lifecycle log says when); retired units were retired by a
-- compensation, which reverts: their version was never (or is no longer) in force. Each
-- document's enacting runs are numbered 1, 2, ... in the order they were enacted.
ALTER TABLE public.unit_version DISABLE TRIGGER unit_version_immutable;
WITH enacted AS (
    SELECT l.run_id, l.document_id, min(l.logged_at) AS enacted_at
    FROM public.iu_lifecycle_log l
    WHERE l.from_status = 'draft' AND l.to_status = 'enacted'
    GROUP BY l.run_id, l.document_id
), numbered AS (
    SELECT e.run_id, e.document_id, e.enacted_at,
           dense_rank() OVER (PARTITION BY e.document_id ORDER BY e.enacted_at, e.run_id)::integer AS document_version
    FROM enacted e
), unit AS (
    SELECT u.*, r.enacted_at AS run_enacted_at, r.document_version AS run_document_version,
           (u.lifecycle_status = 'enacted' OR (u.lifecycle_status = 'retired' AND r.enacted_at IS NOT NULL)) AS was_enacted
    FROM public.information_unit u
    LEFT JOIN numbered r ON r.run_id = u.created_by_run AND r.document_id = u.document_id
)
UPDATE public.unit_version v
SET parent_key = u.parent_key, ordinal = u.ordinal, unit_kind = u.unit_kind,
    section_type = u.section_type, title = u.title, provision_status = 'in_force',
    version_status = CASE
        WHEN u.lifecycle_status = 'draft' THEN 'draft'
        WHEN u.lifecycle_status = 'enacted' THEN 'enacted'
        ELSE 'withdrawn' END,
    enacted_at = CASE WHEN u.was_enacted THEN coalesce(u.run_enacted_at, u.created_at) END,
    document_version = CASE WHEN u.was_enacted THEN coalesce(u.run_document_version, 1) END,
    in_force_from = CASE WHEN u.was_enacted THEN coalesce(u.run_enacted_at, u.created_at) END,
    withdrawn_at = CASE WHEN u.lifecycle_status = 'retired' THEN coalesce(
        (SELECT max(l.logged_at) FROM public.iu_lifecycle_log l
         WHERE l.document_id = u.document_id AND l.unit_key = u.unit_key AND l.to_status = 'retired'),
        u.created_at) END
FROM unit u
WHERE u.document_id = v.document_id AND u.unit_key = v.unit_key;
ALTER TABLE public.unit_version ENABLE TRIGGER unit_version_immutable;

ALTER TABLE public.unit_version
    ALTER COLUMN ordinal SET NOT NULL,
    ALTER COLUMN unit_kind SET NOT NULL,
    ALTER COLUMN section_type SET NOT NULL,
    ALTER COLUMN title SET NOT NULL,
    ALTER COLUMN version_status DROP DEFAULT,
    ADD CONSTRAINT unit_version_parent_fkey FOREIGN KEY (document_id, parent_key)
        REFERENCES public.information_unit (document_id, unit_key),
    ADD CONSTRAINT unit_version_enacted_fields CHECK (
        version_status = 'draft'
        OR (version_status = 'withdrawn' AND enacted_at IS NULL)
        OR (enacted_at IS NOT NULL AND document_version IS NOT NULL AND in_force_from IS NOT NULL)),
    ADD CONSTRAINT unit_version_superseded_fields CHECK (
        (version_status = 'superseded') = (superseded_at IS NOT NULL AND superseded_by_run IS NOT NULL)),
    ADD CONSTRAINT unit_version_withdrawn_fields CHECK (
        (version_status = 'withdrawn') = (withdrawn_at IS NOT NULL));

-- At most one draft and one enacted version per unit; a run writes each position once.
CREATE UNIQUE INDEX unit_version_one_draft ON public.unit_version (document_id, unit_key)
    WHERE version_status = 'draft';
CREATE UNIQUE INDEX unit_version_one_enacted ON public.unit_version (document_id, unit_key)
    WHERE version_status = 'enacted';
CREATE UNIQUE INDEX unit_version_change_position ON public.unit_version (created_by_run, change_position)
    WHERE change_position IS NOT NULL;
CREATE INDEX unit_version_run_idx ON public.unit_version (created_by_run);

-- A version's content never changes; its lifecycle moves only inside the cutter functions and
-- only along draft → enacted → superseded ⇄ enacted, draft | enacted → withdrawn. Only a
-- draft is ever deleted (compensation of a run never enacted).
CREATE OR REPLACE FUNCTION cutter_governance.tg_unit_version_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_writer boolean := coalesce(current_setting('cutter.lifecycle_writer', true), '') = 'on';
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.version_status = 'draft' AND v_writer THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit version %s/%s v%s (%s) is never deleted, only a draft by compensation',
                             OLD.document_id, OLD.unit_key, OLD.version_no, OLD.version_status);
    END IF;
    IF (NEW.document_id, NEW.unit_key, NEW.version_no, NEW.body, NEW.body_sha256, NEW.created_by_run,
        NEW.created_at, NEW.parent_key, NEW.ordinal, NEW.unit_kind, NEW.section_type, NEW.title,
        NEW.provision_status, NEW.change_position)
       IS DISTINCT FROM
       (OLD.document_id, OLD.unit_key, OLD.version_no, OLD.body, OLD.body_sha256, OLD.created_by_run,
        OLD.created_at, OLD.parent_key, OLD.ordinal, OLD.unit_kind, OLD.section_type, OLD.title,
        OLD.provision_status, OLD.change_position) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit version %s/%s v%s is immutable: its content never changes',
                             OLD.document_id, OLD.unit_key, OLD.version_no);
    END IF;
    IF NOT v_writer THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit version %s/%s v%s: its status changes only through the cutter functions',
                             OLD.document_id, OLD.unit_key, OLD.version_no);
    END IF;
    IF NOT ((OLD.version_status = 'draft' AND NEW.version_status IN ('enacted', 'withdrawn'))
            OR (OLD.version_status = 'enacted' AND NEW.version_status IN ('superseded', 'withdrawn'))
            OR (OLD.version_status = 'superseded' AND NEW.version_status = 'enacted')) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit version %s/%s v%s: %s -> %s is not a version transition',
                             OLD.document_id, OLD.unit_key, OLD.version_no, OLD.version_status, NEW.version_status);
    END IF;
    -- An enactment is recorded once: a restored version keeps when it first came into force.
    IF OLD.enacted_at IS NOT NULL
       AND (NEW.enacted_at, NEW.document_version, NEW.in_force_from)
           IS DISTINCT FROM (OLD.enacted_at, OLD.document_version, OLD.in_force_from) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit version %s/%s v%s: its enactment is recorded once',
                             OLD.document_id, OLD.unit_key, OLD.version_no);
    END IF;
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 2. Removal marks: an enacted unit (at its enacted version) that a run's amendment retires.

CREATE TABLE public.unit_removal (
    document_id      text NOT NULL,
    unit_key         text NOT NULL,
    version_no       integer NOT NULL CHECK (version_no >= 1),
    created_by_run   text NOT NULL,
    change_position  integer NOT NULL CHECK (change_position >= 0),
    status           text NOT NULL CHECK (status IN ('pending', 'enacted', 'withdrawn')),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    enacted_at       timestamptz,
    document_version integer CHECK (document_version >= 1),
    in_force_from    timestamptz,
    withdrawn_at     timestamptz,
    PRIMARY KEY (created_by_run, unit_key),
    UNIQUE (created_by_run, change_position),
    FOREIGN KEY (document_id, unit_key, version_no)
        REFERENCES public.unit_version (document_id, unit_key, version_no),
    CHECK (status = 'pending' OR (status = 'withdrawn' AND enacted_at IS NULL)
           OR (enacted_at IS NOT NULL AND document_version IS NOT NULL AND in_force_from IS NOT NULL)),
    CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL))
);
-- A unit has at most one removal that is pending or in force.
CREATE UNIQUE INDEX unit_removal_one_live ON public.unit_removal (document_id, unit_key)
    WHERE status <> 'withdrawn';

CREATE FUNCTION cutter_governance.tg_unit_removal_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_writer boolean := coalesce(current_setting('cutter.lifecycle_writer', true), '') = 'on';
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status = 'pending' AND v_writer THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('the removal of %s/%s by run %s (%s) is never deleted, only a pending one by compensation',
                             OLD.document_id, OLD.unit_key, OLD.created_by_run, OLD.status);
    END IF;
    IF (NEW.document_id, NEW.unit_key, NEW.version_no, NEW.created_by_run, NEW.change_position, NEW.created_at)
       IS DISTINCT FROM
       (OLD.document_id, OLD.unit_key, OLD.version_no, OLD.created_by_run, OLD.change_position, OLD.created_at)
       OR NOT v_writer
       OR NOT ((OLD.status = 'pending' AND NEW.status = 'enacted')
               OR (OLD.status = 'enacted' AND NEW.status = 'withdrawn'))
       OR (OLD.enacted_at IS NOT NULL
           AND (NEW.enacted_at, NEW.document_version, NEW.in_force_from)
               IS DISTINCT FROM (OLD.enacted_at, OLD.document_version, OLD.in_force_from)) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('the removal of %s/%s by run %s changes only pending -> enacted -> withdrawn, through the cutter functions',
                             OLD.document_id, OLD.unit_key, OLD.created_by_run);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER unit_removal_guard BEFORE UPDATE OR DELETE ON public.unit_removal
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_unit_removal_guard();
CREATE TRIGGER unit_removal_no_truncate BEFORE TRUNCATE ON public.unit_removal
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- ---------------------------------------------------------------------------------------------
-- 3. A unit comes back in force when the removal of it is reverted (retired → enacted).

CREATE OR REPLACE FUNCTION cutter_governance.tg_information_unit_guard() RETURNS trigger
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
            OR (OLD.lifecycle_status = 'enacted' AND NEW.lifecycle_status = 'retired')
            OR (OLD.lifecycle_status = 'retired' AND NEW.lifecycle_status = 'enacted')) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('unit %s/%s: %s -> %s is not a lifecycle transition',
                             OLD.document_id, OLD.unit_key, OLD.lifecycle_status, NEW.lifecycle_status);
    END IF;
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 4. The document lock, where rows are written. Inserting and deleting: the row's run holds
-- its document's lock (as in V7). Updating: an amendment changes rows other runs created
-- (supersedes their versions, retires their units), so the run doing it names itself for its
-- transaction (cutter.writing_run, set by the write functions right after they checked that
-- the run holds the lock) and must hold the lock of every document it changes.

CREATE OR REPLACE FUNCTION cutter_governance.tg_require_document_lock() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_doc text;
    v_run text;
    v_writer text := nullif(current_setting('cutter.writing_run', true), '');
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT o.document_id, o.created_by_run INTO v_doc, v_run FROM old_rows o
        WHERE NOT EXISTS (SELECT 1 FROM cutter_governance.document_lock l
                          WHERE l.document_id = o.document_id AND l.run_id = o.created_by_run)
        LIMIT 1;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT n.document_id, coalesce(v_writer, '(no run)') INTO v_doc, v_run FROM new_rows n
        WHERE v_writer IS NULL
           OR NOT EXISTS (SELECT 1 FROM cutter_governance.document_lock l
                          WHERE l.document_id = n.document_id AND l.run_id = v_writer)
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

CREATE TRIGGER unit_version_lock_update AFTER UPDATE ON public.unit_version
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_require_document_lock();
CREATE TRIGGER unit_removal_lock_insert AFTER INSERT ON public.unit_removal
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_require_document_lock();
CREATE TRIGGER unit_removal_lock_update AFTER UPDATE ON public.unit_removal
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_require_document_lock();
CREATE TRIGGER unit_removal_lock_delete AFTER DELETE ON public.unit_removal
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_require_document_lock();

-- ---------------------------------------------------------------------------------------------
-- 5. Change sets: their payload format, and whether (and as which document version) they were
-- enacted.

-- Existing change sets were written and checked as `cutter.payload.v1`; every new one is a
-- change plan and names its format when it is written (no default).
ALTER TABLE cutter_governance.cut_change_set
    ADD COLUMN payload_format text NOT NULL DEFAULT 'cutter.payload.v1'
        CHECK (payload_format IN ('cutter.payload.v1', 'cutter.change.v1'));
ALTER TABLE cutter_governance.cut_change_set ALTER COLUMN payload_format DROP DEFAULT;

CREATE TABLE cutter_governance.cut_change_set_enacted (
    run_id           text PRIMARY KEY REFERENCES cutter_governance.cut_change_set (run_id),
    document_id      text NOT NULL,
    document_version integer NOT NULL CHECK (document_version >= 1),
    in_force_from    timestamptz NOT NULL,
    units            bigint NOT NULL CHECK (units >= 0),
    enacted_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX cut_change_set_enacted_document_idx ON cutter_governance.cut_change_set_enacted (document_id);
CREATE TRIGGER cut_change_set_enacted_append_only BEFORE UPDATE OR DELETE ON cutter_governance.cut_change_set_enacted
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER cut_change_set_enacted_no_truncate BEFORE TRUNCATE ON cutter_governance.cut_change_set_enacted
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();
REVOKE ALL ON cutter_governance.cut_change_set_enacted FROM PUBLIC;

-- Runs enacted before this migration: their document version is the one their units were
-- given above.
INSERT INTO cutter_governance.cut_change_set_enacted (run_id, document_id, document_version, in_force_from, units, enacted_at)
SELECT c.run_id, c.document_id, min(v.document_version), min(v.in_force_from), count(*), min(v.enacted_at)
FROM cutter_governance.cut_change_set c
JOIN public.unit_version v ON v.document_id = c.document_id AND v.created_by_run = c.run_id
                          AND v.enacted_at IS NOT NULL
GROUP BY c.run_id, c.document_id;

-- What a lifecycle-log row did to which version (NULL on rows before V13).
ALTER TABLE public.iu_lifecycle_log
    ADD COLUMN version_no integer,
    ADD COLUMN action     text CHECK (action IN ('add', 'revise', 'remove', 'retire', 'delete', 'restore', 'reinstate'));

-- ---------------------------------------------------------------------------------------------
-- 6. Where an enactment sits in the document's history: its document version and the time
-- from which it is in force: the run's source version (V12) and that version's effective date
-- when it was registered with one. A run begun before V12 has no version: the document's
-- enacted change sets are then numbered 1, 2, ... and a change is in force from its enactment.

CREATE FUNCTION cutter_governance.fn_change_origin(p_run_id text, p_document_id text,
                                                   OUT document_version integer,
                                                   OUT in_force_from timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_effective date;
BEGIN
    SELECT r.source_version, s.effective_date
    INTO document_version, v_effective
    FROM cutter_governance.run r
    LEFT JOIN cutter_governance.source_version s
           ON s.document_id = r.document_id AND s.version_no = r.source_version
    WHERE r.run_id = p_run_id;
    IF document_version IS NULL THEN
        SELECT coalesce(max(e.document_version), 0) + 1 INTO document_version
        FROM cutter_governance.cut_change_set_enacted e WHERE e.document_id = p_document_id;
    END IF;
    -- From the first moment of the effective date, UTC. Computed from the date itself, never
    -- through text, so the caller's DateStyle and TimeZone cannot move it.
    in_force_from := CASE WHEN v_effective IS NULL THEN clock_timestamp()
                          ELSE v_effective::timestamp AT TIME ZONE 'UTC' END;
END
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_change_origin(text, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 7. The payload of what a run wrote, hashed where the rows are, in the change set's format.
--
-- `cutter.change.v1` (cutter-core change.rs), field(s) = <byte length of s> ":" s "\n":
--   "cutter.change.v1\n" <number of writes> "\n"
--   for each write, by position: field(op) field(key) field(version_no)
--     and for add / revise: field(parent or "") field(ordinal) field(unit_kind)
--     field(section_type) field(title) field(body_sha256) field(status)
-- `retired` counts what was undone since leg A (units retired, versions withdrawn, marks
-- withdrawn): a change set is enacted only with none.

-- Planned without nested loops: it runs at leg A's commit, on rows the same transaction
-- inserted, so the statistics say the tables are (nearly) empty and a nested loop over the
-- whole document is chosen -- quadratic, 10-17 s for 10,000 units instead of 45 ms.
CREATE OR REPLACE FUNCTION cutter_governance.fn_written_payload(p_run_id text, p_document_id text,
                                                              OUT payload_sha256 text, OUT units bigint,
                                                              OUT positions_ok boolean, OUT retired bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off AS $$
DECLARE
    v_format text;
BEGIN
    SELECT c.payload_format INTO v_format FROM cutter_governance.cut_change_set c
    WHERE c.run_id = p_run_id;
    IF v_format IS DISTINCT FROM 'cutter.change.v1' THEN
        -- `cutter.payload.v1` (cutter-core plan.rs): the units the run created, in plan order.
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
        INTO payload_sha256, units, positions_ok, retired
        FROM public.information_unit u
        JOIN public.unit_version v
          ON v.document_id = u.document_id AND v.unit_key = u.unit_key AND v.version_no = 1
         AND v.created_by_run = u.created_by_run
        WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id;
        -- Anything else the run wrote is outside that format: it counts, so it cannot match.
        units := units
            + (SELECT count(*) FROM public.unit_version x
               WHERE x.document_id = p_document_id AND x.created_by_run = p_run_id AND x.version_no > 1)
            + (SELECT count(*) FROM public.unit_removal m
               WHERE m.document_id = p_document_id AND m.created_by_run = p_run_id);
        RETURN;
    END IF;
    WITH w AS (
        SELECT v.change_position AS pos,
               CASE WHEN v.version_no = 1 THEN 'add' ELSE 'revise' END AS op,
               v.unit_key, v.version_no,
               octet_length(coalesce(v.parent_key, ''))::text || ':' || coalesce(v.parent_key, '') || chr(10)
               || octet_length(v.ordinal::text)::text || ':' || v.ordinal::text || chr(10)
               || octet_length(v.unit_kind)::text || ':' || v.unit_kind || chr(10)
               || octet_length(v.section_type)::text || ':' || v.section_type || chr(10)
               || octet_length(v.title)::text || ':' || v.title || chr(10)
               || octet_length(v.body_sha256)::text || ':' || v.body_sha256 || chr(10)
               || octet_length(v.provision_status)::text || ':' || v.provision_status || chr(10) AS fields,
               (v.version_status = 'withdrawn'
                OR (v.version_no = 1 AND EXISTS (
                       SELECT 1 FROM public.information_unit u
                       WHERE u.document_id = v.document_id AND u.unit_key = v.unit_key
                         AND u.lifecycle_status = 'retired'))) AS undone
        FROM public.unit_version v
        WHERE v.created_by_run = p_run_id AND v.document_id = p_document_id
          AND v.change_position IS NOT NULL
        UNION ALL
        SELECT m.change_position, 'remove', m.unit_key, m.version_no, '', m.status = 'withdrawn'
        FROM public.unit_removal m
        WHERE m.created_by_run = p_run_id AND m.document_id = p_document_id
    )
    SELECT encode(sha256(convert_to(
               'cutter.change.v1' || chr(10) || count(*)::text || chr(10)
               || coalesce(string_agg(
                      octet_length(w.op)::text || ':' || w.op || chr(10)
                   || octet_length(w.unit_key)::text || ':' || w.unit_key || chr(10)
                   || octet_length(w.version_no::text)::text || ':' || w.version_no::text || chr(10)
                   || w.fields,
                   '' ORDER BY w.pos), ''),
               'UTF8')), 'hex'),
           count(*),
           count(*) = 0 OR (min(w.pos) = 0 AND max(w.pos) = count(*) - 1
                            AND count(DISTINCT w.pos) = count(*)),
           count(*) FILTER (WHERE w.undone)
    INTO payload_sha256, units, positions_ok, retired
    FROM w;
END
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_written_payload(text, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 8. Leg A writes a change plan. The first chunk (fn_iu_change) verifies SG_1 and creates the
-- change set bound to its transaction; further chunks (fn_iu_change_more) only in that
-- transaction, only before the payload check, never past the recorded number of writes. The
-- deferred trigger of V11 (tg_change_set_complete) recomputes the payload at commit.

DROP FUNCTION public.fn_iu_create(text, text, jsonb, text, integer, text[], text[], integer[], text[],
                                  text[], text[], text[], text[]);
DROP FUNCTION public.fn_iu_create_more(text, text, integer, text[], text[], integer[], text[], text[],
                                       text[], text[], text[]);
DROP FUNCTION cutter_governance.fn_iu_insert_chunk(text, text, integer, text[], text[], integer[], text[],
                                                   text[], text[], text[], text[]);

-- The writes of a chunk as rows, with their positions (internal).
CREATE FUNCTION cutter_governance.fn_change_rows(
    p_offset integer, p_ops text[], p_keys text[], p_versions integer[], p_parents text[],
    p_ordinals integer[], p_unit_kinds text[], p_section_types text[], p_titles text[],
    p_bodies text[], p_body_sha256s text[], p_statuses text[])
RETURNS TABLE (pos integer, op text, k text, ver integer, parent text, ord integer, kind text,
               section text, title text, body text, sha text, status text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p_offset + (c.i - 1)::integer, c.op, c.k, c.ver, c.parent, c.ord, c.kind, c.section,
           c.title, c.body, c.sha, c.status
    FROM unnest(p_ops, p_keys, p_versions, p_parents, p_ordinals, p_unit_kinds, p_section_types,
                p_titles, p_bodies, p_body_sha256s, p_statuses)
         WITH ORDINALITY AS c(op, k, ver, parent, ord, kind, section, title, body, sha, status, i)
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_change_rows(integer, text[], text[], integer[], text[],
    integer[], text[], text[], text[], text[], text[], text[]) FROM PUBLIC;

-- Writes one chunk of a change plan (internal): writes at positions p_offset .. p_offset+n-1.
CREATE FUNCTION cutter_governance.fn_iu_change_chunk(
    p_run_id text, p_document_id text, p_offset integer,
    p_ops text[], p_keys text[], p_versions integer[], p_parents text[], p_ordinals integer[],
    p_unit_kinds text[], p_section_types text[], p_titles text[], p_bodies text[],
    p_body_sha256s text[], p_statuses text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_n integer := coalesce(cardinality(p_keys), 0);
    v_count integer;
    v_bad record;
BEGIN
    IF coalesce(cardinality(p_ops), 0) <> v_n OR coalesce(cardinality(p_versions), 0) <> v_n
       OR coalesce(cardinality(p_parents), 0) <> v_n OR coalesce(cardinality(p_ordinals), 0) <> v_n
       OR coalesce(cardinality(p_unit_kinds), 0) <> v_n OR coalesce(cardinality(p_section_types), 0) <> v_n
       OR coalesce(cardinality(p_titles), 0) <> v_n OR coalesce(cardinality(p_bodies), 0) <> v_n
       OR coalesce(cardinality(p_body_sha256s), 0) <> v_n OR coalesce(cardinality(p_statuses), 0) <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'the change arrays differ in length';
    END IF;
    IF EXISTS (SELECT 1 FROM cutter_governance.cut_change_set_checked k WHERE k.run_id = p_run_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: leg A''s payload was already checked; nothing is written after that', p_run_id);
    END IF;
    IF v_n = 0 THEN
        RETURN 0;
    END IF;
    SELECT c.unit_count INTO v_count FROM cutter_governance.cut_change_set c WHERE c.run_id = p_run_id;
    IF p_offset IS NULL OR p_offset < 0 OR v_count IS NULL OR p_offset::bigint + v_n > v_count THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: a chunk at offset %s of %s writes does not fit in the %s writes of the change plan',
                             p_run_id, coalesce(p_offset::text, '(none)'), v_n, coalesce(v_count::text, '(none)'));
    END IF;

    -- A change set in the old payload format is a first version: nothing but units added, in
    -- force (that format signs neither revisions, removals nor a status).
    IF (SELECT c.payload_format FROM cutter_governance.cut_change_set c WHERE c.run_id = p_run_id)
       = 'cutter.payload.v1'
       AND EXISTS (SELECT 1 FROM unnest(p_ops, p_statuses) AS c(op, status)
                   WHERE c.op IS DISTINCT FROM 'add' OR c.status IS DISTINCT FROM 'in_force') THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: a change set in payload format cutter.payload.v1 only adds units in force; revisions, removals and repealed provisions are written as cutter.change.v1', p_run_id);
    END IF;
    -- Every write well-formed, each unit once.
    SELECT c.pos, c.op, c.k, c.ver INTO v_bad
    FROM cutter_governance.fn_change_rows(p_offset, p_ops, p_keys, p_versions, p_parents, p_ordinals,
             p_unit_kinds, p_section_types, p_titles, p_bodies, p_body_sha256s, p_statuses) c
    WHERE c.op IS NULL OR c.op NOT IN ('add', 'revise', 'remove') OR c.k IS NULL OR c.k = ''
       OR c.ver IS NULL
       OR (c.op = 'add' AND c.ver <> 1) OR (c.op = 'revise' AND c.ver < 2)
       OR (c.op <> 'remove' AND (c.ord IS NULL OR c.ord < 1 OR c.kind IS NULL OR c.section IS NULL
                                 OR c.title IS NULL OR c.body IS NULL OR c.sha IS NULL
                                 OR c.status IS NULL OR c.status NOT IN ('in_force', 'repealed')))
    ORDER BY c.pos LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: write %s (%s of %s, version %s) is not a well-formed change: add is version 1, revise a later version, both with every field and a status in_force or repealed',
                             p_run_id, v_bad.pos, coalesce(v_bad.op, '(no op)'), coalesce(v_bad.k, '(no key)'), coalesce(v_bad.ver::text, '(none)'));
    END IF;
    IF (SELECT count(DISTINCT k) FROM unnest(p_keys) AS k) <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: a change plan changes each unit once; this chunk names a unit twice', p_run_id);
    END IF;
    -- An add is of a unit the document does not have.
    SELECT c.k, u.lifecycle_status INTO v_bad
    FROM unnest(p_ops, p_keys) AS c(op, k)
    JOIN public.information_unit u ON u.document_id = p_document_id AND u.unit_key = c.k
    WHERE c.op = 'add' LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: unit %s of %s already exists (%s): a change plan revises or removes it, it never adds it again',
                             p_run_id, v_bad.k, p_document_id, v_bad.lifecycle_status);
    END IF;
    -- A revise or a remove is of an enacted unit, at the version enacted now ...
    SELECT c.op, c.k, c.ver, u.lifecycle_status, cur.version_no AS enacted INTO v_bad
    FROM unnest(p_ops, p_keys, p_versions) AS c(op, k, ver)
    LEFT JOIN public.information_unit u ON u.document_id = p_document_id AND u.unit_key = c.k
    LEFT JOIN public.unit_version cur
           ON cur.document_id = p_document_id AND cur.unit_key = c.k AND cur.version_status = 'enacted'
    WHERE c.op IN ('revise', 'remove')
      AND (u.unit_key IS NULL OR u.lifecycle_status <> 'enacted'
           OR cur.version_no IS DISTINCT FROM CASE WHEN c.op = 'revise' THEN c.ver - 1 ELSE c.ver END)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: cannot %s unit %s of %s as version %s: it is %s, enacted at version %s',
                             p_run_id, v_bad.op, v_bad.k, p_document_id, v_bad.ver,
                             coalesce(v_bad.lifecycle_status, 'not in the document'),
                             coalesce(v_bad.enacted::text, '(none)'));
    END IF;
    -- ... with nothing else pending on it: no draft version or removal of any run (this one's
    -- earlier chunks included).
    SELECT c.k, coalesce(d.created_by_run, m.created_by_run) AS run INTO v_bad
    FROM unnest(p_ops, p_keys) AS c(op, k)
    LEFT JOIN public.unit_version d
           ON d.document_id = p_document_id AND d.unit_key = c.k AND d.version_status = 'draft'
    LEFT JOIN public.unit_removal m
           ON m.document_id = p_document_id AND m.unit_key = c.k AND m.status = 'pending'
    WHERE c.op IN ('revise', 'remove') AND (d.unit_key IS NOT NULL OR m.unit_key IS NOT NULL)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: unit %s of %s already has a pending change of run %s%s',
                             p_run_id, v_bad.k, p_document_id, v_bad.run,
                             CASE WHEN v_bad.run = p_run_id THEN ' (a change plan changes each unit once)'
                                  ELSE '; void that run first' END);
    END IF;

    INSERT INTO public.information_unit (document_id, unit_key, parent_key, ordinal, plan_position,
                                         unit_kind, section_type, title, lifecycle_status, created_by_run)
    SELECT p_document_id, c.k, c.parent, c.ord, c.pos, c.kind, c.section, c.title, 'draft', p_run_id
    FROM cutter_governance.fn_change_rows(p_offset, p_ops, p_keys, p_versions, p_parents, p_ordinals,
             p_unit_kinds, p_section_types, p_titles, p_bodies, p_body_sha256s, p_statuses) c
    WHERE c.op = 'add' ORDER BY c.pos;

    INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256, created_by_run,
                                     parent_key, ordinal, unit_kind, section_type, title,
                                     provision_status, change_position, version_status)
    SELECT p_document_id, c.k, c.ver, c.body, c.sha, p_run_id, c.parent, c.ord, c.kind, c.section,
           c.title, c.status, c.pos, 'draft'
    FROM cutter_governance.fn_change_rows(p_offset, p_ops, p_keys, p_versions, p_parents, p_ordinals,
             p_unit_kinds, p_section_types, p_titles, p_bodies, p_body_sha256s, p_statuses) c
    WHERE c.op IN ('add', 'revise') ORDER BY c.pos;

    INSERT INTO public.unit_removal (document_id, unit_key, version_no, created_by_run, change_position, status)
    SELECT p_document_id, c.k, c.ver, p_run_id, p_offset + (c.i - 1)::integer, 'pending'
    FROM unnest(p_ops, p_keys, p_versions) WITH ORDINALITY AS c(op, k, ver, i)
    WHERE c.op = 'remove' ORDER BY c.i;
    RETURN v_n;
END
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_iu_change_chunk(text, text, integer, text[], text[], integer[],
    text[], integer[], text[], text[], text[], text[], text[], text[]) FROM PUBLIC;

-- Leg A, first chunk: under a verified SG_1 approval of exactly the recorded payload, creates
-- the change set bound to this transaction, in the payload format the run's approvals signed:
-- `cutter.change.v1`, or `cutter.payload.v1` for a first version of provisions all in force
-- (whose payload is the whole plan's, as before change plans; only additions in force are
-- accepted then). A repeat of a committed run answers 'already_present' and writes nothing.
CREATE FUNCTION public.fn_iu_change(
    p_run_id text, p_document_id text, p_approval jsonb, p_actor text, p_total integer,
    p_payload_format text, p_ops text[], p_keys text[], p_versions integer[], p_parents text[], p_ordinals integer[],
    p_unit_kinds text[], p_section_types text[], p_titles text[], p_bodies text[],
    p_body_sha256s text[], p_statuses text[])
RETURNS TABLE (result text, written bigint, already_present bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
        RETURN QUERY SELECT 'already_present'::text, 0::bigint, v_existing.unit_count::bigint;
        RETURN;
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
    PERFORM cutter_governance.fn_iu_change_chunk(p_run_id, p_document_id, 0, p_ops, p_keys, p_versions,
        p_parents, p_ordinals, p_unit_kinds, p_section_types, p_titles, p_bodies, p_body_sha256s, p_statuses);
    RETURN QUERY SELECT 'created'::text, coalesce(cardinality(p_keys), 0)::bigint, 0::bigint;
END
$$;

-- Leg A, every further chunk: only in the transaction that created the run's change set.
CREATE FUNCTION public.fn_iu_change_more(
    p_run_id text, p_document_id text, p_offset integer,
    p_ops text[], p_keys text[], p_versions integer[], p_parents text[], p_ordinals integer[],
    p_unit_kinds text[], p_section_types text[], p_titles text[], p_bodies text[],
    p_body_sha256s text[], p_statuses text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.cut_change_set c
                   WHERE c.run_id = p_run_id AND c.created_xid = pg_current_xact_id()) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: changes are written only in the transaction that created its change set', p_run_id);
    END IF;
    RETURN cutter_governance.fn_iu_change_chunk(p_run_id, p_document_id, p_offset, p_ops, p_keys,
        p_versions, p_parents, p_ordinals, p_unit_kinds, p_section_types, p_titles, p_bodies,
        p_body_sha256s, p_statuses);
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 9. The document is consistent in force: every enacted unit's parent (at its enacted version)
-- is an enacted unit. Checked after an enactment and a revert, inside their transaction.

CREATE FUNCTION cutter_governance.fn_require_parents_in_force(p_run_id text, p_document_id text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_bad record;
BEGIN
    SELECT v.unit_key, v.parent_key INTO v_bad
    FROM public.unit_version v
    JOIN public.information_unit u
      ON u.document_id = v.document_id AND u.unit_key = v.unit_key AND u.lifecycle_status = 'enacted'
    WHERE v.document_id = p_document_id AND v.version_status = 'enacted' AND v.parent_key IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM public.information_unit p
                      WHERE p.document_id = v.document_id AND p.unit_key = v.parent_key
                        AND p.lifecycle_status = 'enacted')
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: afterwards unit %s of %s would be in force under %s, which would not be; nothing is changed',
                             p_run_id, v_bad.unit_key, p_document_id, v_bad.parent_key);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION cutter_governance.fn_require_parents_in_force(text, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 10. Enactment: the whole change set in one transaction under the verified SG_2, only while
-- what the run wrote is still exactly the approved payload with nothing undone. A second call
-- (a resume after a crash) verifies the approval again and changes nothing.

-- Without nested loops, for the reason fn_written_payload gives: the supersession of the
-- revised versions otherwise scans the document once per revision.
CREATE OR REPLACE FUNCTION public.fn_iu_enact(p_run_id text, p_document_id text, p_approval jsonb, p_actor text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v cutter_governance.approval_verdict;
    w record;
    o record;
    v_now timestamptz := clock_timestamp();
    v_added bigint;
    v_revised bigint;
    v_removed bigint;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    -- Serialized on the run's row, not an advisory lock: advisory locks have no privileges,
    -- so any role could take this one first and stall the run; a row lock needs UPDATE.
    PERFORM 1 FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.manifest_envelope m WHERE m.run_id = p_run_id)
       OR NOT EXISTS (SELECT 1 FROM cutter_governance.verify_result r
                      WHERE r.run_id = p_run_id AND r.phase = 'structural_verify' AND r.passed)
       OR NOT EXISTS (SELECT 1 FROM cutter_governance.verify_result r
                      WHERE r.run_id = p_run_id AND r.phase = 'write_verify' AND r.passed) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s cannot be enacted before leg B and both verifies have passed', p_run_id);
    END IF;
    IF EXISTS (SELECT 1 FROM cutter_governance.cut_change_set_enacted e WHERE e.run_id = p_run_id) THEN
        -- Already enacted: only the approval that enacted it is accepted, and nothing moves.
        v := cutter_governance.fn_accept_approval(v_run, 'SG_2', p_approval, p_actor);
        RETURN 0;
    END IF;
    SELECT * INTO w FROM cutter_governance.fn_written_payload(p_run_id, p_document_id);
    IF w.units IS DISTINCT FROM v_run.unit_count::bigint OR w.payload_sha256 IS DISTINCT FROM v_run.payload_sha256
       OR NOT w.positions_ok OR w.retired <> 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: what it wrote is no longer the approved payload (%s writes hash to %s, %s undone; approved %s with %s); void it and cut again',
                             p_run_id, w.units, w.payload_sha256, w.retired, v_run.payload_sha256, v_run.unit_count);
    END IF;
    v := cutter_governance.fn_accept_approval(v_run, 'SG_2', p_approval, p_actor);
    SELECT * INTO o FROM cutter_governance.fn_change_origin(p_run_id, p_document_id);
    -- Changes come into force in the order they are enacted: one that would start before a
    -- change already enacted would leave two versions of a unit in force at once (or erase a
    -- stretch of the document's history).
    IF EXISTS (SELECT 1 FROM cutter_governance.unit_change_history h
               WHERE h.document_id = p_document_id AND h.starts > o.in_force_from) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: it would be in force from %s, before a change of %s already enacted (in force from %s); a change takes effect on or after every change enacted before it: register the text with a later effective date',
                             p_run_id, o.in_force_from, p_document_id,
                             (SELECT max(h.starts) FROM cutter_governance.unit_change_history h
                              WHERE h.document_id = p_document_id));
    END IF;
    PERFORM set_config('cutter.lifecycle_writer', 'on', true);
    PERFORM set_config('cutter.writing_run', p_run_id, true);

    -- The versions the run's revisions replace: superseded, by this run, now.
    UPDATE public.unit_version prev SET version_status = 'superseded', superseded_at = v_now,
                                        superseded_by_run = p_run_id
    FROM public.unit_version rev
    WHERE rev.document_id = p_document_id AND rev.created_by_run = p_run_id
      AND rev.version_status = 'draft' AND rev.version_no > 1
      AND prev.document_id = p_document_id AND prev.unit_key = rev.unit_key
      AND prev.version_status = 'enacted';

    -- Added units, and every version the run wrote, come into force.
    UPDATE public.information_unit SET lifecycle_status = 'enacted'
    WHERE document_id = p_document_id AND created_by_run = p_run_id AND lifecycle_status = 'draft';
    WITH moved AS (
        UPDATE public.unit_version SET version_status = 'enacted', enacted_at = v_now,
                                       document_version = o.document_version, in_force_from = o.in_force_from
        WHERE document_id = p_document_id AND created_by_run = p_run_id AND version_status = 'draft'
        RETURNING unit_key, version_no
    ), logged AS (
        INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
            review_decision_id, reason, approval_gate, key_fingerprint, actor, version_no, action)
        SELECT p_run_id, p_document_id, m.unit_key,
               CASE WHEN m.version_no = 1 THEN 'draft' ELSE 'enacted' END, 'enacted',
               v.review_decision_id,
               CASE WHEN m.version_no = 1 THEN 'enacted under SG_2'
                    ELSE format('version %s enacted under SG_2', m.version_no) END,
               'SG_2', v.key_fingerprint, p_actor, m.version_no,
               CASE WHEN m.version_no = 1 THEN 'add' ELSE 'revise' END
        FROM moved m
        RETURNING action
    )
    SELECT count(*) FILTER (WHERE action = 'add'), count(*) FILTER (WHERE action = 'revise')
    INTO v_added, v_revised FROM logged;

    -- Removed units are retired.
    WITH marked AS (
        UPDATE public.unit_removal SET status = 'enacted', enacted_at = v_now,
                                       document_version = o.document_version, in_force_from = o.in_force_from
        WHERE document_id = p_document_id AND created_by_run = p_run_id AND status = 'pending'
        RETURNING unit_key, version_no
    ), retired AS (
        UPDATE public.information_unit u SET lifecycle_status = 'retired'
        FROM marked m
        WHERE u.document_id = p_document_id AND u.unit_key = m.unit_key AND u.lifecycle_status = 'enacted'
        RETURNING u.unit_key, m.version_no
    ), logged AS (
        INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
            review_decision_id, reason, approval_gate, key_fingerprint, actor, version_no, action)
        SELECT p_run_id, p_document_id, r.unit_key, 'enacted', 'retired', v.review_decision_id,
               'removed under SG_2', 'SG_2', v.key_fingerprint, p_actor, r.version_no, 'remove'
        FROM retired r
        RETURNING 1
    )
    SELECT count(*) INTO v_removed FROM logged;

    IF v_added + v_revised + v_removed <> w.units THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: enacting moved %s of its %s writes; nothing is enacted', p_run_id,
                             v_added + v_revised + v_removed, w.units);
    END IF;
    PERFORM cutter_governance.fn_require_parents_in_force(p_run_id, p_document_id);
    INSERT INTO cutter_governance.cut_change_set_enacted (run_id, document_id, document_version, in_force_from, units)
    VALUES (p_run_id, p_document_id, o.document_version, o.in_force_from, w.units);
    PERFORM set_config('cutter.lifecycle_writer', '', true);
    PERFORM set_config('cutter.writing_run', '', true);
    -- A large change set changes the unit tables enough that plans made on the old statistics
    -- go wrong (the next amendment's reads and writes turned into scans of the document): the
    -- statistics are refreshed now, whether or not autovacuum is on. ANALYZE samples a bounded
    -- number of rows, so this costs about the same for any size of knowledge base.
    IF w.units >= 1000 THEN
        ANALYZE public.information_unit, public.unit_version, public.unit_removal;
    END IF;
    RETURN v_added + v_revised + v_removed;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 11. Compensation: the run's effects undone exactly.
--
--   retire     units the run added: retired (their version withdrawn), soft, the default;
--   delete     units the run added and never enacted: deleted with their version;
--   restore    units the run revised: before enactment its draft version is dropped; after,
--              its version is withdrawn and the version it superseded is in force again;
--   reinstate  units the run removed: before enactment the mark is dropped; after, the mark is
--              withdrawn and the unit is enacted again at its old version.
--
-- Keys of other runs' units are skipped. Undoing enacted effects needs a verified SG_C
-- approval whose reason is the one given, and covers every enacted effect of the run at once
-- (so the approval, replayed later, finds nothing left); it is refused while a later run has
-- changed one of the units since (revert that run first).

DROP FUNCTION public.fn_iu_compensate(text, text, text[], text[], text, jsonb, text);

CREATE FUNCTION public.fn_iu_compensate(p_run_id text, p_document_id text,
                                        p_retire_keys text[], p_delete_keys text[],
                                        p_restore_keys text[], p_reinstate_keys text[],
                                        p_reason text, p_approval jsonb, p_actor text)
RETURNS TABLE (retired bigint, deleted bigint, restored bigint, reinstated bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v cutter_governance.approval_verdict;
    v_retire text[] := coalesce(p_retire_keys, '{}');
    v_delete text[] := coalesce(p_delete_keys, '{}');
    v_restore text[] := coalesce(p_restore_keys, '{}');
    v_reinstate text[] := coalesce(p_reinstate_keys, '{}');
    v_now timestamptz := clock_timestamp();
    v_enacted boolean;
    v_effects bigint;
    v_missing bigint;
    v_named bigint;
    v_later record;
    v_retired bigint := 0;
    v_deleted bigint := 0;
    v_restored bigint := 0;
    v_reinstated bigint := 0;
    n bigint;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    -- Serialized on the run's row, not an advisory lock: advisory locks have no privileges,
    -- so any role could take this one first and stall the run; a row lock needs UPDATE.
    PERFORM 1 FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR UPDATE;
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'a compensation must give its reason';
    END IF;
    v_enacted := EXISTS (SELECT 1 FROM cutter_governance.cut_change_set_enacted e WHERE e.run_id = p_run_id);

    IF v_enacted THEN
        -- The run's enacted effects still in place, and how many of them this call names.
        WITH effects AS (
            SELECT u.unit_key, 'retire' AS action FROM public.information_unit u
            WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id AND u.lifecycle_status = 'enacted'
            UNION ALL
            SELECT x.unit_key, 'restore' FROM public.unit_version x
            WHERE x.document_id = p_document_id AND x.created_by_run = p_run_id AND x.version_no > 1
              AND x.version_status IN ('enacted', 'superseded')
            UNION ALL
            SELECT m.unit_key, 'reinstate' FROM public.unit_removal m
            WHERE m.document_id = p_document_id AND m.created_by_run = p_run_id AND m.status = 'enacted'
        )
        SELECT count(*),
               count(*) FILTER (WHERE NOT ((e.action = 'retire' AND e.unit_key = ANY (v_retire))
                                           OR (e.action = 'restore' AND e.unit_key = ANY (v_restore))
                                           OR (e.action = 'reinstate' AND e.unit_key = ANY (v_reinstate)))),
               count(*) FILTER (WHERE (e.action = 'retire' AND e.unit_key = ANY (v_retire))
                                      OR (e.action = 'restore' AND e.unit_key = ANY (v_restore))
                                      OR (e.action = 'reinstate' AND e.unit_key = ANY (v_reinstate)))
        INTO v_effects, v_missing, v_named
        FROM effects e;
        IF v_named > 0 THEN
            IF p_approval IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'CK004',
                    MESSAGE = format('run %s was enacted: undoing what it enacted needs a signed compensation approval (SG_C)', p_run_id);
            END IF;
            IF btrim(coalesce(p_approval->>'reason', '')) IS DISTINCT FROM btrim(p_reason) THEN
                RAISE EXCEPTION USING ERRCODE = 'CK004',
                    MESSAGE = 'the compensation reason differs from the reason the approver signed';
            END IF;
            -- The approver signed the compensation of the run: every enacted effect goes at
            -- once, so the approval, replayed later, finds nothing left to undo.
            IF v_missing > 0 THEN
                RAISE EXCEPTION USING ERRCODE = 'CK002',
                    MESSAGE = format('run %s: a compensation under SG_C undoes every enacted change of the run at once; %s of its %s enacted changes are not in this one', p_run_id, v_missing, v_effects);
            END IF;
            -- Exactly the previous state, or nothing: no later run may have changed these units.
            SELECT x.unit_key, coalesce(x.superseded_by_run, d.created_by_run, m.created_by_run) AS run
            INTO v_later
            FROM (
                SELECT v1.unit_key, v1.document_id, v1.superseded_by_run FROM public.unit_version v1
                WHERE v1.document_id = p_document_id AND v1.created_by_run = p_run_id
                  AND v1.version_no = 1 AND v1.version_status IN ('enacted', 'superseded')
                UNION ALL
                SELECT x.unit_key, x.document_id, x.superseded_by_run FROM public.unit_version x
                WHERE x.document_id = p_document_id AND x.created_by_run = p_run_id AND x.version_no > 1
                  AND x.version_status IN ('enacted', 'superseded')
            ) x
            LEFT JOIN public.unit_version d
                   ON d.document_id = x.document_id AND d.unit_key = x.unit_key AND d.version_status = 'draft'
            LEFT JOIN public.unit_removal m
                   ON m.document_id = x.document_id AND m.unit_key = x.unit_key
                  AND m.status IN ('pending', 'enacted') AND m.created_by_run <> p_run_id
            WHERE x.superseded_by_run IS NOT NULL OR d.unit_key IS NOT NULL OR m.unit_key IS NOT NULL
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'CK002',
                    MESSAGE = format('run %s: unit %s of %s was changed by run %s after it; revert that run first', p_run_id, v_later.unit_key, p_document_id, v_later.run);
            END IF;
            v := cutter_governance.fn_accept_approval(v_run, 'SG_C', p_approval, p_actor);
        END IF;
    END IF;

    PERFORM set_config('cutter.lifecycle_writer', 'on', true);
    PERFORM set_config('cutter.writing_run', p_run_id, true);

    IF v_enacted THEN
        -- Added units: retired, their version withdrawn.
        WITH target AS (
            SELECT u.unit_key FROM public.information_unit u
            WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
              AND u.lifecycle_status = 'enacted' AND u.unit_key = ANY (v_retire)
            FOR UPDATE
        ), moved AS (
            UPDATE public.information_unit u SET lifecycle_status = 'retired'
            FROM target t WHERE u.document_id = p_document_id AND u.unit_key = t.unit_key
            RETURNING u.unit_key
        ), withdrawn AS (
            UPDATE public.unit_version x SET version_status = 'withdrawn', withdrawn_at = v_now
            FROM moved m
            WHERE x.document_id = p_document_id AND x.unit_key = m.unit_key AND x.version_status = 'enacted'
            RETURNING x.unit_key, x.version_no
        ), logged AS (
            INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
                review_decision_id, reason, approval_gate, key_fingerprint, actor, version_no, action)
            SELECT p_run_id, p_document_id, m.unit_key, 'enacted', 'retired', v.review_decision_id,
                   p_reason, 'SG_C', v.key_fingerprint, p_actor, 1, 'retire'
            FROM moved m
            RETURNING 1
        )
        SELECT count(*) INTO v_retired FROM logged;

        -- Revised units: the run's version withdrawn, the one it superseded in force again.
        WITH target AS (
            SELECT x.unit_key, x.version_no FROM public.unit_version x
            WHERE x.document_id = p_document_id AND x.created_by_run = p_run_id AND x.version_no > 1
              AND x.version_status = 'enacted' AND x.unit_key = ANY (v_restore)
            FOR UPDATE
        ), withdrawn AS (
            UPDATE public.unit_version x SET version_status = 'withdrawn', withdrawn_at = v_now
            FROM target t
            WHERE x.document_id = p_document_id AND x.unit_key = t.unit_key AND x.version_no = t.version_no
            RETURNING x.unit_key
        )
        SELECT count(*) INTO n FROM withdrawn;
        WITH back AS (
            UPDATE public.unit_version x SET version_status = 'enacted', superseded_at = NULL,
                                             superseded_by_run = NULL
            WHERE x.document_id = p_document_id AND x.version_status = 'superseded'
              AND x.superseded_by_run = p_run_id AND x.unit_key = ANY (v_restore)
            RETURNING x.unit_key, x.version_no
        ), logged AS (
            INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
                review_decision_id, reason, approval_gate, key_fingerprint, actor, version_no, action)
            SELECT p_run_id, p_document_id, b.unit_key, 'enacted', 'enacted', v.review_decision_id,
                   p_reason, 'SG_C', v.key_fingerprint, p_actor, b.version_no, 'restore'
            FROM back b
            RETURNING 1
        )
        SELECT count(*) INTO v_restored FROM logged;
        IF v_restored <> n THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s: %s of its versions were withdrawn but %s superseded versions were found to restore; nothing is changed', p_run_id, n, v_restored);
        END IF;

        -- Removed units: the removal withdrawn, the unit enacted again.
        WITH target AS (
            SELECT m.unit_key, m.version_no FROM public.unit_removal m
            WHERE m.document_id = p_document_id AND m.created_by_run = p_run_id
              AND m.status = 'enacted' AND m.unit_key = ANY (v_reinstate)
            FOR UPDATE
        ), withdrawn AS (
            UPDATE public.unit_removal m SET status = 'withdrawn', withdrawn_at = v_now
            FROM target t
            WHERE m.created_by_run = p_run_id AND m.unit_key = t.unit_key
            RETURNING m.unit_key, m.version_no
        ), back AS (
            UPDATE public.information_unit u SET lifecycle_status = 'enacted'
            FROM withdrawn w
            WHERE u.document_id = p_document_id AND u.unit_key = w.unit_key AND u.lifecycle_status = 'retired'
            RETURNING u.unit_key, w.version_no
        ), logged AS (
            INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
                review_decision_id, reason, approval_gate, key_fingerprint, actor, version_no, action)
            SELECT p_run_id, p_document_id, b.unit_key, 'retired', 'enacted', v.review_decision_id,
                   p_reason, 'SG_C', v.key_fingerprint, p_actor, b.version_no, 'reinstate'
            FROM back b
            RETURNING 1
        )
        SELECT count(*) INTO v_reinstated FROM logged;
        PERFORM cutter_governance.fn_require_parents_in_force(p_run_id, p_document_id);
    ELSE
        -- Drafts never enacted. Revised units: the run's draft version dropped.
        WITH dropped AS (
            DELETE FROM public.unit_version x
            WHERE x.document_id = p_document_id AND x.created_by_run = p_run_id AND x.version_no > 1
              AND x.version_status = 'draft' AND x.unit_key = ANY (v_restore)
            RETURNING x.unit_key, x.version_no
        ), logged AS (
            INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
                reason, actor, version_no, action)
            SELECT p_run_id, p_document_id, d.unit_key, 'enacted', 'enacted',
                   p_reason, p_actor, d.version_no, 'restore'
            FROM dropped d
            RETURNING 1
        )
        SELECT count(*) INTO v_restored FROM logged;
        -- Removed units: the pending mark dropped.
        WITH dropped AS (
            DELETE FROM public.unit_removal m
            WHERE m.document_id = p_document_id AND m.created_by_run = p_run_id
              AND m.status = 'pending' AND m.unit_key = ANY (v_reinstate)
            RETURNING m.unit_key, m.version_no
        ), logged AS (
            INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
                reason, actor, version_no, action)
            SELECT p_run_id, p_document_id, d.unit_key, 'enacted', 'enacted',
                   p_reason, p_actor, d.version_no, 'reinstate'
            FROM dropped d
            RETURNING 1
        )
        SELECT count(*) INTO v_reinstated FROM logged;
        -- Added units: retired (their version withdrawn) ...
        WITH target AS (
            SELECT u.unit_key FROM public.information_unit u
            WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
              AND u.lifecycle_status = 'draft' AND u.unit_key = ANY (v_retire)
            FOR UPDATE
        ), moved AS (
            UPDATE public.information_unit u SET lifecycle_status = 'retired'
            FROM target t WHERE u.document_id = p_document_id AND u.unit_key = t.unit_key
            RETURNING u.unit_key
        ), withdrawn AS (
            UPDATE public.unit_version x SET version_status = 'withdrawn', withdrawn_at = v_now
            FROM moved m
            WHERE x.document_id = p_document_id AND x.unit_key = m.unit_key AND x.version_status = 'draft'
            RETURNING 1
        ), logged AS (
            INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status,
                reason, actor, version_no, action)
            SELECT p_run_id, p_document_id, m.unit_key, 'draft', 'retired', p_reason, p_actor, 1, 'retire'
            FROM moved m
            RETURNING 1
        )
        SELECT count(*) INTO v_retired FROM logged;
        -- ... or deleted with their version.
        DELETE FROM public.unit_version x
        USING public.information_unit u
        WHERE x.document_id = p_document_id AND u.document_id = x.document_id AND u.unit_key = x.unit_key
          AND u.created_by_run = p_run_id AND u.lifecycle_status = 'draft'
          AND u.unit_key = ANY (v_delete);
        DELETE FROM public.information_unit u
        WHERE u.document_id = p_document_id AND u.created_by_run = p_run_id
          AND u.lifecycle_status = 'draft' AND u.unit_key = ANY (v_delete);
        GET DIAGNOSTICS v_deleted = ROW_COUNT;
    END IF;
    PERFORM set_config('cutter.lifecycle_writer', '', true);
    PERFORM set_config('cutter.writing_run', '', true);
    RETURN QUERY SELECT v_retired, v_deleted, v_restored, v_reinstated;
END
$$;

-- A run's lock is released only when it leaves nothing pending: no draft unit, no draft
-- version, no pending removal.
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
                 AND u.lifecycle_status = 'draft')
       OR EXISTS (SELECT 1 FROM public.unit_version x
                  WHERE x.document_id = p_document_id AND x.created_by_run = p_run_id
                    AND x.version_status = 'draft')
       OR EXISTS (SELECT 1 FROM public.unit_removal m
                  WHERE m.document_id = p_document_id AND m.created_by_run = p_run_id
                    AND m.status = 'pending') THEN
        RAISE EXCEPTION USING ERRCODE = 'CK005',
            MESSAGE = format('run %s still has draft changes of %s: void or revert it before its lock is released', p_run_id, p_document_id);
    END IF;
    DELETE FROM cutter_governance.document_lock WHERE document_id = p_document_id AND run_id = p_run_id;
    INSERT INTO cutter_governance.document_lock_log (document_id, run_id, action, actor)
    VALUES (p_document_id, p_run_id, 'released', p_actor);
    RETURN true;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 12. Fingerprints for the other-documents check: each unit at its newest version that is not
-- withdrawn (the draft if there is one), with its number, lifecycle and any live removal, so
-- any amendment of a document changes that document's fingerprint and no other.

CREATE OR REPLACE VIEW cutter_governance.document_fingerprint AS
SELECT u.document_id,
       count(*)::bigint AS units,
       encode(sha256(convert_to(string_agg(
           octet_length(u.unit_key)::text || ':' || u.unit_key || chr(31) || u.lifecycle_status
           || chr(31) || coalesce(v.version_no::text, '') || chr(31) || coalesce(v.version_status, '')
           || chr(31) || octet_length(coalesce(v.parent_key, ''))::text || ':' || coalesce(v.parent_key, '')
           || chr(31) || coalesce(v.ordinal::text, '') || chr(31) || coalesce(v.body_sha256, '')
           || chr(31) || coalesce(v.provision_status, '') || chr(31) || coalesce(v.unit_kind, '')
           || chr(31) || coalesce(v.section_type, '')
           || chr(31) || octet_length(coalesce(v.title, ''))::text || ':' || coalesce(v.title, '')
           || chr(31) || coalesce((SELECT m.status || '@' || m.version_no::text FROM public.unit_removal m
                                   WHERE m.document_id = u.document_id AND m.unit_key = u.unit_key
                                     AND m.status <> 'withdrawn'), ''),
           chr(10) ORDER BY u.unit_key COLLATE "C"), 'UTF8')), 'hex') AS content_sha256
FROM public.information_unit u
LEFT JOIN LATERAL (
    SELECT x.* FROM public.unit_version x
    WHERE x.document_id = u.document_id AND x.unit_key = u.unit_key
    ORDER BY (x.version_status = 'withdrawn'), x.version_no DESC
    LIMIT 1
) v ON true
GROUP BY u.document_id;

-- ---------------------------------------------------------------------------------------------
-- 13. What is in force.
--
-- Every change that was enacted and not reverted, per unit in the order it was enacted: a
-- version starts being in force at its in_force_from, a removal ends the unit at its own; each
-- lasts until the next one's start (an interval that ends before it starts is empty).

CREATE VIEW cutter_governance.unit_change_history AS
SELECT c.document_id, c.unit_key, c.version_no, c.is_version, c.document_version, c.starts,
       c.enacted_at,
       lead(c.starts) OVER (PARTITION BY c.document_id, c.unit_key
                            ORDER BY c.enacted_at, c.version_no, c.is_version DESC) AS ends
FROM (
    SELECT x.document_id, x.unit_key, x.version_no, true AS is_version, x.document_version,
           x.in_force_from AS starts, x.enacted_at
    FROM public.unit_version x WHERE x.version_status IN ('enacted', 'superseded')
    UNION ALL
    SELECT m.document_id, m.unit_key, m.version_no, false, m.document_version, m.in_force_from,
           m.enacted_at
    FROM public.unit_removal m WHERE m.status = 'enacted'
) c;

-- The units in force now, one row each at its version in force.
CREATE VIEW public.unit_in_force AS
SELECT x.document_id, x.unit_key, x.version_no, h.document_version, x.parent_key, x.ordinal,
       x.unit_kind, x.section_type, x.title, x.body, x.body_sha256, x.provision_status AS status,
       h.starts AS in_force_from
FROM cutter_governance.unit_change_history h
JOIN public.unit_version x
  ON x.document_id = h.document_id AND x.unit_key = h.unit_key AND x.version_no = h.version_no
WHERE h.is_version AND h.starts <= now() AND (h.ends IS NULL OR h.ends > now());

-- The document as in force at a moment (as_of, default now) or at a document version (the
-- latest change of each unit enacted for that version or an earlier one). Read-only; callable
-- by whoever is granted EXECUTE, without rights on the tables.
CREATE FUNCTION public.document_in_force(p_document_id text, as_of timestamptz DEFAULT NULL,
                                         version integer DEFAULT NULL)
RETURNS TABLE (document_id text, unit_key text, version_no integer, document_version integer,
               parent_key text, ordinal integer, unit_kind text, section_type text, title text,
               body text, body_sha256 text, status text, in_force_from timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF document_in_force.as_of IS NOT NULL AND document_in_force.version IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = 'document_in_force: give a moment (as_of) or a document version (version), not both';
    END IF;
    IF document_in_force.version IS NOT NULL THEN
        RETURN QUERY
        SELECT x.document_id, x.unit_key, x.version_no, h.document_version, x.parent_key, x.ordinal,
               x.unit_kind, x.section_type, x.title, x.body, x.body_sha256, x.provision_status,
               h.starts
        FROM (
            SELECT DISTINCT ON (c.unit_key) c.*
            FROM cutter_governance.unit_change_history c
            WHERE c.document_id = p_document_id AND c.document_version <= document_in_force.version
            ORDER BY c.unit_key, c.enacted_at DESC, c.version_no DESC, c.is_version
        ) h
        JOIN public.unit_version x
          ON x.document_id = h.document_id AND x.unit_key = h.unit_key AND x.version_no = h.version_no
        WHERE h.is_version
        ORDER BY x.unit_key COLLATE "C";
        RETURN;
    END IF;
    RETURN QUERY
    SELECT x.document_id, x.unit_key, x.version_no, h.document_version, x.parent_key, x.ordinal,
           x.unit_kind, x.section_type, x.title, x.body, x.body_sha256, x.provision_status, h.starts
    FROM cutter_governance.unit_change_history h
    JOIN public.unit_version x
      ON x.document_id = h.document_id AND x.unit_key = h.unit_key AND x.version_no = h.version_no
    WHERE h.document_id = p_document_id AND h.is_version
      AND h.starts <= coalesce(document_in_force.as_of, now())
      AND (h.ends IS NULL OR h.ends > coalesce(document_in_force.as_of, now()))
    ORDER BY x.unit_key COLLATE "C";
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Leg B and the verify results, as in V10, serialized on the run's row instead of an advisory
-- lock (advisory locks carry no privileges: the verify role could hold a run's lock and stall
-- it).

CREATE OR REPLACE FUNCTION public.fn_leg_b_record(p_run_id text, p_document_id text, p_backup_sha256 text,
                                       p_grant_sha256 text, p_manifest jsonb)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
BEGIN
    v_run := cutter_governance.fn_require_run(p_run_id, p_document_id, true);
    -- Serialized on the run's row (see fn_iu_change): an advisory lock can be taken first by
    -- any role.
    PERFORM 1 FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR UPDATE;
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
    -- Serialized on the run's row (see fn_iu_change): an advisory lock can be taken first by
    -- any role.
    PERFORM 1 FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR UPDATE;
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

-- V12: versions of a document in the source registry.
--
-- A legal text changes (a law is amended). Until V12 the registry pinned one sha256 per
-- document for good, and an amended text could only be registered under a new document id.
-- From here on every registered text of a document is a version of it:
--
--   * `source_version` keeps each version (1, 2, ... without gaps or repeats, one per text),
--     with who registered it, when, and the date it takes effect; append-only;
--   * `source_registry.pinned_sha256` stays, and is always the latest version's sha256: it
--     changes only together with a new version (`fn_register_source_version`, admin only, which
--     numbers versions under a row lock on the document's registry row), and triggers hold
--     that for every caller, the owner included;
--   * a run records the version it cuts (`run.source_version`, set by `fn_run_begin` from the
--     registry; NULL for runs begun before V12).
--
-- SQLSTATEs as before: CK002 a cutter rule refused the call, CK003 an append-only or
-- immutable row was to be changed.

CREATE TABLE cutter_governance.source_version (
    document_id    text NOT NULL REFERENCES cutter_governance.source_registry (document_id),
    version_no     integer NOT NULL CHECK (version_no >= 1),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    -- The person or host the client acts for; the database user beside it.
    registered_by  text NOT NULL CHECK (btrim(registered_by) <> ''),
    db_user        text NOT NULL DEFAULT session_user,
    -- The date the text takes effect, when the registrant says so.
    effective_date date,
    PRIMARY KEY (document_id, version_no),
    UNIQUE (document_id, sha256)
);

-- Every document registered before V12 has one text: its version 1.
INSERT INTO cutter_governance.source_version (document_id, version_no, sha256, registered_at,
                                             registered_by)
SELECT s.document_id, 1, s.pinned_sha256, s.registered_at, 'registered before versions (V12)'
FROM cutter_governance.source_registry s;

CREATE TRIGGER source_version_append_only BEFORE UPDATE OR DELETE ON cutter_governance.source_version
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_append_only();
CREATE TRIGGER source_version_no_truncate BEFORE TRUNCATE ON cutter_governance.source_version
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- A version is the next one of its document: no gap (two racing inserts compute the same
-- number, and the primary key lets one of them through).
CREATE FUNCTION cutter_governance.tg_source_version_in_order() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_next integer;
BEGIN
    SELECT coalesce(max(v.version_no), 0) + 1 INTO v_next
    FROM cutter_governance.source_version v WHERE v.document_id = NEW.document_id;
    IF NEW.version_no <> v_next THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('document %s: the next version is %s, not %s', NEW.document_id, v_next, NEW.version_no);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER source_version_in_order BEFORE INSERT ON cutter_governance.source_version
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_source_version_in_order();

-- At commit, the registry pins the document's latest version (checked after every new
-- version and every registry row written).
CREATE FUNCTION cutter_governance.tg_source_pin_is_latest() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_pin text;
    v_latest text;
BEGIN
    SELECT s.pinned_sha256 INTO v_pin
    FROM cutter_governance.source_registry s WHERE s.document_id = NEW.document_id;
    SELECT v.sha256 INTO v_latest
    FROM cutter_governance.source_version v WHERE v.document_id = NEW.document_id
    ORDER BY v.version_no DESC LIMIT 1;
    IF v_pin IS DISTINCT FROM v_latest THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('document %s: the registry pins %s, its latest version is %s; the pin changes only with a new version (fn_register_source_version)',
                             NEW.document_id, coalesce(v_pin, 'nothing'), coalesce(v_latest, 'none'));
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER source_version_pin_is_latest AFTER INSERT ON cutter_governance.source_version
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_source_pin_is_latest();
CREATE CONSTRAINT TRIGGER source_registry_pin_is_latest AFTER INSERT OR UPDATE ON cutter_governance.source_registry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_source_pin_is_latest();

-- A registry row is never deleted (its versions and runs refer to it); its id and
-- registration time never change, its pin only to the latest version, and a protected
-- document stays protected. The title may be corrected.
CREATE FUNCTION cutter_governance.tg_source_registry_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_latest text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('document %s: a registered document is never deleted; its versions are its history', OLD.document_id);
    END IF;
    IF (NEW.document_id, NEW.registered_at) IS DISTINCT FROM (OLD.document_id, OLD.registered_at)
       OR (OLD.protected AND NOT NEW.protected) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('document %s: its id and registration time never change, and a protected document stays protected', OLD.document_id);
    END IF;
    IF NEW.pinned_sha256 IS DISTINCT FROM OLD.pinned_sha256 THEN
        SELECT v.sha256 INTO v_latest
        FROM cutter_governance.source_version v WHERE v.document_id = NEW.document_id
        ORDER BY v.version_no DESC LIMIT 1;
        IF NEW.pinned_sha256 IS DISTINCT FROM v_latest THEN
            RAISE EXCEPTION USING ERRCODE = 'CK003',
                MESSAGE = format('document %s: a pin is never replaced; register the new text as the next version (fn_register_source_version)', OLD.document_id);
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER source_registry_guard BEFORE UPDATE OR DELETE ON cutter_governance.source_registry
    FOR EACH ROW EXECUTE FUNCTION cutter_governance.tg_source_registry_guard();
CREATE TRIGGER source_registry_no_truncate BEFORE TRUNCATE ON cutter_governance.source_registry
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.tg_append_only();

-- Registers a text of a document (admin only): the first text creates the registry row and
-- version 1 (a title is needed); a new text of a registered document becomes the next
-- version and the registry's pin; a text already registered answers its version with
-- created = false and changes nothing. Concurrent registrations of a document are serialized
-- on its registry row, so versions are numbered without gaps or repeats. p_protected marks the
-- document protected with a new version (never unmarks it); p_title is kept for a new
-- document and otherwise ignored.
CREATE FUNCTION cutter_governance.fn_register_source_version(
    p_document_id text, p_title text, p_sha256 text, p_protected boolean, p_effective date,
    p_actor text)
RETURNS TABLE (version_no integer, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_existing integer;
    v_next integer;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('register document %s: the registry is written only in READ COMMITTED transactions (this one is %s)',
                             p_document_id, upper(current_setting('transaction_isolation')));
    END IF;
    IF coalesce(p_document_id, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'register a document: its id is empty';
    END IF;
    IF p_sha256 IS NULL OR p_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('register document %s: %s is not a sha256 (64 lowercase hex digits)', p_document_id, coalesce(p_sha256, 'NULL'));
    END IF;
    IF coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('register document %s: say who acts (actor)', p_document_id);
    END IF;
    -- Takes the registry row, waiting for a registration of the same document in flight.
    PERFORM 1 FROM cutter_governance.source_registry s WHERE s.document_id = p_document_id FOR UPDATE;
    IF NOT FOUND THEN
        IF coalesce(btrim(p_title), '') = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('register document %s: it is new, so give its title', p_document_id);
        END IF;
        INSERT INTO cutter_governance.source_registry (document_id, title, pinned_sha256, protected)
        VALUES (p_document_id, btrim(p_title), p_sha256, coalesce(p_protected, false))
        ON CONFLICT (document_id) DO NOTHING;
        IF FOUND THEN
            INSERT INTO cutter_governance.source_version (document_id, version_no, sha256, registered_by, effective_date)
            VALUES (p_document_id, 1, p_sha256, p_actor, p_effective);
            RETURN QUERY SELECT 1, true;
            RETURN;
        END IF;
        -- A first registration of the same document committed meanwhile: go on as a later one.
        PERFORM 1 FROM cutter_governance.source_registry s WHERE s.document_id = p_document_id FOR UPDATE;
    END IF;
    SELECT v.version_no INTO v_existing
    FROM cutter_governance.source_version v
    WHERE v.document_id = p_document_id AND v.sha256 = p_sha256;
    IF FOUND THEN
        RETURN QUERY SELECT v_existing, false;
        RETURN;
    END IF;
    -- Versions take effect in the order they are numbered: a later text that took effect
    -- before an earlier one would put two versions of a provision in force at once.
    IF p_effective IS NOT NULL AND EXISTS (
        SELECT 1 FROM cutter_governance.source_version v
        WHERE v.document_id = p_document_id AND v.effective_date > p_effective
    ) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('register document %s: an earlier version takes effect on %s, after %s; a new version takes effect on or after every earlier one (give a later --effective date)',
                             p_document_id,
                             (SELECT to_char(max(v.effective_date), 'YYYY-MM-DD') FROM cutter_governance.source_version v
                              WHERE v.document_id = p_document_id),
                             to_char(p_effective, 'YYYY-MM-DD'));
    END IF;
    SELECT max(v.version_no) + 1 INTO v_next
    FROM cutter_governance.source_version v WHERE v.document_id = p_document_id;
    INSERT INTO cutter_governance.source_version (document_id, version_no, sha256, registered_by, effective_date)
    VALUES (p_document_id, v_next, p_sha256, p_actor, p_effective);
    UPDATE cutter_governance.source_registry s
    SET pinned_sha256 = p_sha256, protected = s.protected OR coalesce(p_protected, false)
    WHERE s.document_id = p_document_id;
    RETURN QUERY SELECT v_next, true;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- A run records the version it cuts.

ALTER TABLE cutter_governance.run
    ADD COLUMN source_version integer CHECK (source_version >= 1),
    ADD FOREIGN KEY (document_id, source_version)
        REFERENCES cutter_governance.source_version (document_id, version_no);

CREATE OR REPLACE FUNCTION cutter_governance.tg_run_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR (NEW.run_id, NEW.document_id, NEW.kb_id, NEW.source_sha256, NEW.source_version,
           NEW.protected, NEW.actor, NEW.db_user, NEW.cutter_version, NEW.cutter_commit,
           NEW.begun_at)
          IS DISTINCT FROM
          (OLD.run_id, OLD.document_id, OLD.kb_id, OLD.source_sha256, OLD.source_version,
           OLD.protected, OLD.actor, OLD.db_user, OLD.cutter_version, OLD.cutter_commit,
           OLD.begun_at)
       OR OLD.payload_sha256 IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CK003',
            MESSAGE = format('run %s: the record is immutable once its plan is recorded (%s refused)', OLD.run_id, TG_OP);
    END IF;
    RETURN NEW;
END
$$;

-- fn_run_begin as in V10, and the run records the registry's latest version with its pin; a
-- repeat answers what the run recorded (its version too), whatever was registered since.
DROP FUNCTION cutter_governance.fn_run_begin(text, text, text, text, text);
CREATE FUNCTION cutter_governance.fn_run_begin(p_run_id text, p_document_id text, p_actor text,
                                               p_cutter_version text, p_cutter_commit text)
RETURNS TABLE (kb_id uuid, source_sha256 text, protected boolean, source_version integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run cutter_governance.run%ROWTYPE;
    v_pin text;
    v_protected boolean;
    v_version integer;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    -- No advisory lock: any role may take one (they have no privileges) and stall the run. Two
    -- begins of one run meet on the run's primary key instead; the later answers as a repeat.
    SELECT * INTO v_run FROM cutter_governance.run r WHERE r.run_id = p_run_id;
    IF FOUND THEN
        IF v_run.document_id <> p_document_id THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s was begun for document %s, not %s', p_run_id, v_run.document_id, p_document_id);
        END IF;
        RETURN QUERY SELECT v_run.kb_id, v_run.source_sha256, v_run.protected, v_run.source_version;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM cutter_governance.document_lock_log g WHERE g.run_id = p_run_id)
       OR EXISTS (SELECT 1 FROM cutter_governance.cut_change_set c WHERE c.run_id = p_run_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run id %s is already known to this knowledge base; choose another', p_run_id);
    END IF;
    -- The pin and its version in one statement: one snapshot of a registration in flight.
    SELECT s.pinned_sha256, s.protected, v.version_no INTO v_pin, v_protected, v_version
    FROM cutter_governance.source_registry s
    JOIN cutter_governance.source_version v
      ON v.document_id = s.document_id AND v.sha256 = s.pinned_sha256
    WHERE s.document_id = p_document_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('document %s is not in the source registry; register it with `cutter source register FILE --document-id %s --title TITLE`', p_document_id, p_document_id);
    END IF;
    IF coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = format('begin run %s: say who acts (actor)', p_run_id);
    END IF;
    INSERT INTO cutter_governance.run (run_id, document_id, kb_id, source_sha256, source_version,
                                       protected, actor, cutter_version, cutter_commit)
    VALUES (p_run_id, p_document_id, (SELECT i.kb_id FROM cutter_governance.kb_identity i),
            v_pin, v_version, v_protected, p_actor,
            coalesce(p_cutter_version, 'unknown'), coalesce(p_cutter_commit, 'unknown'))
    ON CONFLICT (run_id) DO NOTHING
    RETURNING * INTO v_run;
    IF NOT FOUND THEN
        -- A concurrent begin of the same run committed first: answer what it recorded.
        SELECT * INTO v_run FROM cutter_governance.run r WHERE r.run_id = p_run_id;
        IF v_run.document_id <> p_document_id THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('run %s was begun for document %s, not %s', p_run_id, v_run.document_id, p_document_id);
        END IF;
    END IF;
    RETURN QUERY SELECT v_run.kb_id, v_run.source_sha256, v_run.protected, v_run.source_version;
END
$$;

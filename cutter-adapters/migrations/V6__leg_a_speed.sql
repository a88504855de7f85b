-- V6: leg A at bulk speed (see cutter-adapters/benches/leg_a.rs).
--
-- 1. The affected-row foreign key to cut_change_set is dropped: its only writer, fn_iu_create,
--    inserts the change set first in the same transaction, and the append-only trigger keeps
--    change sets from being deleted, so the check could never fail; it cost a lookup per row
--    (two rows per unit).
-- 2. fn_iu_create unnests the unit arrays in the select list instead of FROM: a function
--    scan in FROM materialises every row first (spilling ~100 MB of temp files for 100,000
--    units), the select-list form streams them. Behaviour is unchanged.

ALTER TABLE cutter_governance.cut_change_set_affected_row
    DROP CONSTRAINT cut_change_set_affected_row_run_id_fkey;

CREATE OR REPLACE FUNCTION public.fn_iu_create(
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

    INSERT INTO cutter_governance.cut_change_set (run_id, document_id, payload_sha256, unit_count)
    VALUES (p_run_id, p_document_id, p_payload_sha256, v_n);

    -- Set-returning functions in the select list advance in lockstep, one row per unit.
    INSERT INTO public.information_unit (document_id, unit_key, parent_key, ordinal, plan_position,
                                         unit_kind, section_type, title, lifecycle_status, created_by_run)
    SELECT p_document_id, unnest(p_keys), unnest(p_parents), unnest(p_ordinals),
           generate_series(0, v_n - 1), unnest(p_unit_kinds), unnest(p_section_types),
           unnest(p_titles), 'draft', p_run_id;

    INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256, created_by_run)
    SELECT p_document_id, unnest(p_keys), 1, unnest(p_bodies), unnest(p_body_sha256s), p_run_id;

    INSERT INTO cutter_governance.cut_change_set_affected_row (run_id, table_name, document_id, unit_key, action)
    SELECT p_run_id, 'public.information_unit', p_document_id, unnest(p_keys), 'insert'
    UNION ALL
    SELECT p_run_id, 'public.unit_version', p_document_id, unnest(p_keys), 'insert';

    RETURN QUERY SELECT 'created'::text, v_n::bigint, 0::bigint;
END
$$;

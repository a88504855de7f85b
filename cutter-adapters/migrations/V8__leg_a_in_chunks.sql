-- V8: leg A in chunks, all in one transaction. One Bind message of the whole plan made the
-- client encode and the server decode ~120 MB before the first row was written, with nothing
-- overlapping; chunks of a few thousand units let the client send the next chunk while the
-- server writes the previous one, and bound the memory both sides need.
--
-- fn_iu_create now takes the first chunk and the plan's total unit count; it creates the
-- change set (or answers 'already_present' for a repeated run, as before) and marks this
-- transaction as the one writing the run. fn_iu_create_more takes every further chunk and
-- refuses unless that mark is set, so chunks can never be appended to a committed run.

DROP FUNCTION public.fn_iu_create(text, text, text, text[], text[], integer[], text[], text[],
                                  text[], text[], text[]);

CREATE FUNCTION public.fn_iu_create(
    p_run_id text, p_document_id text, p_payload_sha256 text, p_total integer,
    p_keys text[], p_parents text[], p_ordinals integer[], p_unit_kinds text[],
    p_section_types text[], p_titles text[], p_bodies text[], p_body_sha256s text[])
RETURNS TABLE (result text, created bigint, already_present bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
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
    IF p_total IS NULL OR p_total < coalesce(cardinality(p_keys), 0) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'the total unit count is smaller than the first chunk';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cutter_governance.source_registry WHERE document_id = p_document_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('document %s is not registered', p_document_id);
    END IF;
    INSERT INTO cutter_governance.cut_change_set (run_id, document_id, payload_sha256, unit_count)
    VALUES (p_run_id, p_document_id, p_payload_sha256, p_total);
    -- Transaction-local: visible to the chunks that follow in this transaction only.
    PERFORM set_config('cutter.leg_a_run', p_run_id, true);
    PERFORM public.fn_iu_create_more(p_run_id, p_document_id, 0, p_keys, p_parents, p_ordinals,
        p_unit_kinds, p_section_types, p_titles, p_bodies, p_body_sha256s);
    RETURN QUERY SELECT 'created'::text, coalesce(cardinality(p_keys), 0)::bigint, 0::bigint;
END
$$;

CREATE FUNCTION public.fn_iu_create_more(
    p_run_id text, p_document_id text, p_offset integer,
    p_keys text[], p_parents text[], p_ordinals integer[], p_unit_kinds text[],
    p_section_types text[], p_titles text[], p_bodies text[], p_body_sha256s text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_n integer := coalesce(cardinality(p_keys), 0);
BEGIN
    IF coalesce(current_setting('cutter.leg_a_run', true), '') <> p_run_id THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002',
            MESSAGE = format('run %s: units are added only in the transaction that created its change set', p_run_id);
    END IF;
    IF coalesce(cardinality(p_parents), 0) <> v_n OR coalesce(cardinality(p_ordinals), 0) <> v_n
       OR coalesce(cardinality(p_unit_kinds), 0) <> v_n OR coalesce(cardinality(p_section_types), 0) <> v_n
       OR coalesce(cardinality(p_titles), 0) <> v_n OR coalesce(cardinality(p_bodies), 0) <> v_n
       OR coalesce(cardinality(p_body_sha256s), 0) <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'CK002', MESSAGE = 'the unit arrays differ in length';
    END IF;
    IF v_n = 0 THEN
        RETURN 0;
    END IF;
    -- Set-returning functions in the select list advance in lockstep, one row per unit, and
    -- stream instead of being materialised first.
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

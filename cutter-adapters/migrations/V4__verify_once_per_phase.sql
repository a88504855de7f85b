-- V4: one verify result per run and phase. A run resumed after a crash between the commit of
-- its verify result and the save of its state verifies again; the second, equal result is
-- not recorded twice, and a different one is refused rather than hidden.

CREATE UNIQUE INDEX verify_result_once_per_phase
    ON cutter_governance.verify_result (run_id, phase);

CREATE OR REPLACE FUNCTION public.fn_record_verify(p_run_id text, p_phase text, p_passed boolean,
                                                  p_checked bigint, p_mismatches text[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_passed boolean;
BEGIN
    PERFORM cutter_governance.fn_require_armed(p_run_id);
    PERFORM pg_advisory_xact_lock(hashtextextended('cutter.run:' || p_run_id, 0));
    SELECT passed INTO v_passed FROM cutter_governance.verify_result
    WHERE run_id = p_run_id AND phase = p_phase;
    IF FOUND THEN
        IF v_passed IS DISTINCT FROM p_passed THEN
            RAISE EXCEPTION USING ERRCODE = 'CK002',
                MESSAGE = format('verify %s of run %s is already recorded as passed=%s', p_phase, p_run_id, v_passed);
        END IF;
        RETURN;
    END IF;
    INSERT INTO cutter_governance.verify_result (run_id, phase, passed, checked, mismatches)
    VALUES (p_run_id, p_phase, p_passed, p_checked, coalesce(p_mismatches, '{}'));
END
$$;

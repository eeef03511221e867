DECLARE
    v_candidate jsonb;
    v_table_ids uuid[];
    v_attempt integer := 0;
    v_key text;
    v_rows jsonb;
BEGIN
    IF p_table_candidates IS NULL OR jsonb_typeof(p_table_candidates) <> 'array'
       OR jsonb_array_length(p_table_candidates) = 0 THEN
        RAISE EXCEPTION 'assign_tables_first_fit requires a non-empty JSON array of table-id arrays'
            USING ERRCODE = '22023';
    END IF;

    FOR v_candidate IN SELECT c FROM jsonb_array_elements(p_table_candidates) AS c LOOP
        v_attempt := v_attempt + 1;
        IF jsonb_typeof(v_candidate) <> 'array' THEN
            RAISE EXCEPTION 'candidate % is not a JSON array of table ids', v_attempt USING ERRCODE = '22023';
        END IF;
        -- jsonb instead of uuid[][]: candidate sets of different sizes (a 2-D array must be rectangular)
        SELECT array_agg(x::uuid) INTO v_table_ids FROM jsonb_array_elements_text(v_candidate) AS x;
        v_key := CASE WHEN p_idempotency_key IS NULL THEN NULL
                      ELSE format('%s-alt%s', p_idempotency_key, lpad(v_attempt::text, 2, '0')) END;
        BEGIN
            -- Collected inside the sub-block so a failed attempt leaves nothing behind (it rolls back).
            SELECT jsonb_agg(to_jsonb(r)) INTO v_rows
              FROM public.assign_tables_atomic_v2(p_booking_id, v_table_ids, v_key, p_require_adjacency,
                                                  p_assigned_by, p_start_at, p_end_at) AS r;
            RETURN QUERY
                SELECT (e->>'table_id')::uuid, (e->>'start_at')::timestamptz, (e->>'end_at')::timestamptz,
                       (e->>'merge_group_id')::uuid
                  FROM jsonb_array_elements(coalesce(v_rows, '[]'::jsonb)) AS e;
            RETURN;
        EXCEPTION
            WHEN unique_violation OR exclusion_violation THEN
                NULL;  -- next candidate
            WHEN SQLSTATE 'CA002' THEN
                NULL;  -- allocations_no_overlap from assign_tables_atomic_v2: next candidate
        END;
    END LOOP;

    RAISE EXCEPTION 'allocations_no_overlap'
        USING ERRCODE = 'CA002', DETAIL = format('all %s candidate table sets conflict', v_attempt);
END

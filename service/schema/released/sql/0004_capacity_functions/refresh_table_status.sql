DECLARE
    v_current public.table_status;
    v_target public.table_status;
    v_now timestamptz := now();
BEGIN
    SELECT t.status INTO v_current FROM public.table_inventory t WHERE t.id = p_table_id;
    IF NOT FOUND THEN
        RETURN;  -- table deleted (e.g. cascade); nothing to refresh
    END IF;

    IF EXISTS (SELECT 1 FROM public.allocations a
               WHERE a.resource_type = 'table' AND a.resource_id = p_table_id
                 AND a.is_maintenance AND a."window" @> v_now) THEN
        v_target := 'out_of_service';
    ELSIF v_current = 'out_of_service' THEN
        v_target := v_current;  -- set by hand; only a maintenance block decides it here
    ELSIF EXISTS (SELECT 1 FROM public.allocations a
                  JOIN public.bookings b ON b.id = a.booking_id
                  WHERE a.resource_type = 'table' AND a.resource_id = p_table_id
                    AND NOT a.shadow AND a."window" @> v_now
                    AND b.status = 'checked_in') THEN
        v_target := 'occupied';
    -- [REC] a shadow row mirrors a hold, which is not a reservation
    ELSIF EXISTS (SELECT 1 FROM public.allocations a
                  WHERE a.resource_type = 'table' AND a.resource_id = p_table_id
                    AND NOT a.shadow AND a."window" @> v_now) THEN
        v_target := CASE WHEN v_current = 'occupied' THEN v_current ELSE 'reserved' END;
    ELSE
        v_target := 'available';
    END IF;

    -- Only write on change: an unchanged row needs no new version and no updated_at bump.
    IF v_target IS DISTINCT FROM v_current THEN
        UPDATE public.table_inventory SET status = v_target WHERE id = p_table_id;
    END IF;
END

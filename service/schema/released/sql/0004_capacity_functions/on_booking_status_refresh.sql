DECLARE
    v_table_id uuid;
BEGIN
    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    FOR v_table_id IN
        SELECT DISTINCT a.table_id FROM public.booking_table_assignments a WHERE a.booking_id = NEW.id
    LOOP
        PERFORM public.refresh_table_status(v_table_id);
    END LOOP;
    RETURN NULL;
END

DECLARE
    v_hold public.table_holds%ROWTYPE;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT * INTO v_hold FROM public.table_holds h WHERE h.id = NEW.hold_id;
        IF NOT FOUND THEN
            RETURN NULL;  -- the FK on hold_id reports this
        END IF;
        INSERT INTO public.table_hold_windows AS w
            (hold_id, table_id, restaurant_id, booking_id, start_at, end_at, expires_at)
        VALUES (v_hold.id, NEW.table_id, v_hold.restaurant_id, v_hold.booking_id,
                v_hold.start_at, v_hold.end_at, v_hold.expires_at)
        ON CONFLICT (hold_id, table_id) DO UPDATE
            SET restaurant_id = EXCLUDED.restaurant_id, booking_id = EXCLUDED.booking_id,
                start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at, expires_at = EXCLUDED.expires_at;

        -- The hold's booking gets a shadow allocation: visible to planners, ignored by the overlap
        -- constraint. A real (non-shadow) row of the same booking and table is never downgraded.
        IF v_hold.booking_id IS NOT NULL THEN
            INSERT INTO public.allocations AS a
                (restaurant_id, booking_id, resource_type, resource_id, "window", shadow, created_by)
            VALUES (v_hold.restaurant_id, v_hold.booking_id, 'table', NEW.table_id,
                    tstzrange(v_hold.start_at, v_hold.end_at, '[)'), true, v_hold.created_by)
            ON CONFLICT ON CONSTRAINT allocations_booking_resource_key DO UPDATE
                SET "window" = EXCLUDED."window", updated_at = now()
                WHERE a.shadow;
        END IF;
        RETURN NULL;
    END IF;

    -- DELETE (also reached through ON DELETE CASCADE from table_holds, when the hold row may be gone)
    DELETE FROM public.table_hold_windows w WHERE w.hold_id = OLD.hold_id AND w.table_id = OLD.table_id;
    -- Drop shadow rows on this table that no remaining hold of their booking backs.
    DELETE FROM public.allocations a
     WHERE a.shadow AND a.resource_type = 'table' AND a.resource_id = OLD.table_id
       AND a.booking_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM public.table_hold_windows w
                       WHERE w.table_id = a.resource_id AND w.booking_id = a.booking_id);
    RETURN NULL;
END

BEGIN
    UPDATE public.table_hold_windows w
       SET restaurant_id = NEW.restaurant_id, booking_id = NEW.booking_id,
           start_at = NEW.start_at, end_at = NEW.end_at, expires_at = NEW.expires_at
     WHERE w.hold_id = NEW.id;

    -- The previous booking's shadow rows go unless another of its holds still covers the table.
    IF OLD.booking_id IS NOT NULL AND OLD.booking_id IS DISTINCT FROM NEW.booking_id THEN
        DELETE FROM public.allocations a
         WHERE a.shadow AND a.resource_type = 'table' AND a.booking_id = OLD.booking_id
           AND a.resource_id IN (SELECT m.table_id FROM public.table_hold_members m WHERE m.hold_id = NEW.id)
           AND NOT EXISTS (SELECT 1 FROM public.table_hold_windows w
                           WHERE w.table_id = a.resource_id AND w.booking_id = a.booking_id);
    END IF;

    IF NEW.booking_id IS NOT NULL THEN
        INSERT INTO public.allocations AS a
            (restaurant_id, booking_id, resource_type, resource_id, "window", shadow, created_by)
        SELECT NEW.restaurant_id, NEW.booking_id, 'table', m.table_id,
               tstzrange(NEW.start_at, NEW.end_at, '[)'), true, NEW.created_by
          FROM public.table_hold_members m WHERE m.hold_id = NEW.id
        ON CONFLICT ON CONSTRAINT allocations_booking_resource_key DO UPDATE
            SET "window" = EXCLUDED."window", updated_at = now()
            WHERE a.shadow;
    END IF;
    RETURN NULL;
END

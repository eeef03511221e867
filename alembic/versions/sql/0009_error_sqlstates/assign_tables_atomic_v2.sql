#variable_conflict use_column
DECLARE
    v_table_ids uuid[];
    v_table_count integer;
    v_table_set_hash text;
    v_booking record;
    v_context uuid;
    v_timezone text;
    v_start timestamptz;
    v_end timestamptz;
    v_window tstzrange;
    v_table record;
    v_found integer := 0;
    v_zone_id uuid;
    v_table_id uuid;
    v_bucket integer;
    v_idempotency record;
    v_slot_id uuid;
    v_merge_group_id uuid;
    v_allocation_id uuid;
    v_kill_switch text;
BEGIN
    -- 1. table set
    SELECT array_agg(DISTINCT t ORDER BY t) INTO v_table_ids FROM unnest(p_table_ids) AS t WHERE t IS NOT NULL;
    v_table_count := coalesce(cardinality(v_table_ids), 0);
    IF v_table_count = 0 THEN
        RAISE EXCEPTION 'assign_tables_atomic_v2 requires at least one table id' USING ERRCODE = '23514';
    END IF;
    v_table_set_hash := md5(array_to_string(v_table_ids, ','));

    -- 2. booking (locked) and restaurant
    SELECT b.id, b.restaurant_id, b.booking_date, b.start_time, b.end_time, b.start_at, b.end_at,
           b.assigned_zone_id, r.timezone
      INTO v_booking
      FROM public.bookings b JOIN public.restaurants r ON r.id = b.restaurant_id
     WHERE b.id = p_booking_id
       FOR UPDATE OF b;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Booking % not found', p_booking_id USING ERRCODE = 'P0002';
    END IF;

    -- [REC] tenant guard: this function bypasses RLS (security definer), so a caller whose context names
    -- another restaurant must not commit here.
    v_context := public.current_restaurant_id();
    IF v_context IS NOT NULL AND v_context <> v_booking.restaurant_id THEN
        RAISE EXCEPTION 'Restaurant context does not match the booking''s restaurant'
            USING ERRCODE = '42501', DETAIL = format('context %s, booking %s', v_context, p_booking_id);
    END IF;

    -- timezone is NOT NULL and not blank by constraint; Europe/London only if a blank one slipped in.
    v_timezone := coalesce(nullif(btrim(v_booking.timezone), ''), 'Europe/London');

    -- 3. window
    IF (p_start_at IS NULL) <> (p_end_at IS NULL) THEN
        RAISE EXCEPTION 'p_start_at and p_end_at must be given together' USING ERRCODE = '22023';
    END IF;
    IF p_start_at IS NOT NULL THEN
        v_start := p_start_at;
        v_end := p_end_at;
    ELSIF v_booking.start_at IS NOT NULL AND v_booking.end_at IS NOT NULL THEN
        v_start := v_booking.start_at;
        v_end := v_booking.end_at;
    ELSIF v_booking.booking_date IS NOT NULL AND v_booking.start_time IS NOT NULL
          AND v_booking.end_time IS NOT NULL THEN
        v_start := (v_booking.booking_date + v_booking.start_time) AT TIME ZONE v_timezone;
        v_end := (v_booking.booking_date + v_booking.end_time) AT TIME ZONE v_timezone;
    ELSE
        RAISE EXCEPTION 'Booking % has no time window', p_booking_id USING ERRCODE = '22000';
    END IF;
    IF v_start >= v_end THEN
        RAISE EXCEPTION 'Assignment window start must be before its end (% >= %)', v_start, v_end
            USING ERRCODE = '22000';
    END IF;
    v_window := tstzrange(v_start, v_end, '[)');

    -- 4. tables, locked in id order (a fixed order avoids deadlocks between concurrent commits)
    FOR v_table IN
        SELECT t.id, t.restaurant_id, t.zone_id, t.active, t.mobility
          FROM public.table_inventory t
         WHERE t.id = ANY (v_table_ids)
         ORDER BY t.id
           FOR UPDATE
    LOOP
        v_found := v_found + 1;
        IF v_table.restaurant_id <> v_booking.restaurant_id THEN
            RAISE EXCEPTION 'Table % belongs to another restaurant', v_table.id USING ERRCODE = '23503';
        END IF;
        IF v_table.zone_id IS NULL THEN
            RAISE EXCEPTION 'Table % has no zone', v_table.id USING ERRCODE = '23514';
        END IF;
        IF NOT v_table.active THEN
            RAISE EXCEPTION 'Table % is not active', v_table.id USING ERRCODE = '23514';
        END IF;
        IF v_zone_id IS NULL THEN
            v_zone_id := v_table.zone_id;
        ELSIF v_zone_id <> v_table.zone_id THEN
            RAISE EXCEPTION 'All tables must belong to the same zone' USING ERRCODE = '23514';
        END IF;
        IF v_table_count > 1 AND v_table.mobility <> 'movable' THEN
            RAISE EXCEPTION 'Merged assignments require movable tables (table % is %)', v_table.id, v_table.mobility
                USING ERRCODE = '23514';
        END IF;
    END LOOP;
    IF v_found < v_table_count THEN
        RAISE EXCEPTION 'One or more tables were not found' USING ERRCODE = 'P0002';
    END IF;

    -- 5. zone lock: a booking's tables all live in one zone
    IF v_booking.assigned_zone_id IS NOT NULL AND v_booking.assigned_zone_id <> v_zone_id THEN
        RAISE EXCEPTION 'Booking % is assigned to zone %, not %', p_booking_id, v_booking.assigned_zone_id, v_zone_id
            USING ERRCODE = '23514';
    END IF;
    IF EXISTS (SELECT 1 FROM public.booking_table_assignments a
               JOIN public.table_inventory t ON t.id = a.table_id
               WHERE a.booking_id = p_booking_id AND t.zone_id <> v_zone_id) THEN
        RAISE EXCEPTION 'Booking % already has tables in another zone', p_booking_id USING ERRCODE = '23514';
    END IF;
    IF v_booking.assigned_zone_id IS NULL THEN
        UPDATE public.bookings SET assigned_zone_id = v_zone_id WHERE id = p_booking_id;
    END IF;

    -- 6. adjacency: every chosen table touches another chosen table (a per-table test, not connectivity)
    IF p_require_adjacency AND v_table_count > 1 THEN
        FOREACH v_table_id IN ARRAY v_table_ids LOOP
            IF NOT EXISTS (
                SELECT 1 FROM public.table_adjacencies a
                 WHERE (a.table_a = v_table_id AND a.table_b = ANY (v_table_ids) AND a.table_b <> v_table_id)
                    OR (a.table_b = v_table_id AND a.table_a = ANY (v_table_ids) AND a.table_a <> v_table_id)) THEN
                RAISE EXCEPTION 'Table % is not adjacent to the selected set', v_table_id USING ERRCODE = '23514';
            END IF;
        END LOOP;
    END IF;

    -- 7. serialise commits per (zone, hour bucket). [REC] every bucket the window touches, in ascending
    -- order, so two overlapping windows always share at least one lock.
    FOR v_bucket IN floor(extract(epoch FROM v_start) / 3600)::integer
                 .. floor(extract(epoch FROM v_end - interval '1 microsecond') / 3600)::integer
    LOOP
        PERFORM pg_advisory_xact_lock(hashtext(v_zone_id::text), v_bucket);
    END LOOP;

    -- 8. idempotency
    IF p_idempotency_key IS NOT NULL THEN
        SELECT i.table_ids, i.table_set_hash INTO v_idempotency
          FROM public.booking_assignment_idempotency i
         WHERE i.booking_id = p_booking_id AND i.idempotency_key = p_idempotency_key;
        IF FOUND THEN
            IF coalesce(v_idempotency.table_set_hash,
                        md5(array_to_string(ARRAY(SELECT DISTINCT x FROM unnest(v_idempotency.table_ids) AS x ORDER BY x), ',')))
               = v_table_set_hash THEN
                RETURN QUERY
                    SELECT a.table_id, a.start_at, a.end_at, a.merge_group_id
                      FROM public.booking_table_assignments a
                     WHERE a.booking_id = p_booking_id AND a.table_id = ANY (v_table_ids)
                     ORDER BY a.table_id;
                RETURN;
            END IF;
            RAISE EXCEPTION 'Idempotency key % was already used for booking % with another table set',
                p_idempotency_key, p_booking_id USING ERRCODE = 'P0003';
        END IF;
    END IF;

    -- 9. holds of other bookings (or of none) block the tables
    IF EXISTS (SELECT 1 FROM public.table_hold_windows w
               WHERE w.table_id = ANY (v_table_ids)
                 AND w.expires_at > now()
                 AND w.hold_window && v_window
                 AND w.booking_id IS DISTINCT FROM p_booking_id) THEN
        RAISE EXCEPTION 'Hold conflict prevents assignment of booking %', p_booking_id
            USING ERRCODE = 'CA003', HINT = 'another booking holds one of the tables in this window';
    END IF;

    -- 10. slot
    v_slot_id := public.get_or_create_booking_slot(v_booking.restaurant_id, v_booking.booking_date, v_booking.start_time);

    -- 11. merge group: an allocation whose own id is the group id
    IF v_table_count > 1 THEN
        v_merge_group_id := gen_random_uuid();
        BEGIN
            INSERT INTO public.allocations AS a
                (id, restaurant_id, booking_id, resource_type, resource_id, "window", shadow, created_by)
            VALUES (v_merge_group_id, v_booking.restaurant_id, p_booking_id, 'merge_group', v_merge_group_id,
                    v_window, false, p_assigned_by)
            ON CONFLICT ON CONSTRAINT allocations_booking_resource_key DO UPDATE
                SET "window" = EXCLUDED."window", shadow = false, updated_at = now()
            RETURNING a.id INTO v_merge_group_id;
        EXCEPTION WHEN unique_violation OR exclusion_violation THEN
            RAISE EXCEPTION 'allocations_no_overlap' USING ERRCODE = 'CA002', DETAIL = SQLERRM;
        END;
    END IF;

    -- 12. per table: allocation (converts this booking's own hold mirror), then the assignment row
    FOREACH v_table_id IN ARRAY v_table_ids LOOP
        BEGIN
            INSERT INTO public.allocations AS a
                (restaurant_id, booking_id, resource_type, resource_id, "window", shadow, created_by)
            VALUES (v_booking.restaurant_id, p_booking_id, 'table', v_table_id, v_window, false, p_assigned_by)
            ON CONFLICT ON CONSTRAINT allocations_booking_resource_key DO UPDATE
                SET "window" = EXCLUDED."window", shadow = false,
                    created_by = coalesce(EXCLUDED.created_by, a.created_by), updated_at = now()
            RETURNING a.id INTO v_allocation_id;

            INSERT INTO public.booking_table_assignments AS bta
                (booking_id, table_id, slot_id, assigned_by, idempotency_key, merge_group_id,
                 start_at, end_at, allocation_id)
            VALUES (p_booking_id, v_table_id, v_slot_id, p_assigned_by, p_idempotency_key, v_merge_group_id,
                    v_start, v_end, v_allocation_id)
            ON CONFLICT ON CONSTRAINT booking_table_assignments_booking_table_key DO UPDATE
                SET slot_id = EXCLUDED.slot_id, assigned_by = EXCLUDED.assigned_by,
                    idempotency_key = EXCLUDED.idempotency_key, merge_group_id = EXCLUDED.merge_group_id,
                    start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at,
                    allocation_id = EXCLUDED.allocation_id, assigned_at = now(), updated_at = now();
        EXCEPTION WHEN unique_violation OR exclusion_violation THEN
            RAISE EXCEPTION 'allocations_no_overlap'
                USING ERRCODE = 'CA002', DETAIL = format('table %s: %s', v_table_id, SQLERRM);
        END;
        PERFORM public.refresh_table_status(v_table_id);
    END LOOP;

    -- 13. idempotency record. A table set already recorded under another key (unique on
    -- (booking_id, table_set_hash)) is not an error: the rows above are already in place.
    IF p_idempotency_key IS NOT NULL THEN
        INSERT INTO public.booking_assignment_idempotency
            (booking_id, idempotency_key, table_ids, assignment_window, merge_group_allocation_id, table_set_hash)
        VALUES (p_booking_id, p_idempotency_key, v_table_ids, v_window, v_merge_group_id, v_table_set_hash)
        ON CONFLICT DO NOTHING;
    END IF;

    -- 14. post-assignment capacity check unless the kill switch says off. [REC] off/false/0/no, trimmed,
    -- any case; anything else (including unset) keeps the check on.
    v_kill_switch := lower(btrim(coalesce(current_setting('app.capacity.post_assignment.enabled', true), '')));
    IF v_kill_switch NOT IN ('off', 'false', '0', 'no') THEN
        PERFORM public.validate_booking_capacity_after_assignment(p_booking_id);
    END IF;

    RETURN QUERY
        SELECT a.table_id, a.start_at, a.end_at, a.merge_group_id
          FROM public.booking_table_assignments a
         WHERE a.booking_id = p_booking_id AND a.table_id = ANY (v_table_ids)
         ORDER BY a.table_id;
END

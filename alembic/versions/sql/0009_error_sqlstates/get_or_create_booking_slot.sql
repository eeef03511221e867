DECLARE
    v_slot_id uuid;
    v_period_id uuid;
    v_rule_covers integer;
    v_capacity integer := coalesce(p_default_capacity, 999);
BEGIN
    SELECT s.id INTO v_slot_id FROM public.booking_slots s
     WHERE s.restaurant_id = p_restaurant_id AND s.slot_date = p_slot_date AND s.slot_time = p_slot_time;
    IF FOUND THEN
        RETURN v_slot_id;
    END IF;

    SELECT p.id INTO v_period_id FROM public.restaurant_service_periods p
     WHERE p.restaurant_id = p_restaurant_id
       AND (p.day_of_week IS NULL OR p.day_of_week = extract(dow FROM p_slot_date)::int)
       AND p_slot_time >= p.start_time AND p_slot_time < p.end_time
     ORDER BY (p.day_of_week IS NULL), p.start_time
     LIMIT 1;

    -- The capacity override, if any (none when the optional rules table is absent); read without a lock.
    SELECT c.max_covers INTO v_rule_covers
      FROM public.capacity_rule_for(p_restaurant_id, p_slot_date, v_period_id, 'none', NULL) c;
    v_capacity := coalesce(v_rule_covers, v_capacity);

    INSERT INTO public.booking_slots AS s (restaurant_id, slot_date, slot_time, service_period_id, available_capacity)
    VALUES (p_restaurant_id, p_slot_date, p_slot_time, v_period_id, v_capacity)
    ON CONFLICT ON CONSTRAINT booking_slots_restaurant_slot_key DO UPDATE
        SET available_capacity = greatest(s.available_capacity, EXCLUDED.available_capacity)
    RETURNING s.id INTO v_slot_id;
    RETURN v_slot_id;
END

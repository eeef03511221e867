DECLARE
    c_unbounded CONSTANT integer := 999999;
    v_booking record;
    v_period record;
    v_rule record;
    v_max_covers integer := c_unbounded;
    v_max_parties integer := c_unbounded;
    v_covers bigint;
    v_parties bigint;
BEGIN
    SELECT b.id, b.restaurant_id, b.booking_date, b.start_time, b.start_at, b.end_at
      INTO v_booking
      FROM public.bookings b JOIN public.restaurants r ON r.id = b.restaurant_id
     WHERE b.id = p_booking_id
       FOR UPDATE OF b;
    IF NOT FOUND OR v_booking.start_at IS NULL OR v_booking.end_at IS NULL THEN
        RETURN;
    END IF;

    SELECT p.id, p.start_time, p.end_time INTO v_period FROM public.restaurant_service_periods p
     WHERE p.restaurant_id = v_booking.restaurant_id
       AND (p.day_of_week IS NULL OR p.day_of_week = extract(dow FROM v_booking.booking_date)::int)
       AND v_booking.start_time >= p.start_time AND v_booking.start_time < p.end_time
     ORDER BY (p.day_of_week IS NULL), p.start_time
     LIMIT 1;

    -- The override that applies, locked until commit so concurrent assignments against the same rule
    -- queue. capacity_rule_for guards the optional table (to_regclass; it was dropped in production,
    -- 20251020232438): without it there are no limits, and it says so in the server log.
    SELECT c.max_covers, c.max_parties INTO v_rule
      FROM public.capacity_rule_for(v_booking.restaurant_id, v_booking.booking_date, v_period.id, 'wait',
                                    p_booking_id) c;
    IF FOUND THEN
        v_max_covers := coalesce(v_rule.max_covers, c_unbounded);
        v_max_parties := coalesce(v_rule.max_parties, c_unbounded);
    END IF;

    -- pending_allocation bookings are not seated yet and do not count [ORIG].
    SELECT coalesce(sum(b.party_size), 0), count(*) INTO v_covers, v_parties
      FROM public.bookings b
     WHERE b.restaurant_id = v_booking.restaurant_id
       AND b.booking_date = v_booking.booking_date
       AND b.status::text IN ('confirmed', 'pending', 'checked_in')
       AND (v_period.id IS NULL OR (b.start_time >= v_period.start_time AND b.start_time < v_period.end_time));

    IF v_covers > v_max_covers OR v_parties > v_max_parties THEN
        RAISE EXCEPTION 'capacity_exceeded_post_assignment'
            USING ERRCODE = 'CA001',
                  DETAIL = format('covers %s/%s, parties %s/%s (booking %s, date %s)',
                                  v_covers, v_max_covers, v_parties, v_max_parties,
                                  p_booking_id, v_booking.booking_date),
                  HINT = 'release tables or adjust the capacity overrides in restaurant_capacity_rules';
    END IF;
END

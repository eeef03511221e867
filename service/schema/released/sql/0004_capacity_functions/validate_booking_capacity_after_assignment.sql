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

    -- Guard: the overrides table was dropped in production (20251020232438). Without it there are no
    -- limits; say so in the server log instead of failing with 42P01.
    IF to_regclass('public.restaurant_capacity_rules') IS NULL THEN
        RAISE LOG 'capacity-service: skipping capacity overrides for booking %: restaurant_capacity_rules table absent',
            p_booking_id;
    ELSE
        SELECT r.max_covers, r.max_parties INTO v_rule FROM public.restaurant_capacity_rules r
         WHERE r.restaurant_id = v_booking.restaurant_id
           AND (r.service_period_id IS NULL OR r.service_period_id = v_period.id)
           AND (r.day_of_week IS NULL OR r.day_of_week = extract(dow FROM v_booking.booking_date)::int)
           AND (r.effective_date IS NULL OR r.effective_date <= v_booking.booking_date)
         ORDER BY r.effective_date DESC NULLS LAST, r.day_of_week DESC NULLS LAST,
                  r.service_period_id DESC NULLS LAST
         LIMIT 1
           FOR UPDATE;
        IF FOUND THEN
            v_max_covers := coalesce(v_rule.max_covers, c_unbounded);
            v_max_parties := coalesce(v_rule.max_parties, c_unbounded);
        END IF;
    END IF;

    -- pending_allocation bookings are not seated yet and do not count [ORIG].
    SELECT coalesce(sum(b.party_size), 0), count(*) INTO v_covers, v_parties
      FROM public.bookings b
     WHERE b.restaurant_id = v_booking.restaurant_id
       AND b.booking_date = v_booking.booking_date
       AND b.status IN ('confirmed', 'pending', 'checked_in')
       AND (v_period.id IS NULL OR (b.start_time >= v_period.start_time AND b.start_time < v_period.end_time));

    IF v_covers > v_max_covers OR v_parties > v_max_parties THEN
        RAISE EXCEPTION 'capacity_exceeded_post_assignment'
            USING ERRCODE = 'P0001',
                  DETAIL = format('covers %s/%s, parties %s/%s (booking %s, date %s)',
                                  v_covers, v_max_covers, v_parties, v_max_parties,
                                  p_booking_id, v_booking.booking_date),
                  HINT = 'release tables or adjust the capacity overrides in restaurant_capacity_rules';
    END IF;
END

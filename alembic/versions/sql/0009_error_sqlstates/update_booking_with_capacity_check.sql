DECLARE
    c_unbounded CONSTANT integer := 999999;
    v_booking public.bookings%ROWTYPE;
    v_updated public.bookings%ROWTYPE;
    v_timezone text;
    v_period record;
    v_rule record;
    v_max_covers integer := c_unbounded;
    v_max_parties integer := c_unbounded;
    v_booked_covers bigint;
    v_booked_parties bigint;
    v_capacity jsonb;
    v_start_at timestamptz;
    v_end_at timestamptz;
    -- Typed like the columns they are written to, whatever those are on this database (text here, the
    -- booking domain's enums on the original platform): assigning the text arguments converts them.
    v_seating_preference public.bookings.seating_preference%TYPE;
    v_booking_type public.bookings.booking_type%TYPE;
    v_source public.bookings.source%TYPE;
BEGIN
    BEGIN
        v_seating_preference := p_seating_preference;
        v_booking_type := p_booking_type;
        v_source := p_source;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN jsonb_build_object('success', false, 'error', 'INVALID_PARAMS', 'retryable', false,
            'message', format('seating_preference %L, booking_type %L or source %L is not a value of its column: %s',
                              p_seating_preference, p_booking_type, p_source, SQLERRM));
    END;

    SELECT b.* INTO v_booking FROM public.bookings b
     WHERE b.id = p_booking_id AND b.restaurant_id = p_restaurant_id
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('success', false, 'error', 'INVALID_PARAMS',
                                  'message', 'Booking not found for this restaurant', 'retryable', false);
    END IF;

    SELECT p.id, p.name, p.start_time, p.end_time INTO v_period FROM public.restaurant_service_periods p
     WHERE p.restaurant_id = p_restaurant_id
       AND (p.day_of_week IS NULL OR p.day_of_week = extract(dow FROM p_booking_date)::int)
       AND p_start_time >= p.start_time AND p_start_time < p.end_time
     ORDER BY (p.day_of_week IS NULL), p.start_time
     LIMIT 1;

    -- NOWAIT: a concurrent editor holding the rule is a retryable conflict (lock_not_available, answered
    -- below as BOOKING_CONFLICT), not a queue. No rules table: no limits, logged by capacity_rule_for.
    SELECT c.max_covers, c.max_parties INTO v_rule
      FROM public.capacity_rule_for(p_restaurant_id, p_booking_date, v_period.id, 'nowait', p_booking_id) c;
    IF FOUND THEN
        v_max_covers := coalesce(v_rule.max_covers, c_unbounded);
        v_max_parties := coalesce(v_rule.max_parties, c_unbounded);
    END IF;

    SELECT coalesce(sum(b.party_size), 0), count(*) INTO v_booked_covers, v_booked_parties
      FROM public.bookings b
     WHERE b.restaurant_id = p_restaurant_id
       AND b.booking_date = p_booking_date
       AND b.id <> p_booking_id
       AND b.status::text NOT IN ('cancelled', 'no_show')
       AND (v_period.id IS NULL OR (b.start_time >= v_period.start_time AND b.start_time < v_period.end_time));

    v_capacity := jsonb_build_object(
        'servicePeriodId', v_period.id,
        'servicePeriodName', v_period.name,
        'maxCovers', v_max_covers,
        'maxParties', v_max_parties,
        'bookedCovers', v_booked_covers,
        'bookedParties', v_booked_parties,
        'requestedCovers', p_party_size);

    IF v_booked_covers + p_party_size > v_max_covers THEN
        RETURN jsonb_build_object('success', false, 'error', 'CAPACITY_EXCEEDED', 'retryable', false,
            'message', format('Maximum capacity of %s covers exceeded (%s booked, %s requested)',
                              v_max_covers, v_booked_covers, p_party_size),
            'details', v_capacity);
    END IF;
    IF v_booked_parties + 1 > v_max_parties THEN
        RETURN jsonb_build_object('success', false, 'error', 'CAPACITY_EXCEEDED', 'retryable', false,
            'message', format('Maximum of %s parties exceeded (%s booked)', v_max_parties, v_booked_parties),
            'details', v_capacity);
    END IF;

    -- [REC] a cast test instead of scanning pg_timezone_names (slow: it materialises every zone);
    -- zone names are matched case-insensitively either way.
    SELECT r.timezone INTO v_timezone FROM public.restaurants r WHERE r.id = p_restaurant_id;
    v_timezone := nullif(btrim(coalesce(v_timezone, '')), '');
    IF v_timezone IS NULL THEN
        v_timezone := 'Europe/London';
    ELSE
        BEGIN
            PERFORM now() AT TIME ZONE v_timezone;
        EXCEPTION WHEN invalid_parameter_value THEN
            v_timezone := 'Europe/London';
        END;
    END IF;
    v_start_at := (p_booking_date + p_start_time) AT TIME ZONE v_timezone;
    v_end_at := (p_booking_date + p_end_time) AT TIME ZONE v_timezone;

    UPDATE public.bookings b SET
        customer_id = p_customer_id,
        booking_date = p_booking_date,
        start_time = p_start_time,
        end_time = p_end_time,
        start_at = v_start_at,
        end_at = v_end_at,
        party_size = p_party_size,
        booking_type = v_booking_type,
        customer_name = p_customer_name,
        customer_email = p_customer_email,
        customer_phone = p_customer_phone,
        seating_preference = v_seating_preference,
        notes = p_notes,
        marketing_opt_in = coalesce(p_marketing_opt_in, false),
        auth_user_id = coalesce(p_auth_user_id, b.auth_user_id),
        client_request_id = coalesce(p_client_request_id, b.client_request_id),
        details = coalesce(b.details, '{}'::jsonb) || coalesce(p_details, '{}'::jsonb)
                  || jsonb_build_object('capacity_check', v_capacity || jsonb_build_object('checkedAt', now())),
        loyalty_points_awarded = coalesce(p_loyalty_points_awarded, b.loyalty_points_awarded),
        source = coalesce(v_source, b.source),
        updated_at = now()
     WHERE b.id = p_booking_id
    RETURNING b.* INTO v_updated;

    RETURN jsonb_build_object('success', true, 'booking', to_jsonb(v_updated), 'capacity', v_capacity,
                              'message', 'Booking updated successfully');
EXCEPTION
    WHEN serialization_failure OR deadlock_detected OR lock_not_available THEN
        RETURN jsonb_build_object('success', false, 'error', 'BOOKING_CONFLICT', 'retryable', true,
                                  'message', 'Booking is being modified concurrently; retry', 'sqlstate', SQLSTATE);
    WHEN OTHERS THEN
        RAISE WARNING 'update_booking_with_capacity_check(%) failed: % (%)', p_booking_id, SQLERRM, SQLSTATE;
        RETURN jsonb_build_object('success', false, 'error', 'INTERNAL_ERROR', 'retryable', false,
                                  'message', 'Unexpected error while updating the booking',
                                  'sqlstate', SQLSTATE, 'sqlerrm', SQLERRM);
END

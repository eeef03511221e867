DECLARE
    v_lock_clause text;
BEGIN
    -- The callers differ only in the row lock they need on the rule (none, queue, or fail at once).
    v_lock_clause := CASE p_lock WHEN 'none' THEN '' WHEN 'wait' THEN 'FOR UPDATE' WHEN 'nowait' THEN 'FOR UPDATE NOWAIT' END;
    IF v_lock_clause IS NULL THEN
        RAISE EXCEPTION 'capacity_rule_for: p_lock must be none, wait or nowait, not %', p_lock
            USING ERRCODE = '22023';
    END IF;

    -- The overrides table is optional (dropped in production, 20251020232438): without it no rule applies.
    IF to_regclass('public.restaurant_capacity_rules') IS NULL THEN
        IF p_log_booking_id IS NOT NULL THEN
            RAISE LOG 'capacity-service: skipping capacity overrides for booking %: restaurant_capacity_rules table absent',
                p_log_booking_id;
        END IF;
        RETURN;
    END IF;

    -- The most specific rule for the day: latest effective date, then a weekday rule over an every-day one,
    -- then a period rule over an all-day one. Dynamic SQL so the lock clause is the only variable part.
    RETURN QUERY EXECUTE
        'SELECT r.max_covers::integer, r.max_parties::integer FROM public.restaurant_capacity_rules r
          WHERE r.restaurant_id = $1
            AND (r.service_period_id IS NULL OR r.service_period_id = $2)
            AND (r.day_of_week IS NULL OR r.day_of_week = extract(dow FROM $3)::int)
            AND (r.effective_date IS NULL OR r.effective_date <= $3)
          ORDER BY r.effective_date DESC NULLS LAST, r.day_of_week DESC NULLS LAST,
                   r.service_period_id DESC NULLS LAST
          LIMIT 1 ' || v_lock_clause
        USING p_restaurant_id, p_service_period_id, p_date;
END

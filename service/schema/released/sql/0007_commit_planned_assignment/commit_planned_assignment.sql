DECLARE
    v_status text;
    v_held uuid[];
    v_wanted uuid[];
BEGIN
    -- One call per planned booking, run as the caller (RLS applies): the auto-assign commit path in one
    -- round trip instead of six. Called as a single statement, it is its own transaction.

    -- Tenant context first: every read below goes through the tenant policies.
    PERFORM set_config('app.restaurant_id', p_restaurant_id::text, true);

    -- The booking row, locked: two runs committing the same booking queue here.
    SELECT b.status::text INTO v_status
      FROM public.bookings b
     WHERE b.id = p_booking_id AND b.restaurant_id = p_restaurant_id
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::text, NULL::uuid;
        RETURN;
    END IF;
    -- Cancelled, seated, … since the day was read: not auto-assign's to touch any more.
    IF v_status NOT IN ('pending', 'pending_allocation', 'confirmed') THEN
        RETURN QUERY SELECT 'inactive'::text, v_status, NULL::uuid;
        RETURN;
    END IF;

    -- A separate statement after the lock takes a fresh snapshot (READ COMMITTED), so it sees tables a
    -- concurrent commit of this booking wrote while we waited. A booking never gets a second table set;
    -- the identical set is a retry of an earlier run.
    SELECT array_agg(DISTINCT a.table_id ORDER BY a.table_id) INTO v_held
      FROM public.booking_table_assignments a
     WHERE a.booking_id = p_booking_id;
    IF v_held IS NOT NULL THEN
        v_wanted := ARRAY(SELECT DISTINCT t FROM unnest(p_table_ids) AS t WHERE t IS NOT NULL ORDER BY t);
        RETURN QUERY
            SELECT CASE WHEN v_held = v_wanted THEN 'already_assigned' ELSE 'holds_other_tables' END,
                   v_status, t
              FROM unnest(v_held) AS t;
        RETURN;
    END IF;

    RETURN QUERY
        SELECT 'assigned'::text, v_status, r.table_id
          FROM public.assign_tables_atomic_v2(p_booking_id, p_table_ids, p_idempotency_key, p_require_adjacency,
                                              p_assigned_by, p_start_at, p_end_at) AS r
         ORDER BY r.table_id;
END

DECLARE
    v_item jsonb;
    v_lock record;
    v_row record;
    v_state text;
    v_message text;
BEGIN
    -- A batch of planned bookings in one statement (one transaction): the auto-assign commit path without
    -- a round trip and a WAL flush per booking. Each booking stays atomic on its own: its commit runs in a
    -- subtransaction, and a failure rolls back that booking only and is reported in its row.
    PERFORM set_config('app.restaurant_id', p_restaurant_id::text, true);

    -- Every lock the batch will need, up front and in the order a single commit takes them (booking rows,
    -- then tables by id, then zone-hour buckets ascending): a batch holds its locks until it ends, so taking
    -- them booking by booking could deadlock with another batch or a staff commit.
    PERFORM 1
       FROM public.bookings b
      WHERE b.restaurant_id = p_restaurant_id
        AND b.id IN (SELECT (e->>'booking_id')::uuid FROM jsonb_array_elements(p_items) AS e)
      ORDER BY b.id
        FOR UPDATE;
    PERFORM 1
       FROM public.table_inventory t
      WHERE t.id IN (SELECT (x.id)::uuid
                       FROM jsonb_array_elements(p_items) AS e, jsonb_array_elements_text(e->'table_ids') AS x(id))
      ORDER BY t.id
        FOR UPDATE;
    FOR v_lock IN
        SELECT DISTINCT t.zone_id AS zone_id, bucket
          FROM jsonb_array_elements(p_items) AS e
          JOIN public.table_inventory t
            ON t.id = ((e->'table_ids')->>0)::uuid
         CROSS JOIN LATERAL generate_series(
                floor(extract(epoch FROM (e->>'start_at')::timestamptz) / 3600)::integer,
                floor(extract(epoch FROM (e->>'end_at')::timestamptz - interval '1 microsecond') / 3600)::integer
            ) AS bucket
         WHERE t.zone_id IS NOT NULL
         ORDER BY t.zone_id, bucket
    LOOP
        PERFORM pg_advisory_xact_lock(hashtext(v_lock.zone_id::text), v_lock.bucket);
    END LOOP;

    FOR v_item IN SELECT e FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(e, n) ORDER BY n LOOP
        booking_id := (v_item->>'booking_id')::uuid;
        BEGIN
            FOR v_row IN
                SELECT c.outcome, c.booking_status, c.table_id
                  FROM public.commit_planned_assignment(
                        p_restaurant_id, booking_id,
                        ARRAY(SELECT jsonb_array_elements_text(v_item->'table_ids'))::uuid[],
                        v_item->>'idempotency_key', (v_item->>'require_adjacency')::boolean, p_assigned_by,
                        (v_item->>'start_at')::timestamptz, (v_item->>'end_at')::timestamptz) AS c
            LOOP
                outcome := v_row.outcome;
                booking_status := v_row.booking_status;
                table_id := v_row.table_id;
                error_sqlstate := NULL;
                error_message := NULL;
                RETURN NEXT;
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
            outcome := 'error';
            booking_status := NULL;
            table_id := NULL;
            error_sqlstate := v_state;
            error_message := v_message;
            RETURN NEXT;
        END;
    END LOOP;
END

DECLARE
    v_zone_a uuid;
    v_zone_b uuid;
BEGIN
    SELECT t.zone_id INTO v_zone_a FROM public.table_inventory t WHERE t.id = NEW.table_a;
    IF NOT FOUND THEN
        RETURN NEW;  -- the foreign key reports a missing table
    END IF;
    SELECT t.zone_id INTO v_zone_b FROM public.table_inventory t WHERE t.id = NEW.table_b;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    IF v_zone_a IS NULL OR v_zone_b IS NULL THEN
        RAISE EXCEPTION 'Adjacent tables must both belong to a zone'
            USING ERRCODE = '23514', DETAIL = format('table_a %s, table_b %s', NEW.table_a, NEW.table_b);
    END IF;
    IF v_zone_a <> v_zone_b THEN
        RAISE EXCEPTION 'Adjacent tables must belong to the same zone'
            USING ERRCODE = '23514',
                  DETAIL = format('table_a %s is in zone %s, table_b %s is in zone %s',
                                  NEW.table_a, v_zone_a, NEW.table_b, v_zone_b);
    END IF;
    RETURN NEW;
END

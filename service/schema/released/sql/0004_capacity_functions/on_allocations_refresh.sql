BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.resource_type = 'table' THEN
        PERFORM public.refresh_table_status(NEW.resource_id);
    END IF;
    -- The old table also needs a refresh when the row left it (delete, or moved to another resource).
    IF TG_OP = 'DELETE' AND OLD.resource_type = 'table' THEN
        PERFORM public.refresh_table_status(OLD.resource_id);
    ELSIF TG_OP = 'UPDATE' AND OLD.resource_type = 'table'
          AND (NEW.resource_type <> 'table' OR NEW.resource_id <> OLD.resource_id) THEN
        PERFORM public.refresh_table_status(OLD.resource_id);
    END IF;
    RETURN NULL;
END

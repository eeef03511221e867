"""SQL for revision 0006_allocator_policy: the per-restaurant allocator policy table.

``restaurant_allocator_policies`` holds what the allocator needs per restaurant and the original hard-coded
(docs/assign-tables.md §7.3, §7.6): adjacency mode (NULL = env), what happens when a turn runs past its service
period (skip | clamp | allow), whether the stored booking end is respected, buffers and turn bands
(NULL = the original's bands). A restaurant without a row gets the original's values.

Every builder returns guarded SQL text (``DO`` blocks reading the catalogs): the offline script equals
the online run and a second run executes no DDL.
"""

from __future__ import annotations

from service.schema.ddl import LEDGER, Constraint, Function, Table, do_block, dollar, lit, regclass
from service.schema.released import catalog

REVISION = catalog.REV_ALLOCATOR
TABLE = "restaurant_allocator_policies"
SHAPE: Table = catalog.TABLES[TABLE]
CONSTRAINTS: tuple[Constraint, ...] = tuple(catalog.CONSTRAINTS[REVISION])
TOUCH_TRIGGER = "restaurant_allocator_policies_touch"

TOUCH_FUNCTION = Function(
    signature="public.restaurant_allocator_policies_touch()",
    header="public.restaurant_allocator_policies_touch() RETURNS trigger LANGUAGE plpgsql",
    body="""
BEGIN
    -- Every write gets a fresh updated_at and a new row version, whatever the caller sent.
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
""",
    grant_to=(),  # fired by the trigger only
)
TOUCH_TRIGGER_SQL = (
    f"CREATE TRIGGER {TOUCH_TRIGGER} BEFORE UPDATE ON public.{TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION public.restaurant_allocator_policies_touch()"
)


def drop_created_table(revision: str, *, allow_data_loss: bool) -> str:
    """Downgrade: drop the table if this revision created it; refuse while it holds rows (a restaurant's
    policy is operator data) unless ``allow_data_loss``."""
    check = ""
    if not allow_data_loss:
        check = f"""
    EXECUTE 'SELECT count(*) FROM public.{TABLE}' INTO v_count;
    IF v_count > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_downgrade_data_loss',
            DETAIL = format('%s rows in {TABLE}', v_count),
            HINT = 're-run with -x allow_data_loss=true to drop it anyway';
    END IF;"""
    return do_block(
        f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'table'
              AND object_name = {lit(TABLE)} AND action = 'created') AND {regclass(TABLE)} IS NOT NULL THEN{check}
    EXECUTE {dollar(f'DROP TABLE public.{TABLE}', 'ddl')};
END IF;""",
        declare="    v_count bigint;",
    )

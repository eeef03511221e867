"""Merge groups: booking_table_assignments.merge_group_id, allocation_id, assignment_window; bookings.assigned_zone_id.

Revision ID: 0002_merge_groups
Revises: 0001_base

docs/schema.md §5.4. Every step is a catalog-guarded DO block (same text online and offline); the column
additions and NOT VALID FKs run in the revision transaction, validation, concurrent indexes and the
batched back-fills run in autocommit blocks, so each of those commits on its own and a re-run resumes.
"""

from service.schema import ddl, shapes
from service.schema.ddl import LEDGER, do_block, dollar, lit, regclass
from service.schema.released import catalog
from service.schema.runner import autocommit, migration_settings, run_sql, x_flag

revision = "0002_merge_groups"
down_revision = "0001_base"
branch_labels = None
depends_on = None

BTA = "booking_table_assignments"


def _constraint(table: str, name: str):
    for rev in catalog.CONSTRAINTS.values():
        for con in rev:
            if con.table == table and con.name == name:
                return con
    raise KeyError(name)


# The CHECK is created by 0001; this revision only re-shapes an adopted one that lacks a type.
RESOURCE_TYPE_CHECK = _constraint("allocations", "allocations_resource_type_check")
FOREIGN_KEYS = catalog.CONSTRAINTS[revision]
INDEXES = catalog.INDEXES[revision]
NEW_COLUMNS = catalog.REVISION_COLUMNS[revision]  # {table: [columns]}

VIEW = "merge_group_members_v"
VIEW_SQL = f"""CREATE VIEW public.{VIEW} WITH (security_invoker = true) AS
SELECT bta.merge_group_id, bta.booking_id, a.restaurant_id, bta.table_id, a."window"
  FROM public.booking_table_assignments bta
  JOIN public.allocations a ON a.id = bta.merge_group_id AND a.resource_type = 'merge_group'
 WHERE bta.merge_group_id IS NOT NULL"""
VIEW_MARKER = f"capacity-service:{revision}:{ddl.md5(VIEW_SQL)}"

# keys per back-fill transaction: ~0.5 s of row locks per batch on this VM (measured, issue 9)
BATCH_ROWS = 25000
PROGRESS_S = 2  # at most this long between two progress NOTICEs of a back-fill


def _resource_type_check() -> str:
    """docs/schema.md §5.4 item 1: re-shape the CHECK if it is missing or lacks one of the three types."""
    con = RESOURCE_TYPE_CHECK
    key = f"{con.table}.{con.name}"
    add = f"ALTER TABLE public.{con.table} ADD CONSTRAINT {con.name} {con.definition} NOT VALID"
    return do_block(
        f"""IF {regclass(con.table)} IS NULL THEN
    RETURN;
END IF;
SELECT pg_get_constraintdef(oid) INTO v_def FROM pg_constraint
 WHERE conrelid = {regclass(con.table)} AND conname = {lit(con.name)};
IF v_def IS NOT NULL AND v_def LIKE '%''merge_group''%' AND v_def LIKE '%''hold''%' AND v_def LIKE '%''table''%' THEN
    {ddl.ledger_insert(revision, 'constraint', key, 'adopted')}
    RETURN;
END IF;
IF v_def IS NULL THEN
    {ddl.ledger_insert(revision, 'constraint', key, 'created')}
ELSE
    {ddl.ledger_insert(revision, 'constraint', key, 'replaced', 'v_def')}
    EXECUTE {dollar(f'ALTER TABLE public.{con.table} DROP CONSTRAINT {con.name}', 'ddl')};
END IF;
EXECUTE {dollar(add, 'ddl')};""",
        declare="    v_def text;",
    )


def _size_gate(max_rows: int, allow_long_lock: bool) -> str:
    """docs/schema.md §5.2: adding the STORED generated column rewrites the table under ACCESS EXCLUSIVE. The limit and
    the operator's bypass are literals baked in when the SQL is generated."""
    if allow_long_lock:
        return ""
    return do_block(
        f"""IF {regclass(BTA)} IS NULL OR EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {regclass(BTA)}
       AND attname = 'assignment_window' AND NOT attisdropped) THEN
    RETURN;
END IF;
-- the real count, not the planner's estimate (reltuples) or a probe stopped at the limit
SELECT count(*) INTO v_rows FROM public.{BTA};
IF v_rows > {max_rows} THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_size_gate',
        DETAIL = format('adding {BTA}.assignment_window rewrites %s rows under ACCESS EXCLUSIVE (limit {max_rows})', v_rows),
        HINT = 'schedule a maintenance window and re-run with -x allow_long_lock=true (or raise CAPACITY_MIGRATE_MAX_LOCKED_ROWS)';
END IF;""",
        declare="    v_rows bigint;",
    )


def _progress(label: str, unit: str) -> str:
    """plpgsql, inside a back-fill loop: a NOTICE with keys done / total, rows set and elapsed seconds, at
    most every PROGRESS_S seconds and once at the end (``v_done`` = keys walked, ``v_total`` = keys to walk,
    ``unit`` = what a key is)."""
    return f"""IF v_from IS NULL OR clock_timestamp() - v_reported >= interval '{PROGRESS_S} seconds' THEN
        RAISE NOTICE 'capacity back-fill {label}: % / % {unit} walked, % rows set, % s', v_done, v_total, v_set,
            round(extract(epoch FROM clock_timestamp() - v_started)::numeric, 1);
        v_reported := clock_timestamp();
    END IF;"""


def _keyset_backfill(label: str, table: str, key: str, update_sql: str, unit: str = "rows") -> str:
    """A back-fill that walks ``table`` in ``key`` order, BATCH_ROWS keys per transaction: every batch
    reads only its own key range (``v_from`` <= key <= ``v_upto``, plain index ranges), so the whole walk is
    one pass over the table however many rows stay unfilled, and a re-run simply walks again (filled rows
    no longer match). ``update_sql`` fills one key range, touching only rows the rules fill, and leaves the
    number of rows it changed in ``v_batch``."""
    return f"""SELECT count(DISTINCT {key}) INTO v_total FROM public.{table};
SELECT {key} INTO v_from FROM public.{table} ORDER BY {key} LIMIT 1;
LOOP
    v_upto := NULL;
    IF v_from IS NOT NULL THEN
        SELECT (array_agg(k ORDER BY k DESC))[1], count(*) INTO v_upto, v_batch FROM (
            SELECT DISTINCT {key} AS k FROM public.{table} WHERE {key} >= v_from ORDER BY 1 LIMIT {BATCH_ROWS}) s;
        v_done := v_done + v_batch;
        {update_sql}
        v_set := v_set + v_batch;
        COMMIT;  -- each batch is its own transaction: short row locks, resumable
        SELECT {key} INTO v_from FROM public.{table} WHERE {key} > v_upto ORDER BY {key} LIMIT 1;
    END IF;
    {_progress(label, unit)}
    EXIT WHEN v_from IS NULL;
END LOOP;"""


_BACKFILL_DECLARE = """    v_batch bigint;
    v_set bigint := 0;
    v_done bigint := 0;
    v_total bigint;
    v_from uuid;
    v_upto uuid;
    v_started timestamptz := clock_timestamp();
    v_reported timestamptz := clock_timestamp();"""


def _in_range(column: str) -> str:
    return f"{column} >= v_from AND {column} <= v_upto"


def _backfill_assigned_zone() -> str:
    """bookings.assigned_zone_id where all of a booking's assigned tables share one zone."""
    update = f"""WITH candidates AS (
            SELECT b.id, min(t.zone_id::text)::uuid AS zone_id
              FROM public.bookings b
              JOIN public.{BTA} bta ON bta.booking_id = b.id
              JOIN public.table_inventory t ON t.id = bta.table_id
             WHERE b.assigned_zone_id IS NULL AND {_in_range('b.id')}
             GROUP BY b.id
            HAVING count(DISTINCT t.zone_id) = 1 AND bool_and(t.zone_id IS NOT NULL))
        UPDATE public.bookings b SET assigned_zone_id = c.zone_id FROM candidates c WHERE b.id = c.id;
        GET DIAGNOSTICS v_batch = ROW_COUNT;"""
    return do_block(
        f"""IF {regclass('bookings')} IS NULL OR {regclass(BTA)} IS NULL OR {regclass('table_inventory')} IS NULL THEN
    RETURN;
END IF;
{_keyset_backfill('bookings.assigned_zone_id', 'bookings', 'id', update)}
RAISE NOTICE 'capacity back-fill bookings.assigned_zone_id: % rows set', v_set;""",
        declare=_BACKFILL_DECLARE,
    )


def _backfill_assignments() -> str:
    """Both rules of booking_table_assignments in one walk over its bookings (one UPDATE per row, so the
    row's triggers fire once, the booking domain's audit trigger included):

    - allocation_id = the booking's `table` allocation for that table overlapping the assignment window,
      newest first (the rule of 20251101170000);
    - docs/schema.md §5.4 item 8 [REC]: merge_group_id of a booking with >= 2 assignment rows and exactly one
      merge_group allocation = that allocation; zero or several are ambiguous, left NULL and counted.

    The walk is by booking_id, so every booking's rows are in one batch (the merge rule counts them with a
    window function)."""
    update = f"""WITH probe AS MATERIALIZED (
            SELECT r.id, fill.allocation_id,
                   r.booking_id, r.merge_group_id IS NULL AND r.rows_of_booking >= 2 AS merge_candidate,
                   groups.n AS merge_groups, groups.merge_group_id
              FROM (SELECT bta.id, bta.booking_id, bta.table_id, bta.start_at, bta.end_at, bta.allocation_id,
                           bta.merge_group_id, count(*) OVER (PARTITION BY bta.booking_id) AS rows_of_booking
                      FROM public.{BTA} bta
                     WHERE {_in_range('bta.booking_id')}) r
              -- one index probe per row (allocations_booking_resource_key), whatever the planner
              -- estimates for the key range; rows the rule does not fill skip it
              LEFT JOIN LATERAL (
                    SELECT a.id AS allocation_id FROM public.allocations a
                     WHERE r.allocation_id IS NULL AND r.start_at IS NOT NULL AND r.end_at IS NOT NULL
                       AND r.start_at < r.end_at
                       AND a.booking_id = r.booking_id AND a.resource_type = 'table' AND a.resource_id = r.table_id
                       AND a."window" && tstzrange(r.start_at, r.end_at, '[)')
                     ORDER BY a.created_at DESC, a.id DESC LIMIT 1) fill ON true
              LEFT JOIN LATERAL (
                    SELECT count(*) AS n, min(a.id::text)::uuid AS merge_group_id FROM public.allocations a
                     WHERE r.merge_group_id IS NULL AND r.rows_of_booking >= 2
                       AND a.booking_id = r.booking_id AND a.resource_type = 'merge_group') groups ON true
             WHERE r.allocation_id IS NULL OR r.merge_group_id IS NULL),
        filled AS (
            UPDATE public.{BTA} bta
               SET allocation_id = COALESCE(bta.allocation_id, p.allocation_id),
                   merge_group_id = COALESCE(bta.merge_group_id, CASE WHEN p.merge_candidate AND p.merge_groups = 1
                                                                      THEN p.merge_group_id END)
              FROM probe p
             WHERE bta.id = p.id
               AND ((bta.allocation_id IS NULL AND p.allocation_id IS NOT NULL)
                    OR (bta.merge_group_id IS NULL AND p.merge_candidate AND p.merge_groups = 1))
            RETURNING p.allocation_id IS NOT NULL AS allocation_set, p.merge_candidate AND p.merge_groups = 1 AS merge_group_set)
        SELECT count(*), count(*) FILTER (WHERE allocation_set), count(*) FILTER (WHERE merge_group_set),
               (SELECT count(DISTINCT p.booking_id) FROM probe p WHERE p.merge_candidate AND p.merge_groups <> 1)
          INTO v_batch, v_n_allocation, v_n_merge_group, v_n_ambiguous FROM filled;
        v_allocation_set := v_allocation_set + v_n_allocation;
        v_merge_group_set := v_merge_group_set + v_n_merge_group;
        v_ambiguous := v_ambiguous + v_n_ambiguous;"""
    return do_block(
        f"""IF {regclass(BTA)} IS NULL OR {regclass('allocations')} IS NULL THEN
    RETURN;
END IF;
{_keyset_backfill(f'{BTA}.allocation_id, merge_group_id', BTA, 'booking_id', update, 'bookings')}
RAISE NOTICE 'capacity back-fill {BTA}.allocation_id: % rows set', v_allocation_set;
RAISE NOTICE 'capacity back-fill {BTA}.merge_group_id: % rows set; % multi-table bookings left NULL (zero or several merge_group allocations)',
    v_merge_group_set, v_ambiguous;""",
        declare=_BACKFILL_DECLARE
        + """
    v_n_allocation bigint;
    v_n_merge_group bigint;
    v_n_ambiguous bigint;
    v_allocation_set bigint := 0;
    v_merge_group_set bigint := 0;
    v_ambiguous bigint := 0;""",
    )


def _ensure_view() -> str:
    """docs/schema.md §5.4 item 9. The marker comment makes a re-run a no-op; a view of that name with another
    definition is replaced (a view holds no data), its old text kept in the ledger."""
    return do_block(
        f"""IF {regclass(BTA)} IS NULL OR {regclass('allocations')} IS NULL THEN
    RETURN;
END IF;
IF {regclass(VIEW)} IS NOT NULL THEN
    IF obj_description({regclass(VIEW)}, 'pg_class') IS NOT DISTINCT FROM {lit(VIEW_MARKER)} THEN
        RETURN;
    END IF;
    {ddl.ledger_insert(revision, 'view', VIEW, 'replaced', f"pg_get_viewdef({regclass(VIEW)})")}
    EXECUTE {dollar(f'DROP VIEW public.{VIEW}', 'ddl')};
ELSE
    {ddl.ledger_insert(revision, 'view', VIEW, 'created')}
END IF;
EXECUTE {dollar(VIEW_SQL, 'ddl')};
EXECUTE {dollar(f'COMMENT ON VIEW public.{VIEW} IS {lit(VIEW_MARKER)}', 'ddl')};
IF {ddl.MODE_EXPR} = {lit(ddl.MODE_GREENFIELD)} AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'capacity_owner') THEN
    EXECUTE {dollar(f'ALTER VIEW public.{VIEW} OWNER TO capacity_owner', 'ddl')};
END IF;"""
    )


def upgrade() -> None:
    settings = migration_settings()
    allow_long_lock = x_flag("allow_long_lock")
    # Revision transaction: catalog-only changes (instant under lock_timeout) and the size-gated rewrite.
    run_sql(
        _resource_type_check(),
        ddl.ensure_columns(revision, catalog.TABLES[BTA], [c for c in NEW_COLUMNS[BTA] if c != "assignment_window"]),
        _size_gate(settings.migrate_max_locked_rows, allow_long_lock),
        ddl.ensure_columns(revision, catalog.TABLES[BTA], ["assignment_window"]),
        ddl.ensure_columns(revision, catalog.TABLES["bookings"], NEW_COLUMNS["bookings"]),
        *(shapes.ensure_foreign_key(revision, fk) for fk in FOREIGN_KEYS),
    )
    with autocommit():
        # VALIDATE takes SHARE UPDATE EXCLUSIVE only; writes continue.
        run_sql(ddl.validate([RESOURCE_TYPE_CHECK, *FOREIGN_KEYS]))
        # DO blocks that COMMIT between batches must be sent alone: a multi-statement string would run as
        # an implicit transaction. The back-fills run before the indexes on the new columns exist, so
        # their UPDATEs do not maintain them (and do not scan them for the NULLs to fill).
        run_sql(_backfill_assigned_zone())
        run_sql(_backfill_assignments())
        for idx in INDEXES:
            # one statement per call, for the same reason
            run_sql(ddl.prepare_index(revision, idx))
            run_sql(ddl.create_index_concurrently(idx))
    run_sql(
        _ensure_view(),
        ddl.ensure_grants(VIEW, "service_role", ["SELECT"]),
    )


# ---------------------------------------------------------------------------------------------------
# downgrade
# ---------------------------------------------------------------------------------------------------
def _drop_view() -> str:
    return do_block(
        f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'view'
              AND object_name = {lit(VIEW)}) AND {regclass(VIEW)} IS NOT NULL THEN
    EXECUTE {dollar(f'DROP VIEW public.{VIEW}', 'ddl')};
END IF;"""
    )


def _restore_resource_type_check() -> str:
    """Put back the CHECK 0002 replaced (NOT VALID: rows of the new types may exist by now), or drop the
    one it created."""
    con = RESOURCE_TYPE_CHECK
    key = f"{con.table}.{con.name}"
    drop = f"ALTER TABLE public.{con.table} DROP CONSTRAINT {con.name}"
    return do_block(
        f"""IF {regclass(con.table)} IS NULL THEN
    RETURN;
END IF;
SELECT action, previous_definition INTO v_action, v_prev FROM {LEDGER}
 WHERE revision = {lit(revision)} AND object_kind = 'constraint' AND object_name = {lit(key)};
IF v_action IN ('created', 'replaced') AND {ddl.constraint_exists_sql(con.table, con.name)} THEN
    EXECUTE {dollar(drop, 'ddl')};
END IF;
IF v_action = 'replaced' AND v_prev IS NOT NULL THEN
    EXECUTE format('ALTER TABLE public.{con.table} ADD CONSTRAINT {con.name} %s NOT VALID', v_prev);
    BEGIN
        EXECUTE {dollar(f'ALTER TABLE public.{con.table} VALIDATE CONSTRAINT {con.name}', 'ddl')};
    EXCEPTION WHEN check_violation THEN
        RAISE NOTICE '{con.name} restored NOT VALID: rows of the newer resource types exist';
    END;
END IF;""",
        declare="    v_action text;\n    v_prev text;",
    )


def downgrade() -> None:
    allow_data_loss = x_flag("allow_data_loss")
    run_sql(
        _drop_view(),
        ddl.drop_created_constraints(revision, FOREIGN_KEYS),
        ddl.drop_created_indexes(revision, INDEXES),
        # derived from start_at/end_at: dropping it loses nothing
        ddl.drop_created_columns(revision, BTA, ["assignment_window"], allow_data_loss=True),
        ddl.drop_created_columns(revision, BTA, ["merge_group_id", "allocation_id"], allow_data_loss=allow_data_loss),
        ddl.drop_created_columns(revision, "bookings", ["assigned_zone_id"], allow_data_loss=allow_data_loss),
        _restore_resource_type_check(),
        ddl.forget_revision(revision),
    )

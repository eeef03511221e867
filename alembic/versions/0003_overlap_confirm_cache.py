"""Overlap constraint allocations_no_overlap (behind a pre-flight) and booking_confirmation_results.

Revision ID: 0003_overlap_confirm_cache
Revises: 0002_merge_groups

docs/schema.md §5.5. The constraint swap happens in one transaction under an explicit ACCESS EXCLUSIVE lock
(taken under lock_timeout, so a long reader makes the revision fail with 55P03 instead of queueing every
other session behind it), after the overlap pre-flight has run twice: before the lock and again under it,
because rows may arrive under the old, weaker constraint in between. Nothing is ever deleted to make a
constraint fit; a finding stops the revision with the pairs listed.
"""

from service.schema import ddl, preflight, shapes
from service.schema.ddl import LEDGER, Constraint, Index, do_block, dollar, lit, regclass
from service.schema.released import catalog, security
from service.schema.runner import autocommit, migration_settings, run_sql, x_flag

revision = "0003_overlap_confirm_cache"
down_revision = "0002_merge_groups"
branch_labels = None
depends_on = None

BCR = "booking_confirmation_results"
BTA = "booking_table_assignments"
_BY_NAME = {c.name: c for c in catalog.CONSTRAINTS[revision]}

NO_OVERLAP = _BY_NAME["allocations_no_overlap"]
WINDOW_VALID = _BY_NAME["allocations_window_valid"]
ASSIGNMENT_EXCLUSION = _BY_NAME[preflight.ASSIGNMENT_EXCLUSION]
BCR_CONSTRAINTS = [c for c in catalog.CONSTRAINTS[revision] if c.table == BCR]
BCR_INDEXES = catalog.INDEXES[revision]

# Shape (a) of docs/schema.md §2.2: the endpoint-era constraint, replaced together with any other allocations_no_overlap.
LEGACY_EXCLUSION = "allocations_resource_window_excl"
# Redundant with the exclusion constraint's own GiST index (20251113203000 drops it too).
# Memory for the GiST builds under the lock (this transaction only): a quarter less time than the 64MB default.
BUILD_MEMORY = "512MB"
REDUNDANT_INDEX = Index("allocations_resource_window_idx", "allocations", 'USING gist (resource_id, "window")')


def _printed(con: Constraint) -> str:
    """What pg_get_constraintdef prints for the target, normalised (INITIALLY IMMEDIATE is the default
    and never printed)."""
    return shapes.normalise_def(con.definition.replace(" INITIALLY IMMEDIATE", ""))


def _is_target_sql(con: Constraint) -> str:
    """Deferrability is part of the printed definition (DEFERRABLE / INITIALLY DEFERRED), so the normalised
    text comparison covers it."""
    return f"""EXISTS (SELECT 1 FROM pg_constraint
        WHERE conrelid = {regclass(con.table)} AND conname = {lit(con.name)} AND contype = 'x'
          AND {shapes.normalised_def_sql('pg_get_constraintdef(oid)')} = {lit(_printed(con))})"""


def _replace_exclusion(con: Constraint, companions: tuple[str, ...] = ()) -> str:
    """plpgsql: unless ``con`` is already in target shape, add it under a temporary name, save and drop the
    old constraint of that name and the ``companions`` (older names of the same rule), then rename the new
    one — one transaction, so the table is never without protection. Saved definitions go to the ledger
    for the downgrade."""
    temp = f"{con.name}_new"

    def save_and_drop(names: tuple[str, ...]) -> str:
        return "\n".join(
            f"""    SELECT pg_get_constraintdef(oid) INTO v_def FROM pg_constraint
     WHERE conrelid = {regclass(con.table)} AND conname = {lit(name)};
    IF v_def IS NOT NULL THEN
        {ddl.ledger_insert(revision, 'constraint', f'{con.table}.{name}', 'replaced', 'v_def')}
        EXECUTE {dollar(f'ALTER TABLE public.{con.table} DROP CONSTRAINT {name}', 'ddl')};
    END IF;"""
            for name in names
        )

    key = f"{con.table}.{con.name}"
    companions_exist = " OR ".join(ddl.constraint_exists_sql(con.table, c) for c in companions) or "false"
    return f"""IF NOT {_is_target_sql(con)} THEN
    EXECUTE {dollar(f'ALTER TABLE public.{con.table} ADD CONSTRAINT {temp} {con.definition}', 'ddl')};
{save_and_drop((con.name, *companions))}
    EXECUTE {dollar(f'ALTER TABLE public.{con.table} RENAME CONSTRAINT {temp} TO {con.name}', 'ddl')};
    -- the constraint under this name is now this revision's (a 'replaced' row of the same name, saved just
    -- above, wins); recorded even when only a companion was replaced, so a re-run after an interruption
    -- finds it recorded and does not call it adopted
    {ddl.ledger_insert(revision, 'constraint', key, 'created')}
ELSE
    {ddl.ledger_insert(revision, 'constraint', key, 'adopted')}
    IF {companions_exist} THEN
{save_and_drop(companions)}
    END IF;
END IF;"""


def _overlap_constraints(max_locked_rows: int | None = None) -> str:
    """docs/schema.md §5.5 items 3–5 in one DO block: lock only when something must change, re-check under the lock,
    swap constraints, drop the redundant index, add the window CHECK NOT VALID. ``max_locked_rows``: the
    size gate (None when the operator passed -x allow_long_lock=true)."""
    gate = ""
    if max_locked_rows is not None:
        gate = f"""IF v_alloc_work AND (SELECT count(*) FROM public.allocations) > {max_locked_rows} THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_size_gate',
        DETAIL = format('building allocations_no_overlap locks allocations (ACCESS EXCLUSIVE) while it indexes %s rows (limit {max_locked_rows})',
                        (SELECT count(*) FROM public.allocations)),
        HINT = 'schedule a maintenance window and re-run with -x allow_long_lock=true (or raise CAPACITY_MIGRATE_MAX_LOCKED_ROWS)';
END IF;
"""
    alloc = regclass("allocations")
    work_on_allocations = (
        f"NOT {_is_target_sql(NO_OVERLAP)} OR {ddl.constraint_exists_sql('allocations', LEGACY_EXCLUSION)}"
        f" OR {regclass(REDUNDANT_INDEX.name)} IS NOT NULL"
        f" OR NOT {ddl.constraint_exists_sql('allocations', WINDOW_VALID.name)}"
    )
    work_on_assignments = f"{regclass(BTA)} IS NOT NULL AND NOT {_is_target_sql(ASSIGNMENT_EXCLUSION)}"
    add_window_valid = (
        f"ALTER TABLE public.allocations ADD CONSTRAINT {WINDOW_VALID.name} {WINDOW_VALID.definition} NOT VALID"
    )
    return do_block(
        f"""IF {alloc} IS NULL THEN
    RETURN;
END IF;
v_alloc_work := {work_on_allocations};
v_bta_work := {work_on_assignments};
IF NOT v_alloc_work AND NOT v_bta_work THEN
    {ddl.ledger_insert(revision, 'constraint', f'allocations.{NO_OVERLAP.name}', 'adopted')}
    {ddl.ledger_insert(revision, 'constraint', f'{BTA}.{ASSIGNMENT_EXCLUSION.name}', 'adopted')}
    RETURN;
END IF;
{gate}RAISE NOTICE 'capacity 0003: locking % to build the overlap constraints over their rows (index build progress follows)',
    concat_ws(' and ', CASE WHEN v_alloc_work THEN format('allocations (%s rows)', (SELECT count(*) FROM public.allocations)) END,
                       CASE WHEN v_bta_work THEN format('{BTA} (%s rows)', (SELECT count(*) FROM public.{BTA})) END);
-- under lock_timeout: a long reader makes this fail with 55P03 and nothing of this block stays
IF v_alloc_work THEN
    LOCK TABLE public.allocations IN ACCESS EXCLUSIVE MODE;
END IF;
IF v_bta_work THEN
    LOCK TABLE public.{BTA} IN ACCESS EXCLUSIVE MODE;
END IF;
-- Rows may have arrived under the old constraint since the first check. Building the exclusion
-- constraints checks every pair anyway, so the pair search runs again only when a build fails (to name the
-- pairs); the lock is held for the builds alone. Windows a constraint does not reject are checked here.
{preflight.invalid_windows_sql()}
{preflight.overlap_raise_sql()}
PERFORM set_config('maintenance_work_mem',
    greatest(pg_size_bytes(current_setting('maintenance_work_mem')), pg_size_bytes({lit(BUILD_MEMORY)}))::text || 'B', true);
BEGIN
IF v_alloc_work THEN
{_replace_exclusion(NO_OVERLAP, (LEGACY_EXCLUSION,))}
    IF {regclass(REDUNDANT_INDEX.name)} IS NOT NULL THEN
        {ddl.ledger_insert(revision, 'index', REDUNDANT_INDEX.name, 'replaced', f"pg_get_indexdef({regclass(REDUNDANT_INDEX.name)})")}
        EXECUTE {dollar(f'DROP INDEX public.{REDUNDANT_INDEX.name}', 'ddl')};
    END IF;
    IF NOT {ddl.constraint_exists_sql('allocations', WINDOW_VALID.name)} THEN
        EXECUTE {dollar(add_window_valid, 'ddl')};
        {ddl.ledger_insert(revision, 'constraint', f'allocations.{WINDOW_VALID.name}', 'created')}
    END IF;
ELSE
    {ddl.ledger_insert(revision, 'constraint', f'allocations.{NO_OVERLAP.name}', 'adopted')}
END IF;
IF v_bta_work THEN
{_replace_exclusion(ASSIGNMENT_EXCLUSION)}
ELSE
    -- already in target shape: recorded as the no-work branch above records it, so an uninterrupted run
    -- and a re-run after an interruption leave the same ledger
    {ddl.ledger_insert(revision, 'constraint', f'{BTA}.{ASSIGNMENT_EXCLUSION.name}', 'adopted')}
END IF;
EXCEPTION WHEN exclusion_violation THEN
    -- an overlap arrived after the first check: report the pairs as the pre-flight does (nothing stays)
{preflight.overlap_findings_sql(assignment_condition="v_bta_work")}
{preflight.overlap_raise_sql()}
    RAISE;  -- a violation the pair search does not see (never expected): the server's own error
END;""",
        declare="    v_findings text[] := ARRAY[]::text[];\n"
        + preflight.OVERLAP_DECLARE
        + "\n    v_def text;\n    v_alloc_work boolean;\n    v_bta_work boolean;",
    )


def _ensure_btree_gist() -> str:
    """Defensive re-check; 0001 installed it (an existing install in another schema is fine)."""
    return do_block(
        """IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
    EXECUTE 'CREATE EXTENSION btree_gist';
END IF;"""
    )


def _require_tenant_helper() -> str:
    """The policy calls require_restaurant_context(), created by 0001: its absence means a broken chain."""
    return do_block(
        f"""IF to_regprocedure('public.require_restaurant_context()') IS NULL THEN
    {ddl.refuse('capacity_chain_broken', lit('public.require_restaurant_context() is missing; revision 0001 creates it'),
                'run `capacity-service migrate` from the start (0001 re-creates the helper)')}
END IF;"""
    )


def upgrade() -> None:
    run_sql(
        _ensure_btree_gist(),
        preflight.overlap_guard_sql(),  # before any DDL; the same check migrate ran before 0001
        _overlap_constraints(None if x_flag("allow_long_lock") else migration_settings().migrate_max_locked_rows),
    )
    with autocommit():
        run_sql(ddl.validate([WINDOW_VALID]))
    run_sql(
        ddl.ensure_table(revision, catalog.TABLES[BCR]),
        *(
            shapes.ensure_foreign_key(revision, con) if shapes.fk_shape(con) else ddl.ensure_constraint(revision, con)
            for con in BCR_CONSTRAINTS
        ),
    )
    with autocommit():
        run_sql(ddl.validate(BCR_CONSTRAINTS))
        for idx in BCR_INDEXES:
            run_sql(ddl.prepare_index(revision, idx))
            run_sql(ddl.create_index_concurrently(idx))
    run_sql(
        _require_tenant_helper(),
        security.table_security_sql(revision, BCR),
    )


# ---------------------------------------------------------------------------------------------------
# downgrade
# ---------------------------------------------------------------------------------------------------
def _drop_confirmation_results(allow_data_loss: bool) -> str:
    created = (
        f"EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'table' "
        f"AND object_name = {lit(BCR)} AND action = 'created')"
    )
    refuse_rows = (
        ""
        if allow_data_loss
        else f"""    IF EXISTS (SELECT 1 FROM public.{BCR}) THEN
        {ddl.refuse('capacity_downgrade_data_loss', f"format('%s rows in {BCR}', (SELECT count(*) FROM public.{BCR}))",
                    're-run with -x allow_data_loss=true to drop it anyway')}
    END IF;"""
    )
    return do_block(
        f"""IF {created} AND {regclass(BCR)} IS NOT NULL THEN
{refuse_rows}
    EXECUTE {dollar(f'DROP TABLE public.{BCR}', 'ddl')};
END IF;"""
    )


def _restore_exclusion(table: str, names: tuple[str, ...], current: str) -> str:
    """Drop what 0003 put in place and re-add the definitions the ledger saved (greenfield: nothing saved,
    so the constraint is just dropped)."""
    keys = "ARRAY[" + ", ".join(lit(f"{table}.{n}") for n in names) + "]"
    return do_block(
        f"""IF {regclass(table)} IS NULL OR NOT EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)}
       AND object_kind = 'constraint' AND object_name = ANY ({keys}) AND action IN ('created', 'replaced')) THEN
    RETURN;
END IF;
IF {ddl.constraint_exists_sql(table, current)} THEN
    EXECUTE {dollar(f'ALTER TABLE public.{table} DROP CONSTRAINT {current}', 'ddl')};
END IF;
FOR v_rec IN SELECT split_part(object_name, '.', 2) AS name, previous_definition FROM {LEDGER}
              WHERE revision = {lit(revision)} AND object_kind = 'constraint' AND object_name = ANY ({keys})
                AND action = 'replaced' AND previous_definition IS NOT NULL
              ORDER BY object_name LOOP
    EXECUTE format('ALTER TABLE public.{table} ADD CONSTRAINT %I %s', v_rec.name, v_rec.previous_definition);
END LOOP;""",
        declare="    v_rec record;",
    )


def _restore_redundant_index() -> str:
    return do_block(
        f"""SELECT previous_definition INTO v_def FROM {LEDGER}
 WHERE revision = {lit(revision)} AND object_kind = 'index' AND object_name = {lit(REDUNDANT_INDEX.name)}
   AND action = 'replaced';
IF v_def IS NOT NULL AND {regclass(REDUNDANT_INDEX.name)} IS NULL THEN
    EXECUTE v_def;
END IF;""",
        declare="    v_def text;",
    )


def downgrade() -> None:
    allow_data_loss = x_flag("allow_data_loss")
    run_sql(
        _drop_confirmation_results(allow_data_loss),
        ddl.drop_created_constraints(revision, [WINDOW_VALID]),
        _restore_exclusion(BTA, (ASSIGNMENT_EXCLUSION.name,), ASSIGNMENT_EXCLUSION.name),
        _restore_exclusion("allocations", (NO_OVERLAP.name, LEGACY_EXCLUSION), NO_OVERLAP.name),
        _restore_redundant_index(),
        ddl.forget_revision(revision),
    )

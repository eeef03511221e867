"""Allocator policy: the relaxation ladder's columns, and clamp as the default overrun policy.

Revision ID: 0010_allocator_relaxations
Revises: 0009_error_sqlstates

Issue 13: bookings the strict plan leaves unseated are retried with the restaurant's relaxations
(docs/assign-tables.md §7.13), and a turn past a real closing is clamped by default (§7.3). Adds to
``restaurant_allocator_policies``: ``relax_overage`` (true), ``relaxed_max_overage`` (4, CHECK 0–20),
``relax_member_limits`` (true), ``relax_adjacency`` (false); changes the ``overrun_policy`` column DEFAULT
from 'skip' to 'clamp'. Stored rows keep the value they hold (an operator's choice is never rewritten).

Locks: each ADD COLUMN with a constant default and SET DEFAULT are catalog-only changes (ACCESS EXCLUSIVE
for milliseconds under lock_timeout, no table rewrite); the CHECK is added NOT VALID and validated in its
own transaction (SHARE UPDATE EXCLUSIVE). This revision carries its own definitions: the values below are
literals, never read from today's code (tests/app/test_allocator_policy_schema.py keeps the domain's
defaults and range equal to them).
"""

from service.schema.ddl import (
    LEDGER,
    Column,
    Constraint,
    Table,
    do_block,
    drop_created_columns,
    drop_created_constraints,
    ensure_columns,
    ensure_constraint,
    forget_revision,
    ledger_insert,
    lit,
    regclass,
    validate,
)
from service.schema.runner import autocommit, run_sql, x_flag

revision = "0010_allocator_relaxations"
down_revision = "0009_error_sqlstates"
branch_labels = None
depends_on = None

TABLE = "restaurant_allocator_policies"
NEW_COLUMNS = [
    Column("relax_overage", "boolean", not_null=True, default="true"),
    Column("relaxed_max_overage", "integer", not_null=True, default="4"),
    Column("relax_member_limits", "boolean", not_null=True, default="true"),
    Column("relax_adjacency", "boolean", not_null=True, default="false"),
]
COLUMNS: list[tuple[Table, list[str]]] = [
    (Table(TABLE, NEW_COLUMNS, primary_key=("restaurant_id",)), [c.name for c in NEW_COLUMNS]),
]
CONSTRAINTS: list[Constraint] = [
    Constraint(TABLE, "restaurant_allocator_policies_relaxed_max_overage_range",
               "CHECK (relaxed_max_overage BETWEEN 0 AND 20)"),
]
# (column, new DEFAULT expression); the replaced one is saved in the ledger for the downgrade.
DEFAULTS: list[tuple[str, str]] = [("overrun_policy", "'clamp'::text")]


def _default_expr(column: str) -> str:
    return (
        f"SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a"
        f" ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
        f" WHERE d.adrelid = {regclass(TABLE)} AND a.attname = {lit(column)}"
    )


def set_defaults() -> str:
    """SET DEFAULT where the column's default differs; the first run records the replaced expression."""
    stmts = []
    for column, expr in DEFAULTS:
        alter = f"ALTER TABLE public.{TABLE} ALTER COLUMN {column} SET DEFAULT {expr}"
        stmts.append(f"""v_default := ({_default_expr(column)});
IF v_default IS DISTINCT FROM {lit(expr)} THEN
    {ledger_insert(revision, 'column_default', f'{TABLE}.{column}', 'altered', 'v_default')}
    EXECUTE {lit(alter)};
END IF;""")
    return do_block(f"IF {regclass(TABLE)} IS NULL THEN\n    RETURN;\nEND IF;\n" + "\n".join(stmts),
                    declare="    v_default text;")


def restore_defaults() -> str:
    """Downgrade: put back each default this revision replaced (DROP DEFAULT when there was none)."""
    stmts = []
    for column, _expr in DEFAULTS:
        key = lit(f"{TABLE}.{column}")
        stmts.append(f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'column_default'
              AND object_name = {key}) THEN
    SELECT previous_definition INTO v_default FROM {LEDGER} WHERE revision = {lit(revision)}
       AND object_kind = 'column_default' AND object_name = {key};
    IF v_default IS NULL THEN
        EXECUTE {lit(f'ALTER TABLE public.{TABLE} ALTER COLUMN {column} DROP DEFAULT')};
    ELSE
        EXECUTE format('ALTER TABLE public.{TABLE} ALTER COLUMN {column} SET DEFAULT %s', v_default);
    END IF;
END IF;""")
    return do_block(f"IF {regclass(TABLE)} IS NULL THEN\n    RETURN;\nEND IF;\n" + "\n".join(stmts),
                    declare="    v_default text;")


def upgrade() -> None:
    run_sql(
        *(ensure_columns(revision, table, names) for table, names in COLUMNS),
        *(ensure_constraint(revision, con) for con in CONSTRAINTS),
        set_defaults(),
    )
    with autocommit():  # VALIDATE takes SHARE UPDATE EXCLUSIVE only, in its own transaction
        run_sql(validate(CONSTRAINTS))


def downgrade() -> None:
    allow_data_loss = x_flag("allow_data_loss")
    run_sql(
        restore_defaults(),
        drop_created_constraints(revision, CONSTRAINTS),
        *(drop_created_columns(revision, table.name, names, allow_data_loss=allow_data_loss)
          for table, names in COLUMNS),
        forget_revision(revision),
    )

"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}

Why this change, what it leaves in the database, and how long it locks what (docs/schema.md "Changing the
schema"). This revision carries its own definitions: the columns and constraints below and the function
bodies in sql/${up_revision}/ — never today's shape from elsewhere, so once released it keeps producing
exactly what it produced the day it shipped.
"""

from pathlib import Path

from service.schema.ddl import (
    Column,
    Constraint,
    Function,
    Index,
    Table,
    create_index_concurrently,
    drop_created_columns,
    drop_created_constraints,
    drop_created_indexes,
    ensure_columns,
    ensure_constraint,
    ensure_function,
    forget_revision,
    prepare_index,
    restore_functions,
    validate,
)
from service.schema.runner import autocommit, run_sql, x_flag

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parent / "sql" / revision

# What this revision adds, as (table shape, names of the columns it adds). Example:
#   (Table("bookings", [Column("kitchen_note", "text")], primary_key=("id",)), ["kitchen_note"])
COLUMNS: list[tuple[Table, list[str]]] = []
# Added NOT VALID in the revision transaction, validated afterwards without blocking writes. Example:
#   Constraint("bookings", "bookings_kitchen_note_length", "CHECK (length(kitchen_note) <= 500)")
CONSTRAINTS: list[Constraint] = []
# Built CONCURRENTLY. Example: Index("bookings_kitchen_note_idx", "bookings", "(kitchen_note)")
INDEXES: list[Index] = []
# Created or replaced (the replaced definition is saved in the ledger for the downgrade). Example:
#   Function(signature="public.f(uuid)", header="public.f(p_id uuid)\nRETURNS void\nLANGUAGE plpgsql\nVOLATILE",
#            body=(SQL_DIR / "f.sql").read_text(encoding="utf-8"))
FUNCTIONS: list[Function] = []


def upgrade() -> None:
    run_sql(
        *(ensure_columns(revision, table, names) for table, names in COLUMNS),
        *(ensure_constraint(revision, con) for con in CONSTRAINTS),
        *(ensure_function(revision, fn) for fn in FUNCTIONS),
    )
    with autocommit():  # one statement per run_sql: CONCURRENTLY cannot run inside a transaction
        if CONSTRAINTS:
            run_sql(validate(CONSTRAINTS))
        for idx in INDEXES:
            run_sql(prepare_index(revision, idx))
            run_sql(create_index_concurrently(idx))


def downgrade() -> None:
    allow_data_loss = x_flag("allow_data_loss")
    run_sql(
        restore_functions(revision, [fn.signature for fn in reversed(FUNCTIONS)]),
        drop_created_indexes(revision, INDEXES),
        drop_created_constraints(revision, CONSTRAINTS),
        *(drop_created_columns(revision, table.name, names, allow_data_loss=allow_data_loss)
          for table, names in COLUMNS),
        forget_revision(revision),
    )

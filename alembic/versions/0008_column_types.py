"""Capacity functions that work on the original platform's enum-typed columns as well as on ours.

Revision ID: 0008_column_types
Revises: 0007_commit_planned_assignment

On a database the original platform created, ``bookings.seating_preference`` is the booking domain's enum
``seating_preference_type`` (ours is text), so ``update_booking_with_capacity_check`` failed with 42804
(text written to an enum column, answered as INTERNAL_ERROR). The three functions that write or compare the
enum-typed columns the capacity domain touches are re-created: values written go through variables declared
``<table>.<column>%TYPE`` (the text arguments are converted to whatever the column is; a value the column's
enum does not have is answered as INVALID_PARAMS), and status comparisons are made on ``::text``, so they
hold whatever the enum is called and whichever labels it has. Same headers, grants and behaviour as 0004.

This revision carries its own definitions: the bodies in ``sql/0008_column_types/``, the headers taken from
the frozen 0004 definitions they replace (service/schema/released never changes).
"""

from dataclasses import replace
from pathlib import Path

from service.schema.ddl import Function, ensure_function, forget_revision, restore_functions
from service.schema.released import capacity_functions as released_0004
from service.schema.runner import run_sql

revision = "0008_column_types"
down_revision = "0007_commit_planned_assignment"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parent / "sql" / revision


def _body(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


# Callees before callers: update_booking... and assign_tables_atomic_v2 call neither of each other, but
# the commit path calls validate_booking_capacity_after_assignment and refresh_table_status.
FUNCTIONS: list[Function] = [
    replace(released_0004.REFRESH_TABLE_STATUS, body=_body("refresh_table_status")),
    replace(released_0004.VALIDATE_BOOKING_CAPACITY, body=_body("validate_booking_capacity_after_assignment")),
    replace(released_0004.UPDATE_BOOKING_WITH_CAPACITY_CHECK, body=_body("update_booking_with_capacity_check")),
]


def upgrade() -> None:
    run_sql(*(ensure_function(revision, fn) for fn in FUNCTIONS))


def downgrade() -> None:
    # The ledger saved the definitions these replaced (0004's, or an adopted database's): restored byte for byte.
    run_sql(
        restore_functions(revision, [fn.signature for fn in reversed(FUNCTIONS)]),
        forget_revision(revision),
    )

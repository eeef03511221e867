"""Distinct SQLSTATEs for the commit path's own errors; one capacity-rule lookup.

Revision ID: 0009_error_sqlstates
Revises: 0008_column_types

The commit path raised its three business errors as SQLSTATE P0001 (raise_exception), so the service could
only tell them apart by their message text. They now carry a class of their own, "CA"
(docs/schema.md §3.7): CA001 capacity exceeded after the assignment (validate_booking_capacity_after_assignment), CA002
allocation overlap (assign_tables_atomic_v2, assign_tables_first_fit), CA003 hold conflict
(assign_tables_atomic_v2). Message, DETAIL and HINT texts are unchanged, for callers of the original
platform that match on them; assign_tables_first_fit now moves to its next candidate on CA002 instead of
searching the message.

The restaurant_capacity_rules lookup that update_booking_with_capacity_check,
validate_booking_capacity_after_assignment and get_or_create_booking_slot each carried is one function,
capacity_rule_for(restaurant, date, service period, lock, booking to log), with the table guard and the
"skipping capacity overrides" LOG line; each caller keeps its lock (NOWAIT, FOR UPDATE, none) and result.

Only functions change: CREATE OR REPLACE takes no table lock and rewrites nothing. This revision carries its
own definitions: the bodies in sql/0009_error_sqlstates/, the headers taken from the frozen 0004
definitions they replace (service/schema/released never changes). The downgrade restores the replaced
definitions from the ledger and drops capacity_rule_for.
"""

from dataclasses import replace
from pathlib import Path

from service.schema.ddl import Function, ensure_function, forget_revision, restore_functions
from service.schema.released import capacity_functions as released_0004
from service.schema.runner import run_sql

revision = "0009_error_sqlstates"
down_revision = "0008_column_types"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parent / "sql" / revision


def _body(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


# Not a definer: it reads the rules with the caller's rights, as the inline queries it replaces did (the
# commit path calls it from inside assign_tables_atomic_v2's definer context).
CAPACITY_RULE_FOR = Function(
    signature="public.capacity_rule_for(uuid, date, uuid, text, uuid)",
    header=(
        "public.capacity_rule_for(p_restaurant_id uuid, p_date date, p_service_period_id uuid, "
        "p_lock text DEFAULT 'none', p_log_booking_id uuid DEFAULT NULL)\n"
        "RETURNS TABLE (max_covers integer, max_parties integer)\n"
        "LANGUAGE plpgsql\nVOLATILE\nSET search_path = public, pg_temp"
    ),
    body=_body("capacity_rule_for"),
)

# Callees before callers: the new lookup first, then the functions that call it, then the commit chain.
FUNCTIONS: list[Function] = [
    CAPACITY_RULE_FOR,
    replace(released_0004.GET_OR_CREATE_BOOKING_SLOT, body=_body("get_or_create_booking_slot")),
    replace(released_0004.VALIDATE_BOOKING_CAPACITY, body=_body("validate_booking_capacity_after_assignment")),
    replace(released_0004.UPDATE_BOOKING_WITH_CAPACITY_CHECK, body=_body("update_booking_with_capacity_check")),
    replace(released_0004.ASSIGN_TABLES_ATOMIC_V2, body=_body("assign_tables_atomic_v2")),
    replace(released_0004.ASSIGN_TABLES_FIRST_FIT, body=_body("assign_tables_first_fit")),
]


def upgrade() -> None:
    run_sql(*(ensure_function(revision, fn) for fn in FUNCTIONS))


def downgrade() -> None:
    # The ledger saved the definitions these replaced (0008's / 0004's, or an adopted database's): restored
    # byte for byte, callers before the lookup they call, which this revision created and now drops.
    run_sql(
        restore_functions(revision, [fn.signature for fn in reversed(FUNCTIONS)]),
        forget_revision(revision),
    )

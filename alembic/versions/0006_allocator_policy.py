"""Per-restaurant allocator policy: adjacency mode, overrun policy, stored-end rule, buffers, turn bands.

Revision ID: 0006_allocator_policy
Revises: 0005_strategic_config_columns

Issue 5: the original hard-coded these (docs/assign-tables.md §7.3, §7.6); a restaurant without a row keeps
the original's values. Every step is a guarded DO block (offline script = online run, a second run
executes no DDL). SQL builders: service/schema/allocator_policy.py.
"""

from alembic import context

from service.schema.ddl import (
    drop_created_constraints,
    drop_created_triggers,
    ensure_constraint,
    ensure_function,
    ensure_table,
    ensure_trigger,
    forget_revision,
    restore_functions,
    validate,
)
from service.schema.released import allocator_policy as ap
from service.schema.released import security
from service.schema.runner import autocommit, run_sql

revision = "0006_allocator_policy"
down_revision = "0005_strategic_config_columns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(
        ensure_table(revision, ap.SHAPE),
        *(ensure_constraint(revision, con) for con in ap.CONSTRAINTS),
        ensure_function(revision, ap.TOUCH_FUNCTION),
        ensure_trigger(revision, ap.TABLE, ap.TOUCH_TRIGGER, ap.TOUCH_TRIGGER_SQL),
        security.table_security_sql(revision, ap.TABLE),
    )
    # CHECK/FK arrive NOT VALID; VALIDATE takes SHARE UPDATE EXCLUSIVE only, in its own transaction.
    with autocommit():
        run_sql(validate(ap.CONSTRAINTS))


def downgrade() -> None:
    # Baked in when the script is generated (offline mode has no database to ask).
    allow_data_loss = context.get_x_argument(as_dictionary=True).get("allow_data_loss", "false").lower() == "true"
    run_sql(
        # a table 0006 created goes as a whole; on an adopted one only what 0006 added
        ap.drop_created_table(revision, allow_data_loss=allow_data_loss),
        drop_created_triggers(revision, [(ap.TABLE, ap.TOUCH_TRIGGER)]),
        drop_created_constraints(revision, list(ap.CONSTRAINTS)),
        restore_functions(revision, [ap.TOUCH_FUNCTION.signature]),
        forget_revision(revision),
    )

"""strategic_configs numeric weights; legacy weights JSON carried over, kept as weights_legacy.

Revision ID: 0005_strategic_config_columns
Revises: 0004_capacity_functions

docs/schema.md §5.7 (the legacy weights JSON, docs/strategic-config.md). Every step is a guarded DO block, so the offline script
is the same as an online run and a second run executes no DDL. SQL builders: service/schema/strategic_configs.py.
"""

from alembic import context

from service.schema.ddl import (
    drop_created_columns,
    drop_created_constraints,
    drop_created_triggers,
    ensure_columns,
    ensure_constraint,
    ensure_function,
    ensure_trigger,
    forget_revision,
    restore_functions,
    validate,
)
from service.schema.released import catalog, security
from service.schema.released import strategic_configs as sc
from service.schema.runner import autocommit, run_sql

revision = "0005_strategic_config_columns"
down_revision = '0004_capacity_functions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(
        # step 7's duplicate check first: a refusal then leaves 0005 without any change
        sc.refuse_duplicate_scopes(),
        # 1. table missing → full shape (constraints and trigger follow below)
        sc.ensure_full_table(revision),
        # 2. missing columns (weights nullable, no default); another type → drift error
        ensure_columns(revision, sc.ADDED_COLUMNS, [c.name for c in sc.ADDED_COLUMNS.columns]),
        # 3-5. back-fill from legacy JSON into NULL columns, report, rename to weights_legacy
        sc.backfill_legacy_weights(revision),
        # 6. scarcity 22 / NOT NULL, override defaults dropped, updated_at default
        sc.column_defaults(revision),
        # 7. uniqueness, touch trigger, FK and range CHECKs (NOT VALID; validated below)
        sc.unique_scope(revision),
        ensure_function(revision, sc.TOUCH_FUNCTION),
        sc.replace_generic_touch_triggers(revision),
        ensure_trigger(revision, sc.TABLE, sc.TOUCH_TRIGGER, sc.TOUCH_TRIGGER_SQL),
        sc.ensure_restaurant_fk(revision),
        *(ensure_constraint(revision, con) for con, _ in sc.RANGE_CHECKS),
        # 8. RLS, policies, grants. The policies are 0001's (it creates the table's minimal shape and
        # secures it); re-asserting them under 0001's marker makes this a no-op there and fills the gap
        # only when 0005 itself created the table.
        security.table_security_sql(catalog.REV_BASE, sc.TABLE),
    )
    # VALIDATE takes SHARE UPDATE EXCLUSIVE only, in its own short transaction.
    with autocommit():
        run_sql(validate([sc.FK]), sc.validate_range_checks())


def downgrade() -> None:
    # Read when the script is generated and baked in as a literal (offline mode has no database to ask).
    allow_data_loss = context.get_x_argument(as_dictionary=True).get("allow_data_loss", "false").lower() == "true"
    run_sql(
        drop_created_triggers(revision, [(sc.TABLE, sc.TOUCH_TRIGGER)]),
        sc.restore_replaced(revision, "trigger_replaced"),
        restore_functions(revision, [sc.TOUCH_FUNCTION.signature]),
        drop_created_constraints(revision, [con for con, _ in sc.RANGE_CHECKS] + [sc.FK, sc.UNIQUE_SCOPE]),
        sc.restore_replaced(revision, "unique_replaced"),
        sc.restore_column_defaults(revision),
        # `version` carries no data of its own: always dropped when 0005 created it
        drop_created_columns(revision, sc.TABLE, ["version"], allow_data_loss=True),
        drop_created_columns(
            revision,
            sc.TABLE,
            [c.name for c in sc.ADDED_COLUMNS.columns if c.name != "version"],
            allow_data_loss=allow_data_loss,
        ),
        sc.drop_created_table(revision, allow_data_loss=allow_data_loss),
        sc.rename_legacy_back(revision),
        forget_revision(revision),
    )

"""Capacity functions: guarded capacity checks, the atomic table-assignment commit, triggers.

docs/schema.md §5.6. Every step is a catalog-guarded DO block, so a second run executes no DDL and the offline
script is the same text. Replaced definitions are saved in the ledger for the downgrade.

Revision ID: 0004_capacity_functions
Revises: 0003_overlap_confirm_cache
"""

from service.schema.ddl import ensure_function, forget_revision, restore_functions
from service.schema.released import capacity_functions as cf
from service.schema.runner import run_sql

revision = "0004_capacity_functions"
down_revision = '0003_overlap_confirm_cache'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(
        cf.assert_prerequisites(),
        *(ensure_function(revision, fn) for fn in cf.FUNCTIONS),
        cf.drop_legacy_overload(revision),
        *(cf.ensure_trigger_on_function(revision, trg) for trg in cf.TRIGGERS),
        # No kill-switch setting here: unset means enabled, and an operator's database-level "off" stays.
    )


def downgrade() -> None:
    run_sql(
        cf.restore_triggers(revision, cf.TRIGGERS),
        # Callers before callees; the 5-argument overload comes back from its saved definition.
        restore_functions(revision, [fn.signature for fn in reversed(cf.FUNCTIONS)] + [cf.LEGACY_ASSIGN_5ARG]),
        forget_revision(revision),
    )

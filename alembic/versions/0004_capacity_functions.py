"""Capacity functions: guarded capacity checks, the atomic table-assignment commit, triggers.

Revision ID: 0004_capacity_functions
Revises: 0003_overlap_confirm_cache
"""

from service.schema.runner import run_sql

revision = "0004_capacity_functions"
down_revision = '0003_overlap_confirm_cache'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("SELECT 1;")  # placeholder


def downgrade() -> None:
    run_sql("SELECT 1;")  # placeholder

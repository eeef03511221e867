"""Base schema: ledger, roles, enums, tenant helpers, capacity tables, RLS and grants.

Revision ID: 0001_base
Revises: None
"""

from service.schema.runner import run_sql

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("SELECT 1;")  # placeholder


def downgrade() -> None:
    run_sql("SELECT 1;")  # placeholder

"""strategic_configs numeric weights; legacy weights JSON carried over, kept as weights_legacy.

Revision ID: 0005_strategic_config_columns
Revises: 0004_capacity_functions
"""

from service.schema.runner import run_sql

revision = "0005_strategic_config_columns"
down_revision = '0004_capacity_functions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("SELECT 1;")  # placeholder


def downgrade() -> None:
    run_sql("SELECT 1;")  # placeholder

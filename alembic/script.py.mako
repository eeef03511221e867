"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from service.schema.runner import run_sql

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("")


def downgrade() -> None:
    run_sql("")

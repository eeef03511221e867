"""The auto-assign commit of planned bookings as one database call per booking or per batch.

Revision ID: 0007_commit_planned_assignment
Revises: 0006_allocator_policy

Issue 5: committing a planned booking took six round trips (BEGIN, tenant context, booking lock, held
tables, assign_tables_atomic_v2, COMMIT); `commit_planned_assignment` does the same steps in one statement,
which is its own transaction, and `commit_planned_assignments` commits a batch of bookings in one statement
(each in a subtransaction, all locks taken up front in the single commit's order). Bodies:
service/schema/released/sql/0007_commit_planned_assignment/. Guarded like every function this service
owns (marker + body hash: a second run executes no DDL).
"""

from service.schema.ddl import ensure_function, forget_revision, restore_functions
from service.schema.released.capacity_functions import COMMIT_PLANNED_ASSIGNMENT, COMMIT_PLANNED_ASSIGNMENTS
from service.schema.runner import run_sql

revision = "0007_commit_planned_assignment"
down_revision = "0006_allocator_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(
        ensure_function(revision, COMMIT_PLANNED_ASSIGNMENT),
        ensure_function(revision, COMMIT_PLANNED_ASSIGNMENTS),
    )


def downgrade() -> None:
    run_sql(
        restore_functions(revision, [COMMIT_PLANNED_ASSIGNMENTS.signature, COMMIT_PLANNED_ASSIGNMENT.signature]),
        forget_revision(revision),
    )

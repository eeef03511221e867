"""What the released revisions 0001–0007 install, frozen.

These modules are the definitions those revisions read (tables and columns per revision, constraints,
indexes, enums, roles, policies, grants, function headers, and the plpgsql bodies in ``sql/<revision>/``).
They describe history, not the current target: a released revision never changes what it leaves in the
database, so nothing here is edited to change the schema. A change is a new revision that carries its own
definitions (docs/schema.md "Changing the schema"). ``tests/migrations/test_frozen_history.py`` upgrades a
fresh database to each released revision and compares it with the committed snapshot in
``tests/migrations/schema_at/<revision>.json``, so an edit here that reaches a released revision's result
fails the suite. Guards (pre-flight checks, ``IF`` conditions) may get faster; results may not change.
"""

# Released revisions, oldest first. A revision joins this list when it ships (and its snapshot is written).
RELEASED_REVISIONS: tuple[str, ...] = (
    "0001_base",
    "0002_merge_groups",
    "0003_overlap_confirm_cache",
    "0004_capacity_functions",
    "0005_strategic_config_columns",
    "0006_allocator_policy",
    "0007_commit_planned_assignment",
)

"""Auto-assign tables for a day: routes → ``AssignmentService`` → allocator and repository (docs/assign-tables.md §1)."""

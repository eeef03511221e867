"""The table allocator: plans one restaurant-day (docs/assign-tables.md §7). Pure; see ``planner.plan_day``."""

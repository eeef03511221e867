"""Capacity domain: pure Python, standard library only (no web framework, ORM or driver imports).

Auto-assign entry points (assign-tables.md §7, issue 5):
- `planner.plan_day(DayInput, AllocatorConfig, StrategicWeights, PlannerOptions) -> plan.DayPlan`
- inputs in `model` (tables, bookings, service periods, policy, busy intervals, holds, …),
  strategic weights and the provider protocol in `strategic`,
  windows in `windows`, candidate search in `floor`, scoring in `scoring`,
  the day-level optimiser in `optimiser`.
"""

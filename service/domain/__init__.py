"""Capacity domain: pure Python, standard library only (no web framework, ORM, driver, environment or clock
it is not given). Checked by mypy in strict mode.

- ``weights``: the strategic weights, defined once (ranges, defaults, column scales, clamping, names) and the
  allocator's per-run snapshot ``StrategicWeights``.
- ``config_resolution``: strategic-config resolution, ETags and write validation (docs/strategic-config.md §3).
- ``allocator``: the table allocator (docs/assign-tables.md §7). Entry point
  ``allocator.planner.plan_day(DayInput, AllocatorConfig, StrategicWeights, PlannerOptions) -> DayPlan``;
  inputs in ``allocator.model``, windows in ``windows``, candidate search in ``floor``, scoring in
  ``scoring``, the day-level optimiser in ``optimiser``, the output types in ``day_plan``, the decision trace
  in ``trace``.
"""

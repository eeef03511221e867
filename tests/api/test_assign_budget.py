"""The endpoint's planner budget grows with the day (no database needed)."""

from __future__ import annotations

import pytest

from service.api.assign_tables import endpoint_planner_options


@pytest.mark.parametrize(
    ("bookings", "iterations", "budget"),
    [(0, 600, 0.5), (120, 600, 0.5), (400, 600, 0.5), (1000, 1500, 1.25), (2000, 3000, 1.8), (10_000, 15_000, 1.8)],
)
def test_budget_scales_with_the_day_up_to_a_cap(bookings: int, iterations: int, budget: float) -> None:
    options = endpoint_planner_options(True, bookings)
    assert options.max_iterations == iterations
    assert options.total_budget_s == pytest.approx(budget)
    assert options.time_budget_s == pytest.approx(budget)
    assert options.capture_decisions is True

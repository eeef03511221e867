"""The endpoint's planner budget (no database needed): an iteration cap that stops the optimiser on ordinary
days (determinism), fewer iterations on bigger days where each costs more, and a clock safety net."""

from __future__ import annotations

import pytest

from service.assign.service import endpoint_planner_options


@pytest.mark.parametrize(
    ("bookings", "iterations", "budget"),
    [(0, 600, 1.5), (120, 600, 1.5), (400, 600, 1.5), (1000, 240, 3.75), (2000, 120, 5.0), (10_000, 24, 5.0)],
)
def test_budget_follows_the_size_of_the_day(bookings: int, iterations: int, budget: float) -> None:
    options = endpoint_planner_options(True, bookings)
    assert options.max_iterations == iterations
    assert options.total_budget_s == pytest.approx(budget)
    assert options.time_budget_s == pytest.approx(budget)
    assert options.capture_decisions is True

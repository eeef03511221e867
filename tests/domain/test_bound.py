"""The plan's bound (docs/assign-tables.md §7.14): never below what is seated, `optimal` only when an exact
solve agrees, and the exact plan used when it seats more."""

from __future__ import annotations

import pytest

from service.domain.allocator.planner import DayPlanner, PlannerOptions, export_instance

from .builders import SPEC_CONFIG, run
from .test_optimiser import NO_LADDER, NO_LOOKAHEAD, assert_valid, crafted_day, exact_seated, random_day


@pytest.mark.parametrize("seed", range(12))
def test_the_bound_never_lies_on_generated_days(seed):
    day = random_day(300 + seed, n_tables=8, n_bookings=40, policy=NO_LADDER)
    planner = DayPlanner(day, SPEC_CONFIG, options=PlannerOptions(bound=True, capture_decisions=False,
                                                                  max_iterations=50))
    plan = planner.plan()
    assert plan.bound is not None
    seated = len(plan.assigned)
    optimum = exact_seated(export_instance(planner))
    assert plan.bound.upper_bound >= seated
    assert plan.bound.upper_bound >= optimum  # an upper bound on every legal plan
    if plan.bound.optimal:
        assert seated == optimum == plan.bound.upper_bound
    if plan.bound.method == "exact":
        assert plan.bound.upper_bound == optimum and seated == optimum


def test_the_exact_plan_replaces_a_worse_one_and_says_so():
    # Greedy alone seats x on the 4-top and loses y; the exact solve seats both and replaces the plan.
    day = crafted_day()
    greedy = run(day, NO_LOOKAHEAD, optimiser=False)
    assert len(greedy.assigned) == 1
    exact = run(day, NO_LOOKAHEAD, optimiser=False, bound=True)
    assert exact.planner == "exact"
    assert exact.bound is not None and exact.bound.to_json() == {"upperBound": 2, "optimal": True, "method": "exact"}
    assert {a.booking_id: a.table_ids for a in exact.assigned} == {"x": ("t-S2",), "y": ("t-L4",)}
    assert {a.booking_id: a.stage for a in exact.assigned}["x"] == "exact"
    assert_valid(day, exact)
    # with the optimiser, the plan already reaches the optimum: it stays, proven optimal
    lns = run(day, NO_LOOKAHEAD, bound=True)
    assert lns.planner == "lns" and lns.bound is not None and lns.bound.optimal


def test_same_input_same_bound():
    day = random_day(7, n_tables=8, n_bookings=40)
    first = run(day, bound=True)
    second = run(day, bound=True)
    assert first.bound == second.bound
    assert [(a.booking_id, a.table_ids) for a in first.assigned] == [(a.booking_id, a.table_ids) for a in second.assigned]

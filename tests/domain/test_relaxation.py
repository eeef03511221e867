"""The relaxation ladder (docs/assign-tables.md §7.13): after the strict plan, unseated bookings are retried
with the restaurant's relaxations in order, never moving a strictly seated booking, each seat flagged."""

from __future__ import annotations

from service.domain.allocator.model import RestaurantPolicy

from .builders import assigned_map, booking, make_day, run, table
from .test_engine import decision


def _assigned(plan, booking_id):
    return next(a for a in plan.assigned if a.booking_id == booking_id)


def test_party_of_seven_with_only_ten_tops_is_seated_relaxed_and_flagged():
    plan = run(make_day([table("A", 10), table("B", 10)], [booking("seven", "19:00", 7)]))
    seat = _assigned(plan, "seven")
    assert seat.relaxed == ("overage",) and seat.stage == "relaxed"
    assert decision(plan, "seven")["relaxed"] == ["overage"]
    assert plan.relaxation["seated"] == {"overage": 1, "memberLimits": 0}
    strict = run(make_day([table("A", 10)], [booking("seven", "19:00", 7)],
                          policy=RestaurantPolicy(relax_overage=False)))
    assert strict.assigned == [] and strict.skipped[0].reason_code == "NO_SUITABLE_TABLES"


def test_relaxed_overage_stops_at_the_restaurants_limit():
    plan = run(make_day([table("A", 12)], [booking("seven", "19:00", 7)]))  # 5 spare > 4
    assert plan.assigned == []
    wider = run(make_day([table("A", 12)], [booking("seven", "19:00", 7)],
                         policy=RestaurantPolicy(relaxed_max_overage=5)))
    assert assigned_map(wider) == {"seven": ["t-A"]}


def test_a_strict_seat_never_moves_for_a_relaxed_one():
    # The 4-party takes the 4-top strictly; the later 7 only gets the 10-top relaxed, never the 4-top's.
    tables = [table("F", 4), table("T", 10)]
    plan = run(make_day(tables, [booking("four", "19:00", 4), booking("seven", "19:00", 7)]))
    assert assigned_map(plan) == {"four": ["t-F"], "seven": ["t-T"]}
    assert _assigned(plan, "four").relaxed == () and _assigned(plan, "seven").relaxed == ("overage",)


def test_member_limits_are_lifted_only_on_the_second_rung():
    tables = [table("A", 4, max_party_size=4), table("B", 4, max_party_size=4)]
    adjacency = [("t-A", "t-B")]
    plan = run(make_day(tables, [booking("six", "19:00", 6)], adjacency=adjacency))
    seat = _assigned(plan, "six")
    assert sorted(seat.table_ids) == ["t-A", "t-B"] and seat.relaxed == ("memberLimits",)
    off = run(make_day(tables, [booking("six", "19:00", 6)], adjacency=adjacency,
                       policy=RestaurantPolicy(relax_member_limits=False)))
    assert off.assigned == []


def test_non_adjacent_tables_only_when_the_restaurant_enables_it():
    tables = [table("A", 4), table("B", 4), table("C", 2)]
    adjacency = [("t-A", "t-C")]  # B is adjacent to nothing: no adjacent group seats 8
    bookings = [booking("eight", "19:00", 8), booking("two", "21:00", 2)]
    default = run(make_day(tables, bookings, adjacency=adjacency))
    assert "eight" not in assigned_map(default)  # adjacency is not relaxed by default
    enabled = run(make_day(tables, bookings, adjacency=adjacency, policy=RestaurantPolicy(relax_adjacency=True)))
    seat = _assigned(enabled, "eight")
    assert sorted(seat.table_ids) == ["t-A", "t-B"] and seat.relaxed == ("adjacency",)
    assert not seat.require_adjacency
    assert _assigned(enabled, "two").relaxed == ()


def test_strict_plan_unchanged_when_everyone_fits():
    tables = [table("A", 2), table("B", 4)]
    bookings = [booking("x", "19:00", 2), booking("y", "19:00", 4)]
    plan = run(make_day(tables, bookings))
    assert all(a.relaxed == () and a.stage != "relaxed" for a in plan.assigned)

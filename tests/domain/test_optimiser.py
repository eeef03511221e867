"""Day-level optimiser: never worse than greedy, strictly better where greedy fails, deterministic,
valid plans, exact on tiny days (HiGHS), greedy fallback."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest

from service.domain.allocator import planner as planner_module
from service.domain.allocator.model import AllocatorConfig, BusyInterval, RestaurantPolicy
from service.domain.allocator.optimiser import DayOptimiser, PackingBooking, dominance_filter
from service.domain.allocator.planner import DayPlanner, PlannerOptions, export_instance

from .builders import DAY, LONDON, booking, make_day, run, table

NO_LOOKAHEAD = AllocatorConfig(lookahead_enabled=False)


def assert_valid(day, plan):
    """No table carries two overlapping windows; nothing lands on an immovable interval."""
    by_id = {a.booking_id: a for a in plan.assigned}
    for a, b in itertools.combinations(plan.assigned, 2):
        if a.block_start < b.block_end and b.block_start < a.block_end:
            assert not set(a.table_ids) & set(b.table_ids), (a.booking_id, b.booking_id)
    for iv in day.busy:
        for a in by_id.values():
            if iv.table_id in a.table_ids and iv.booking_id != a.booking_id:
                assert not (iv.start < a.block_end and a.block_start < iv.end)


def crafted_day():
    """Greedy seats X (18:00, party 2) on the 4-top because 2-tops are marked scarce; Y (18:30,
    party 3) then has nowhere to go. Moving X to the 2-top seats both."""
    metrics = {
        "capacity:2|category:dining|seating:standard": 1.0,
        "capacity:4|category:dining|seating:standard": 0.01,
    }
    tables = [table("S2", 2), table("L4", 4)]
    return make_day(tables, [booking("x", "18:00", 2), booking("y", "18:30", 3)], scarcity_metrics=metrics)


def test_optimiser_seats_more_than_greedy_where_greedy_fails():
    day = crafted_day()
    greedy = run(day, NO_LOOKAHEAD, optimiser=False)
    assert greedy.planner == "greedy"
    assert {a.booking_id: a.table_ids for a in greedy.assigned} == {"x": ("t-L4",)}
    assert greedy.skipped[0].reason_code == "CONFLICTS_EXISTING"

    plan = run(day, NO_LOOKAHEAD)
    assert plan.planner == "lns"
    assert {a.booking_id: a.table_ids for a in plan.assigned} == {"x": ("t-S2",), "y": ("t-L4",)}
    assert plan.greedy.seated == 1 and plan.final.seated == 2
    assert {a.booking_id: a.stage for a in plan.assigned} == {"x": "optimiser", "y": "optimiser"}
    assert plan.skipped == []
    decisions = {d["bookingId"]: d for d in plan.decisions}
    assert decisions["y"]["selected"]["tableIds"] == ["t-L4"]
    assert decisions["y"]["plannerStage"] == "optimiser" and decisions["y"]["planner"] == "lns"
    assert_valid(day, plan)


# The strict rules only: the relaxation ladder (docs/assign-tables.md §7.13) seats beyond the strict optimum.
NO_LADDER = RestaurantPolicy(relax_overage=False, relax_member_limits=False)


def random_day(seed: int, n_tables: int = 10, n_bookings: int = 40, policy: RestaurantPolicy | None = None):
    rng = random.Random(seed)
    tables = [
        table(f"T{i:02d}", rng.choice([2, 2, 4, 4, 6]), zone_id=rng.choice(["Z", "Y"]))
        for i in range(n_tables)
    ]
    edges = [
        (a.id, b.id)
        for a, b in itertools.combinations(tables, 2)
        if a.zone_id == b.zone_id and rng.random() < 0.3
    ]
    bookings = []
    for n in range(n_bookings):
        minute = rng.choice([12 * 60, 17 * 60]) + rng.randrange(0, 150, 15)
        bookings.append(
            booking(
                f"b{n:02d}", f"{minute // 60:02d}:{minute % 60:02d}", rng.choice([1, 2, 2, 3, 4, 5, 6, 8])
            )
        )
    start = bookings[0].start_at
    busy = (BusyInterval(tables[0].id, start, start + timedelta(hours=1)),)
    return make_day(tables, bookings, adjacency=edges, busy=busy, policy=policy)


@pytest.mark.parametrize("seed", range(8))
def test_never_worse_than_greedy_and_always_valid(seed):
    day = random_day(seed)
    for config in (NO_LOOKAHEAD, AllocatorConfig()):
        plan = run(day, config, time_budget_s=5.0, max_iterations=400)
        assert plan.final.key() >= plan.greedy.key()
        assert len(plan.assigned) == plan.final.seated
        assert len(plan.assigned) + len(plan.skipped) == len(plan.order)
        assert_valid(day, plan)


def test_same_input_same_plan():
    day = random_day(3, n_tables=12, n_bookings=60)

    def snapshot():
        plan = run(day, AllocatorConfig(), time_budget_s=30.0, max_iterations=600)
        assert not plan.optimiser["budgetExhausted"]
        return (
            [(a.booking_id, a.table_ids, a.idempotency_key) for a in plan.assigned],
            [(s.booking_id, s.reason_code, s.reason) for s in plan.skipped],
        )

    assert snapshot() == snapshot()


def test_exhausted_budget_and_optimiser_error_fall_back_to_greedy(monkeypatch):
    day = crafted_day()
    no_time = run(day, NO_LOOKAHEAD, time_budget_s=0.0)
    assert no_time.final.key() >= no_time.greedy.key()
    assert no_time.planner in {"greedy-fallback", "lns"}

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(planner_module, "optimise", broken)
    plan = run(day, NO_LOOKAHEAD)
    assert plan.planner == "greedy-fallback"
    assert "boom" in plan.optimiser["error"]
    assert {a.booking_id: a.table_ids for a in plan.assigned} == {"x": ("t-L4",)}


def exact_seated(instance) -> int:
    highspy = pytest.importorskip("highspy")
    columns = [(b, plan) for b, item in enumerate(instance) for plan in item.plans]
    solver = highspy.Highs()
    solver.setOptionValue("output_flag", False)
    for _ in columns:
        solver.addVar(0.0, 1.0)
    solver.changeColsIntegrality(
        len(columns), list(range(len(columns))), [highspy.HighsVarType.kInteger] * len(columns)
    )
    solver.changeColsCost(len(columns), list(range(len(columns))), [-1.0] * len(columns))
    for b in range(len(instance)):
        cols = [c for c, (owner, _) in enumerate(columns) if owner == b]
        if cols:
            solver.addRow(-highspy.kHighsInf, 1.0, len(cols), cols, [1.0] * len(cols))
    tables = {t for _, plan in columns for t in plan}
    for t in tables:
        for point in sorted({item.start for item in instance}):
            cols = [
                c
                for c, (owner, plan) in enumerate(columns)
                if t in plan and instance[owner].start <= point < instance[owner].end
            ]
            if len(cols) > 1:
                solver.addRow(-highspy.kHighsInf, 1.0, len(cols), cols, [1.0] * len(cols))
    solver.run()
    return round(-solver.getInfo().objective_function_value)


@pytest.mark.parametrize("seed", range(5))
def test_optimiser_reaches_the_exact_optimum_on_tiny_days(seed):
    day = random_day(100 + seed, n_tables=6, n_bookings=24, policy=NO_LADDER)
    planner = DayPlanner(
        day,
        NO_LOOKAHEAD,
        options=PlannerOptions(time_budget_s=30.0, max_iterations=800, capture_decisions=False),
    )
    plan = planner.plan()
    optimum = exact_seated(export_instance(planner))
    assert plan.greedy.seated <= plan.final.seated <= optimum
    assert plan.final.seated == optimum


def test_windows_and_dates_are_in_the_restaurant_timezone():
    plan = run(make_day([table("A", 2)], [booking("b", "18:00", 2)]), NO_LOOKAHEAD)
    assert plan.assigned[0].block_start.astimezone(LONDON).date() == DAY


def test_dominance_filter_keeps_exactly_the_minimal_sets():
    """Minimal sets only, the first of duplicates, with one subset cache shared by every call (as the
    optimiser shares it across bookings), for small groups and for big ones (> 8 tables: scanned)."""
    rng = random.Random(7)
    cache: dict = {}
    for round_no in range(300):
        big = round_no % 3 == 0
        plans = [
            tuple(sorted(rng.sample(range(14), rng.randint(1, 11 if big else 3))))
            for _ in range(rng.randint(1, 14))
        ]
        plans += rng.sample(plans, k=min(2, len(plans)))  # duplicates
        rng.shuffle(plans)
        masks = [sum(1 << t for t in p) for p in plans]
        kept = dominance_filter(masks, cache)
        minimal = {p for p in plans if not any(set(q) < set(p) for q in plans)}
        assert {plans[k] for k in kept} == minimal
        assert kept == sorted({plans.index(p) for p in minimal})  # first index of each kept set


def _reference_insert(opt: DayOptimiser, order, seats_first: bool) -> list[int | None]:
    """The plain rule the fast insertion must reproduce: scan every kept set of the booking,
    fewest tables first, then seats/idle time in the requested order, then set index."""
    for i in order:
        best_key = best = None
        for k in opt.lean[i]:
            if not opt.is_free(i, k):
                continue
            plan = opt.bookings[i].plans[k]
            gap = opt.gap(i, plan)
            key = (len(plan), opt.seats[i][k], gap, k) if seats_first else (len(plan), gap, opt.seats[i][k], k)
            if best_key is None or key < best_key:
                best, best_key = k, key
        if best is not None:
            opt.put(i, best)
    return list(opt.choice)


def _random_packing(seed: int) -> tuple[list[PackingBooking], list[int]]:
    rng = random.Random(seed)
    capacities = [rng.choice([2, 2, 4, 4, 6, 8]) for _ in range(12)]
    bookings = []
    for _ in range(70):
        start = rng.randrange(0, 40) * 900.0
        party = rng.choice([1, 2, 2, 3, 4, 5, 6, 8, 10])
        singles = [(t,) for t, c in enumerate(capacities) if c >= party]
        pairs = [
            (t, t + 1) for t in range(len(capacities) - 1) if capacities[t] + capacities[t + 1] >= party
        ]
        plans = tuple(rng.sample(singles, len(singles)) + pairs)
        bookings.append(PackingBooking(start, start + rng.choice([3600.0, 5400.0]), party, plans))
    return [b for b in bookings if b.plans], capacities


@pytest.mark.parametrize("seed", range(6))
def test_fast_insertion_matches_the_plain_rule(seed):
    bookings, capacities = _random_packing(seed)
    fast = DayOptimiser(bookings, capacities, clock=lambda: 0.0)
    plain = DayOptimiser(bookings, capacities, clock=lambda: 0.0)
    order = sorted(range(len(bookings)), key=lambda i: (bookings[i].end, i))
    for seats_first in (False, True):
        fast.load([None] * len(bookings))
        plain.load([None] * len(bookings))
        fast.insert(order, seats_first)
        assert fast.choice == _reference_insert(plain, order, seats_first)
        assert any(k is None for k in fast.choice)  # crowded enough for the rule to matter


@pytest.mark.parametrize("seed", range(6))
def test_construction_is_the_best_variant_and_a_valid_packing(seed):
    bookings, capacities = _random_packing(100 + seed)
    opt = DayOptimiser(bookings, capacities, clock=lambda: 0.0)
    built = opt.construct()
    assert opt.choice == built  # the state holds the returned plan
    value = opt.objective()
    plain = DayOptimiser(bookings, capacities, clock=lambda: 0.0)
    plain.load([None] * len(bookings))
    by_end = sorted(range(len(bookings)), key=lambda i: (plain.e[i], plain.s[i], i))
    assert value >= tuple(
        [sum(k is not None for k in _reference_insert(plain, by_end, False)), plain.objective()[1]]
    )
    for a, b in itertools.combinations(range(len(bookings)), 2):
        if built[a] is None or built[b] is None:
            continue
        if bookings[a].start < bookings[b].end and bookings[b].start < bookings[a].end:
            assert not set(bookings[a].plans[built[a]]) & set(bookings[b].plans[built[b]])

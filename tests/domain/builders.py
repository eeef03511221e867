"""Small builders for allocator inputs (the docs/assign-tables.md §13 acceptance defaults)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from service.domain.allocator.model import AllocatorConfig, Booking, DayInput, RestaurantPolicy, Table
from service.domain.allocator.planner import PlannerOptions, plan_day
from service.domain.weights import StrategicWeights

LONDON = ZoneInfo("Europe/London")
RESTAURANT = "00000000-0000-0000-0000-00000000000r"
DAY = date(2025, 10, 30)  # a Thursday

# docs/assign-tables.md §13 defaults: lookahead off, time pruning off, combinations and merges on, kMax 3.
SPEC_CONFIG = AllocatorConfig(lookahead_enabled=False)


def table(number: str, capacity: int, **kw) -> Table:
    return Table(id=kw.pop("id", f"t-{number}"), number=number, capacity=capacity, **kw)


def booking(bid: str, hhmm: str, party: int, *, day: date = DAY, tz=LONDON, **kw) -> Booking:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    start = datetime.combine(day, time(hours, minutes), tzinfo=tz)
    return Booking(id=bid, party_size=party, booking_date=day, start_time=start.time(), start_at=start, **kw)


def make_day(tables, bookings, *, adjacency=(), policy=None, day=DAY, **kw) -> DayInput:
    # docs/assign-tables.md §13: "demand multiplier 1 (no profiles)" — no fallback rules unless a test passes them.
    kw.setdefault("demand_rules", ())
    return DayInput(
        restaurant_id=RESTAURANT,
        service_date=day,
        tables=tuple(tables),
        bookings=tuple(bookings),
        adjacency=tuple(adjacency),
        policy=policy or RestaurantPolicy(),
        **kw,
    )


def run(day_input, config=SPEC_CONFIG, weights=None, **opts):
    options = PlannerOptions(now=datetime(2025, 1, 1, tzinfo=ZoneInfo("UTC")), **opts)
    return plan_day(day_input, config, weights or StrategicWeights(), options)


def assigned_map(plan) -> dict[str, list[str]]:
    return {a.booking_id: sorted(a.table_ids) for a in plan.assigned}

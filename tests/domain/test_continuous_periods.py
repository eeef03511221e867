"""Continuous periods and real closings (docs/assign-tables.md §7.3): a window that runs past its period's
end continues when the next period begins at or before that end; only a real closing applies the overrun
policy, which defaults to clamp."""

from __future__ import annotations

from datetime import time

from service.domain.allocator.model import DEFAULT_OVERRUN_POLICY, RestaurantPolicy, ServicePeriod
from service.domain.allocator.windows import BookingWindow, WindowError, compute_window

from .builders import LONDON, assigned_map, booking, make_day, run, table
from .test_engine import decision

PUB = RestaurantPolicy(
    service_periods=(
        ServicePeriod("Lunch Service", time(12, 0), time(15, 0), None, "lunch"),
        ServicePeriod("Afternoon", time(15, 0), time(17, 0), None, "drinks"),
        ServicePeriod("Dinner Service", time(17, 0), time(22, 0), None, "dinner"),
    )
)


def test_default_overrun_policy_is_clamp():
    assert DEFAULT_OVERRUN_POLICY == "clamp" and RestaurantPolicy().overrun == "clamp"


def test_turns_crossing_each_boundary_continue_even_under_skip():
    strict = RestaurantPolicy(service_periods=PUB.service_periods, overrun="skip")
    for hhmm, period, into in (("14:30", "Lunch Service", ("Afternoon",)),
                               ("16:30", "Afternoon", ("Dinner Service",))):
        w = compute_window(booking("b", hhmm, 4), strict)
        assert isinstance(w, BookingWindow), w
        assert w.service.name == period and w.continued_into == into
        assert not w.clamped and w.overrun is None


def test_a_turn_crossing_two_boundaries_names_both_periods():
    short_afternoon = RestaurantPolicy(
        service_periods=(
            ServicePeriod("Lunch", time(12, 0), time(15, 0), None, "lunch"),
            ServicePeriod("Tea", time(15, 0), time(15, 30), None, "drinks"),
            ServicePeriod("Dinner", time(15, 30), time(22, 0), None, "dinner"),
        ),
        overrun="skip",
    )
    w = compute_window(booking("b", "14:45", 6), short_afternoon)  # 85 + 5 min → 16:15
    assert isinstance(w, BookingWindow) and w.continued_into == ("Tea", "Dinner")
    assert w.block_end.astimezone(LONDON).time() == time(16, 15)


def test_a_gap_between_periods_is_a_real_closing():
    gap = RestaurantPolicy(
        service_periods=(
            ServicePeriod("Lunch", time(12, 0), time(15, 0), None, "lunch"),
            ServicePeriod("Dinner", time(15, 1), time(22, 0), None, "dinner"),
        ),
        overrun="skip",
    )
    err = compute_window(booking("b", "14:30", 4), gap)
    assert isinstance(err, WindowError) and err.code == "SERVICE_OVERRUN"
    assert err.overrun is not None and err.overrun.period == "Lunch" and err.overrun.resolution == "skip"


def test_closing_time_clamps_by_default_and_the_reason_uses_the_stored_name():
    late = booking("late", "21:30", 4)  # 75 + 5 min → 22:50, 50 min past the 22:00 close
    w = compute_window(late, PUB)
    assert isinstance(w, BookingWindow) and w.clamped
    assert w.block_end.astimezone(LONDON).time() == time(22, 0)
    assert w.overrun is not None
    assert (w.overrun.period, w.overrun.minutes, w.overrun.resolution) == ("Dinner Service", 50, "clamp")
    err = compute_window(late, RestaurantPolicy(service_periods=PUB.service_periods, overrun="skip"))
    assert isinstance(err, WindowError)
    assert err.reason == "Reservation would run past closing at 22:00 (end of Dinner Service)."
    assert "service service" not in err.reason.lower()


def test_the_pub_day_seats_everyone_and_decisions_say_what_happened():
    tables = [table(f"T{i}", 4) for i in range(1, 4)]
    bookings = [booking("lunch", "14:30", 4), booking("tea", "16:30", 4), booking("close", "21:30", 4),
                booking("early", "12:00", 2)]
    plan = run(make_day(tables, bookings, policy=PUB))
    assert set(assigned_map(plan)) == {"lunch", "tea", "close", "early"} and plan.skipped == []
    assert decision(plan, "close")["overrun"] == {"period": "Dinner Service", "minutes": 50, "resolution": "clamp"}
    assert decision(plan, "lunch")["overrun"] is None
    assert decision(plan, "lunch")["plannerConfig"]["window"]["continuedInto"] == ["Afternoon"]
    strict = run(make_day(tables, bookings, policy=RestaurantPolicy(service_periods=PUB.service_periods,
                                                                    overrun="skip")))
    assert [s.booking_id for s in strict.skipped] == ["close"]
    assert decision(strict, "close")["overrun"]["resolution"] == "skip"

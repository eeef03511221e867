"""Booking windows: service periods, turn bands, buffers, overrun policies, stored end (docs/assign-tables.md §7.3, §11.1)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.domain.allocator.model import Booking, RestaurantPolicy, ServicePeriod, TurnBands
from service.domain.allocator.windows import (
    BookingWindow,
    WindowError,
    compute_window,
    overlaps,
    which_service,
)

from .builders import LONDON, booking

UTC = ZoneInfo("UTC")


def window(b: Booking, policy: RestaurantPolicy | None = None, **kw) -> BookingWindow:
    result = compute_window(b, policy or RestaurantPolicy(), **kw)
    assert isinstance(result, BookingWindow), result
    return result


def error(b: Booking, policy: RestaurantPolicy | None = None, **kw) -> WindowError:
    result = compute_window(b, policy or RestaurantPolicy(), **kw)
    assert isinstance(result, WindowError), result
    return result


def test_case5_restaurant_timezone_block_window():
    tz = ZoneInfo("America/New_York")
    start = datetime(2025, 7, 5, 22, 0, tzinfo=UTC)
    b = Booking("b", 2, date(2025, 7, 5), start_at=start)
    w = window(b, RestaurantPolicy(timezone="America/New_York"))
    assert w.block_start == start
    assert w.block_end == datetime(2025, 7, 5, 23, 5, tzinfo=UTC)  # 60 + 5 min
    assert w.service.name == "dinner" and start.astimezone(tz).hour == 18


def test_case10_lunch_overrun_is_skipped_when_the_policy_says_skip():
    # docs/assign-tables.md §13 case 10 assumed skip; the default is now clamp (docs/assign-tables.md §7.3).
    err = error(booking("b", "14:00", 4), RestaurantPolicy(overrun="skip"))
    assert err.code == "SERVICE_OVERRUN"
    assert err.reason == "Reservation would run past closing at 15:00 (end of lunch)."
    assert err.overrun is not None and (err.overrun.period, err.overrun.minutes) == ("lunch", 20)


def test_case32_dinner_overrun_skip_clamp_allow():
    b = booking("b", "21:00", 8, day=date(2025, 5, 10))
    assert error(b, RestaurantPolicy(overrun="skip")).code == "SERVICE_OVERRUN"  # 90 + 5 min → 22:35 > 22:00

    clamped = window(b, RestaurantPolicy(overrun="clamp"))
    assert clamped.clamped
    assert clamped.block_end.astimezone(LONDON).time() == time(22, 0)
    assert clamped.dining_end.astimezone(LONDON).time() == time(21, 55)

    allowed = window(b, RestaurantPolicy(overrun="allow"))
    assert allowed.overrun_allowed and not allowed.clamped
    assert allowed.block_end.astimezone(LONDON).time() == time(22, 35)


def test_later_rule_lunch_allows_dinner_clamps_per_service():
    policy = RestaurantPolicy(overrun_by_service={"lunch": "allow", "dinner": "clamp"})
    lunch = window(booking("l", "14:00", 4), policy)
    assert lunch.block_end.astimezone(LONDON).time() == time(15, 20)
    dinner = window(booking("d", "21:00", 8), policy)
    assert dinner.block_end.astimezone(LONDON).time() == time(22, 0)


def test_clamp_that_leaves_no_dining_time_is_an_overrun():
    b = booking("b", "21:58", 2)
    assert error(b, RestaurantPolicy(overrun="clamp")).code == "SERVICE_OVERRUN"


def test_case33_overlap_of_blocks():
    a = window(booking("a", "12:00", 2))
    b = window(booking("b", "13:04", 2))
    c = window(booking("c", "13:10", 2))
    assert a.block_end.astimezone(LONDON).time() == time(13, 5)
    assert overlaps(a.block_start, a.block_end, b.block_start, b.block_end)
    assert not overlaps(a.block_start, a.block_end, c.block_start, c.block_end)


def test_case34_date_plus_start_time_without_instant():
    b = Booking("b", 2, date(2025, 5, 10), start_time=time(12, 30))
    w = window(b)
    assert w.dining_start.astimezone(LONDON).time() == time(12, 30)
    assert w.dining_end.astimezone(LONDON).time() == time(13, 30)


def test_case35_which_service_and_bands():
    policy = RestaurantPolicy()
    may = datetime(2025, 5, 14, 20, 30, tzinfo=UTC).astimezone(LONDON)
    assert which_service(policy, may)[0].name == "dinner"
    dst_end = datetime.fromisoformat("2025-10-26T20:30:00+01:00").astimezone(LONDON)
    assert which_service(policy, dst_end)[0].name == "dinner"
    morning = datetime(2025, 5, 14, 10, 0, tzinfo=UTC).astimezone(LONDON)
    assert which_service(policy, morning)[0] is None
    assert policy.bands_for("dinner").minutes_for(8) == 90
    assert which_service(policy, may)[1].time() == time(22, 0)


def test_case36_overlap_semantics():
    t = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    h = timedelta(hours=1)
    assert overlaps(t, t + 2 * h, t + h, t + 3 * h)  # partial
    assert overlaps(t, t + 3 * h, t + h, t + 2 * h)  # containing
    assert overlaps(t, t + h, t, t + h)  # identical
    assert not overlaps(t, t + h, t + h, t + 2 * h)  # back to back
    assert not overlaps(t, t, t, t + h)  # zero length occupies nothing
    late = datetime(2025, 5, 1, 23, 0, tzinfo=UTC)
    assert not overlaps(late, late + timedelta(minutes=59), late + h, late + 2 * h)


def test_stored_periods_replace_the_default_pair_and_an_afternoon_period_counts():
    policy = RestaurantPolicy(
        service_periods=(
            ServicePeriod("Lunch", time(12, 0), time(15, 0), None, "lunch"),
            ServicePeriod("Afternoon tea", time(15, 0), time(17, 30), None, "drinks"),
            ServicePeriod("Dinner", time(17, 30), time(23, 0), None, "dinner"),
        ),
        turn_bands={"drinks": TurnBands(((4, 45),), 60)},
    )
    tea = window(booking("t", "15:30", 2), policy)
    assert tea.service.name == "Afternoon tea" and not tea.used_fallback
    assert tea.dining_end.astimezone(LONDON).time() == time(16, 15)  # 45-minute drinks band
    late = window(booking("d", "21:50", 2), policy)  # default dinner would overrun at 22:00
    assert late.service.name == "Dinner"
    # The same 15:30 booking under the original's hard-coded pair is a lunch-fallback overrun.
    assert error(booking("t", "15:30", 2)).code == "SERVICE_OVERRUN"


def test_day_specific_period_wins_over_every_day_period():
    policy = RestaurantPolicy(
        service_periods=(
            ServicePeriod("dinner", time(17, 0), time(22, 0), None, "dinner"),
            ServicePeriod("late dinner", time(17, 0), time(23, 30), 4, "dinner"),  # Thursdays
        )
    )
    thursday = window(booking("b", "22:00", 2, day=date(2025, 10, 30)), policy)
    assert thursday.service.name == "late dinner"
    assert error(booking("b", "22:00", 2, day=date(2025, 10, 29)), policy).code == "SERVICE_OVERRUN"


def test_lunch_fallback_before_noon_and_fail_hard():
    w = window(booking("b", "11:00", 2))
    assert w.used_fallback and w.service.name == "lunch"
    err = error(booking("b", "11:00", 2), fail_hard=True)
    assert err.code == "SERVICE_NOT_FOUND" and err.reason.startswith("No service window matches")


def test_stored_end_is_respected_unless_turn_times_rule():
    start = datetime(2025, 10, 30, 18, 0, tzinfo=LONDON)
    promised = Booking("b", 2, start.date(), start_at=start, end_at=start + timedelta(minutes=120))
    w = window(promised)
    assert w.extended_to_booking_end
    assert w.dining_end == (start + timedelta(minutes=120)).astimezone(UTC)
    assert w.block_end == (start + timedelta(minutes=125)).astimezone(UTC)
    turn_rules = window(promised, RestaurantPolicy(respect_booking_end=False))
    assert turn_rules.dining_end == (start + timedelta(minutes=60)).astimezone(UTC)
    # A stored end shorter than the turn time never shortens the window.
    short = Booking("s", 2, start.date(), start_at=start, end_at=start + timedelta(minutes=30))
    assert window(short).dining_end == (start + timedelta(minutes=60)).astimezone(UTC)


def test_stored_end_time_without_instant_is_used_too():
    b = Booking("b", 2, date(2025, 10, 30), start_time=time(18, 0), end_time=time(19, 45))
    assert window(b).dining_end.astimezone(LONDON).time() == time(19, 45)


def test_clamp_never_cuts_the_promised_end():
    start = datetime(2025, 10, 30, 21, 0, tzinfo=LONDON)
    b = Booking("b", 2, start.date(), start_at=start, end_at=start + timedelta(minutes=70))
    w = window(b, RestaurantPolicy(overrun="clamp"))
    assert w.dining_end.astimezone(LONDON).time() == time(22, 10)


def test_invalid_inputs_are_window_invalid():
    assert error(Booking("b", 2, date(2025, 10, 30))).code == "WINDOW_INVALID"
    assert error(booking("b", "18:00", 0)).code == "WINDOW_INVALID"


def test_dst_day_keeps_real_minutes_and_blank_timezone_is_london():
    start = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)  # the spring-forward night in London
    b = Booking("b", 2, date(2025, 3, 30), start_at=start)
    w = window(b, RestaurantPolicy(overrun="allow"))
    assert w.dining_end - w.dining_start == timedelta(minutes=60)
    blank = window(booking("b", "18:00", 2), RestaurantPolicy(timezone="  "))
    assert blank.dining_start == datetime(2025, 10, 30, 18, 0, tzinfo=LONDON)

"""Booking windows from the restaurant's stored service periods and turn bands (docs/assign-tables.md §7.3).

Differences from the original, all per-restaurant policy (`RestaurantPolicy`):
- every stored service period counts (not a hard-coded lunch/dinner pair); the original's pair is
  only the default when a restaurant stores none;
- a block that runs past its period's end simply continues when another period of the day begins at
  or before that end (the restaurant stays open); only at a real closing — the end of the day's last
  period, or a gap — is it skipped, clamped (the default) or allowed (`overrun`), never silently;
- the dining window never ends before the booking's stored end unless `respect_booking_end` is off.
All arithmetic is on absolute instants with half-open intervals, so DST is the tz library's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .model import Booking, RestaurantPolicy, ServicePeriod

# Skip reason codes of a window that cannot be built (docs/assign-tables.md §7.12).
SERVICE_OVERRUN = "SERVICE_OVERRUN"
WINDOW_INVALID = "WINDOW_INVALID"
SERVICE_NOT_FOUND = "SERVICE_NOT_FOUND"

FALLBACK_TIMEZONE = "Europe/London"


def policy_zone(name: str | None) -> ZoneInfo:
    """Blank or unknown timezone → Europe/London everywhere (docs/assign-tables.md §4 [REC]; never a UTC fallback)."""
    if name and name.strip():
        try:
            return ZoneInfo(name.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(FALLBACK_TIMEZONE)


def weekday_sunday0(day: date) -> int:
    return (day.weekday() + 1) % 7


@dataclass(frozen=True, slots=True)
class Overrun:
    """A block that ran past a real closing: which period closed, by how many minutes, and what was done."""

    period: str  # the closing period's stored name, as stored
    minutes: int
    resolution: str  # OverrunPolicy: skip | clamp | allow


@dataclass(frozen=True, slots=True)
class BookingWindow:
    service: ServicePeriod
    used_fallback: bool
    dining_start: datetime  # UTC
    dining_end: datetime
    block_start: datetime
    block_end: datetime
    service_end: datetime
    clamped: bool = False
    overrun_allowed: bool = False
    extended_to_booking_end: bool = False
    overrun: Overrun | None = None
    # Periods the block continued into past its own period's end (no closing in between).
    continued_into: tuple[str, ...] = ()

    @property
    def service_key(self) -> str:
        return self.service.service_key


@dataclass(frozen=True, slots=True)
class WindowError:
    code: str  # WINDOW_INVALID | SERVICE_NOT_FOUND | SERVICE_OVERRUN
    reason: str
    service: ServicePeriod | None = None
    used_fallback: bool = False
    overrun: Overrun | None = None


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)


def booking_start(booking: Booking, zone: ZoneInfo) -> datetime | None:
    if booking.start_at is not None:
        if booking.start_at.tzinfo is None:
            return None
        return booking.start_at.astimezone(zone)
    if booking.start_time is None:
        return None
    return _local(booking.booking_date, booking.start_time, zone)


def booking_stored_end(booking: Booking, zone: ZoneInfo, start_local: datetime) -> datetime | None:
    if booking.end_at is not None and booking.end_at.tzinfo is not None:
        return booking.end_at.astimezone(zone)
    if booking.end_time is None:
        return None
    end = _local(booking.booking_date, booking.end_time, zone)
    # An end time at or before the start means the booking runs past midnight.
    return end if end > start_local else end + timedelta(days=1)


def applicable_periods(policy: RestaurantPolicy, day: date) -> list[ServicePeriod]:
    """Periods for the weekday of `day`: most specific day first, then earliest start (docs/assign-tables.md §7.3)."""
    weekday = weekday_sunday0(day)
    periods = [p for p in policy.periods if p.day_of_week is None or p.day_of_week == weekday]
    return sorted(periods, key=lambda p: (p.day_of_week is None, p.start, p.end, p.name))


def _period_bounds(period: ServicePeriod, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = _local(day, period.start, zone)
    end_day = day if period.end > period.start else day + timedelta(days=1)
    return start, _local(end_day, period.end, zone)


def closing_after(
    policy: RestaurantPolicy, day: date, zone: ZoneInfo, service_end: datetime
) -> tuple[datetime, ServicePeriod | None, tuple[ServicePeriod, ...]]:
    """The real closing at or after `service_end`: while another period of `day` begins at or before the
    current end and ends after it, the restaurant stays open until that period's end. Returns the closing
    instant, the period that closes then (None: `service_end` itself) and the periods continued into."""
    end = service_end
    closing: ServicePeriod | None = None
    chain: list[ServicePeriod] = []
    bounds = [(p, *_period_bounds(p, day, zone)) for p in applicable_periods(policy, day)]
    extended = True
    while extended:
        extended = False
        best: tuple[ServicePeriod, datetime] | None = None
        for period, start, p_end in bounds:
            if start <= end < p_end and (best is None or p_end > best[1]):
                best = (period, p_end)
        if best is not None:
            closing, end = best
            chain.append(closing)
            extended = True
    return end, closing, tuple(chain)


def which_service(
    policy: RestaurantPolicy, start_local: datetime
) -> tuple[ServicePeriod | None, datetime | None]:
    day = start_local.date()
    for period in applicable_periods(policy, day):
        period_start, period_end = _period_bounds(period, day, start_local.tzinfo)  # type: ignore[arg-type]
        if period_start <= start_local < period_end:
            return period, period_end
    return None, None


def compute_window(
    booking: Booking,
    policy: RestaurantPolicy,
    *,
    fail_hard: bool = False,
    check_overrun: bool = True,
) -> BookingWindow | WindowError:
    zone = policy_zone(policy.timezone)
    if booking.party_size <= 0:
        return WindowError(WINDOW_INVALID, "Booking party size must be positive")
    start_local = booking_start(booking, zone)
    if start_local is None:
        return WindowError(WINDOW_INVALID, "Booking date and start time are required")

    service, service_end = which_service(policy, start_local)
    used_fallback = False
    if service is None:
        if fail_hard:
            stamp = start_local.isoformat(timespec="milliseconds")
            return WindowError(SERVICE_NOT_FOUND, f"No service window matches {stamp}.")
        candidates = applicable_periods(policy, start_local.date()) or list(policy.periods)
        service = candidates[0]
        _, service_end = _period_bounds(service, start_local.date(), zone)
        used_fallback = True
    assert service_end is not None

    key = service.service_key
    pre, post = policy.buffers_for(key)
    dining_end = start_local + timedelta(minutes=policy.bands_for(key).minutes_for(booking.party_size))
    extended = False
    stored_end = booking_stored_end(booking, zone, start_local) if policy.respect_booking_end else None
    if stored_end is not None and stored_end > dining_end:
        dining_end = stored_end
        extended = True
    block_start = start_local - timedelta(minutes=pre)
    block_end = dining_end + timedelta(minutes=post)

    clamped = False
    overrun_allowed = False
    overrun: Overrun | None = None
    continued: tuple[str, ...] = ()
    if check_overrun and block_end > service_end:
        closing, closing_period, chain = closing_after(policy, start_local.date(), zone, service_end)
        continued = tuple(p.name for p in chain if block_end > _period_bounds(p, start_local.date(), zone)[0])
        if block_end > closing:
            mode = policy.overrun_for(key)
            closed_by = closing_period or service
            overrun = Overrun(closed_by.name, _minutes(block_end - closing), mode)
            error = WindowError(
                SERVICE_OVERRUN,
                f"Reservation would run past closing at {closing.strftime('%H:%M')} (end of {closed_by.name}).",
                service,
                used_fallback,
                overrun,
            )
            if mode == "skip":
                return error
            if mode == "clamp":
                block_end = closing
                dining_end = block_end - timedelta(minutes=post)
                # The guest's promised end still wins over the clamp when the policy respects it.
                if stored_end is not None and stored_end > dining_end:
                    dining_end = stored_end
                    block_end = dining_end + timedelta(minutes=post)
                if dining_end <= start_local:
                    return error
                clamped = True
            else:
                overrun_allowed = True

    return BookingWindow(
        service=service,
        used_fallback=used_fallback,
        dining_start=start_local.astimezone(UTC),
        dining_end=dining_end.astimezone(UTC),
        block_start=block_start.astimezone(UTC),
        block_end=block_end.astimezone(UTC),
        service_end=service_end.astimezone(UTC),
        clamped=clamped,
        overrun_allowed=overrun_allowed,
        extended_to_booking_end=extended,
        overrun=overrun,
        continued_into=continued,
    )


def _minutes(delta: timedelta) -> int:
    """Whole minutes, rounded up: a block 30 s past closing still overruns it."""
    return -(-int(delta.total_seconds()) // 60)


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open `[start, end)` overlap; touching windows do not overlap, empty ones never do."""
    return a_start < b_end and b_start < a_end and a_start < a_end and b_start < b_end


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")

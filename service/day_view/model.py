"""Plain data of one restaurant-day as the timeline shows it. Datetimes are timezone-aware (UTC from the
database); the renderer converts them to the restaurant's wall clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from service.domain.allocator.model import ACTIVE_BOOKING_STATUSES

# Bookings that still need a table when they have none: exactly the ones auto-assign considers.
NEEDS_TABLE_STATUSES = ACTIVE_BOOKING_STATUSES
# Table states drawn as unusable (shaded) rows.
UNUSABLE_TABLE_STATUSES = frozenset({"out_of_service"})
# Reason code listed for a booking without a table when no plan explains why.
NOT_ASSIGNED = "NOT_ASSIGNED"
# Reason code listed in a plan view for a booking the plan neither assigned nor skipped.
NOT_IN_PLAN = "NOT_IN_PLAN"


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    name: str
    sort_order: int
    area_type: str


@dataclass(frozen=True, slots=True)
class Table:
    id: str
    number: str
    capacity: int
    zone_id: str
    status: str  # table_status: available | reserved | occupied | out_of_service
    active: bool

    @property
    def unusable(self) -> bool:
        return not self.active or self.status in UNUSABLE_TABLE_STATUSES


@dataclass(frozen=True, slots=True)
class ServicePeriod:
    name: str
    start: time
    end: time
    day_of_week: int | None  # 0 = Sunday; None = every day
    booking_option: str


@dataclass(frozen=True, slots=True)
class Booking:
    id: str
    reference: str
    party_size: int
    status: str
    start_at: datetime
    end_at: datetime
    table_ids: tuple[str, ...] = ()
    table_numbers: tuple[str, ...] = ()
    merge_group_id: str | None = None

    @property
    def needs_table(self) -> bool:
        return not self.table_ids and self.status in NEEDS_TABLE_STATUSES


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    booking_id: str | None
    table_ids: tuple[str, ...]
    table_numbers: tuple[str, ...]
    start_at: datetime
    end_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Day:
    restaurant_id: str
    restaurant_name: str
    service_date: date
    timezone: str
    zones: tuple[Zone, ...]
    tables: tuple[Table, ...]
    periods: tuple[ServicePeriod, ...]
    bookings: tuple[Booking, ...]
    holds: tuple[Hold, ...]


@dataclass(frozen=True, slots=True)
class Skip:
    reason_code: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan laid over the day (an auto-assign dry run): table sets for bookings that have none yet and
    the reasons the others were skipped. ``bound`` and ``run_id`` are shown when the planner reports them."""

    assigned: Mapping[str, tuple[str, ...]]
    skipped: Mapping[str, Skip] = field(default_factory=dict)
    planner: str | None = None
    bound: Any = None
    run_id: str | None = None
    title: str = "Dry-run plan"

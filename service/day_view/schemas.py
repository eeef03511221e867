"""HTTP bodies of the day view (camelCase like the rest of the ops API) and their conversion from the plain
model. The plan body accepts the auto-assign response as it is, so the page can post a dry run unchanged."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.day_view.model import Day

# A posted plan may name at most this many bookings in each list: far above the largest day the planner is
# sized for (2,000 bookings, docs/assign-tables.md "Planner budget"), small enough to bound the work.
MAX_PLAN_BOOKINGS = 5_000
MAX_REASON_CHARS = 500


class ZoneBody(BaseModel):
    id: uuid.UUID
    name: str
    sortOrder: int
    areaType: str


class TableBody(BaseModel):
    id: uuid.UUID
    number: str
    capacity: int
    zoneId: uuid.UUID
    zoneName: str | None
    status: str = Field(description="table_status: available | reserved | occupied | out_of_service")
    active: bool


class ServicePeriodBody(BaseModel):
    name: str
    start: str = Field(description="Local wall-clock time HH:MM")
    end: str = Field(description="Local wall-clock time HH:MM; at or before start = past midnight")
    dayOfWeek: int | None = Field(description="0 = Sunday; null = every day")
    bookingOption: str


class BookingBody(BaseModel):
    id: uuid.UUID
    reference: str
    partySize: int
    status: str
    start: datetime
    end: datetime
    tableIds: list[uuid.UUID] = Field(description="Current tables, ordered by table number")
    tableNumbers: list[str] = Field(description="The same tables' numbers, in the same order")
    mergeGroupId: uuid.UUID | None = Field(description="The merge-group allocation when the tables are merged")
    needsTable: bool = Field(description="Active (pending, pending_allocation, confirmed) and without a table")


class HoldBody(BaseModel):
    id: uuid.UUID
    bookingId: uuid.UUID | None
    tableIds: list[uuid.UUID]
    tableNumbers: list[str]
    start: datetime
    end: datetime
    expiresAt: datetime


class DayViewBody(BaseModel):
    restaurantId: uuid.UUID
    restaurantName: str
    date: date
    timezone: str
    zones: list[ZoneBody]
    tables: list[TableBody]
    servicePeriods: list[ServicePeriodBody]
    bookings: list[BookingBody] = Field(description="Every booking of the date, whatever its status")
    holds: list[HoldBody] = Field(description="Holds not yet expired that overlap the date")


def day_body(day: Day) -> DayViewBody:
    zone_names = {z.id: z.name for z in day.zones}
    return DayViewBody(
        restaurantId=uuid.UUID(day.restaurant_id), restaurantName=day.restaurant_name, date=day.service_date,
        timezone=day.timezone,
        zones=[ZoneBody(id=uuid.UUID(z.id), name=z.name, sortOrder=z.sort_order, areaType=z.area_type)
               for z in day.zones],
        tables=[TableBody(id=uuid.UUID(t.id), number=t.number, capacity=t.capacity, zoneId=uuid.UUID(t.zone_id),
                          zoneName=zone_names.get(t.zone_id), status=t.status, active=t.active)
                for t in day.tables],
        servicePeriods=[ServicePeriodBody(name=p.name, start=f"{p.start:%H:%M}", end=f"{p.end:%H:%M}",
                                          dayOfWeek=p.day_of_week, bookingOption=p.booking_option)
                        for p in day.periods],
        bookings=[BookingBody(id=uuid.UUID(b.id), reference=b.reference, partySize=b.party_size, status=b.status,
                              start=b.start_at, end=b.end_at, tableIds=[uuid.UUID(t) for t in b.table_ids],
                              tableNumbers=list(b.table_numbers),
                              mergeGroupId=uuid.UUID(b.merge_group_id) if b.merge_group_id else None,
                              needsTable=b.needs_table)
                  for b in day.bookings],
        holds=[HoldBody(id=uuid.UUID(h.id), bookingId=uuid.UUID(h.booking_id) if h.booking_id else None,
                        tableIds=[uuid.UUID(t) for t in h.table_ids], tableNumbers=list(h.table_numbers),
                        start=h.start_at, end=h.end_at, expiresAt=h.expires_at)
               for h in day.holds],
    )


# --- a plan posted to be drawn over the day ---------------------------------------------------------------
class PlannedBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bookingId: uuid.UUID
    tableIds: list[uuid.UUID] = Field(min_length=1, max_length=64)


class PlanSkipBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bookingId: uuid.UUID
    reasonCode: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)


class PlanOverlayBody(BaseModel):
    """The ``POST /api/ops/dashboard/assign-tables`` response (a dry run, or a stored run once run history
    exists); unknown fields such as ``decisions`` or ``serviceFallbacks`` are ignored."""

    model_config = ConfigDict(extra="ignore")

    date: str | None = Field(default=None, description="When present, must be the date of the path")
    assigned: list[PlannedBody] = Field(max_length=MAX_PLAN_BOOKINGS)
    skipped: list[PlanSkipBody] = Field(default_factory=list, max_length=MAX_PLAN_BOOKINGS)
    planner: str | None = Field(default=None, max_length=64)
    bound: Any = Field(default=None, description="The planner's bound, shown as given (optional)")
    runId: str | None = Field(default=None, max_length=128, description="A stored run's id (optional)")
    dryRun: bool | None = None

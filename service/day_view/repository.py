"""Read one restaurant-day for the day view, as the runtime role inside the tenant context (the tables are
under tenant row-level security, docs/schema.md); every query also filters by restaurant explicitly. One REPEATABLE READ
READ ONLY transaction, so bookings, assignments and holds come from the same snapshot."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.day_view.model import Booking, Day, Hold, ServicePeriod, Table, Zone
from service.repository.memberships import set_tenant_context

DEFAULT_TIMEZONE = "Europe/London"  # a blank restaurant timezone means London, as for auto-assign

_RESTAURANT = "SELECT name, timezone FROM restaurants WHERE id = :r"
_ZONES = "SELECT id, name, sort_order, area_type::text AS area_type FROM zones WHERE restaurant_id = :r"
_TABLES = """SELECT id, table_number, capacity, zone_id, status::text AS status, active
               FROM table_inventory WHERE restaurant_id = :r"""
# day_of_week: 0 = Sunday, as PostgreSQL's extract(dow)
_PERIODS = """SELECT name, start_time, end_time, day_of_week, booking_option FROM restaurant_service_periods
               WHERE restaurant_id = :r AND (day_of_week IS NULL OR day_of_week = extract(dow FROM CAST(:d AS date)))
               ORDER BY start_time, name"""
_BOOKINGS = """SELECT b.id, b.reference, b.party_size, b.status::text AS status, b.booking_date,
                      b.start_time, b.end_time, b.start_at, b.end_at,
                      COALESCE(array_agg(a.table_id ORDER BY t.table_number, a.table_id)
                               FILTER (WHERE a.table_id IS NOT NULL), '{}') AS table_ids,
                      COALESCE(array_agg(t.table_number ORDER BY t.table_number, a.table_id)
                               FILTER (WHERE a.table_id IS NOT NULL), '{}') AS table_numbers,
                      (array_agg(a.merge_group_id) FILTER (WHERE a.merge_group_id IS NOT NULL))[1] AS merge_group_id
                 FROM bookings b
                 LEFT JOIN booking_table_assignments a ON a.booking_id = b.id
                 LEFT JOIN table_inventory t ON t.id = a.table_id
                WHERE b.restaurant_id = :r AND b.booking_date = :d
                GROUP BY b.id
                ORDER BY b.start_time, b.id"""
# Active holds (not expired) whose window meets the local day, padded like auto-assign's read.
_HOLDS = """SELECT h.id, h.booking_id, h.start_at, h.end_at, h.expires_at,
                   COALESCE(array_agg(m.table_id ORDER BY t.table_number, m.table_id)
                            FILTER (WHERE m.table_id IS NOT NULL), '{}') AS table_ids,
                   COALESCE(array_agg(t.table_number ORDER BY t.table_number, m.table_id)
                            FILTER (WHERE m.table_id IS NOT NULL), '{}') AS table_numbers
              FROM table_holds h
              LEFT JOIN table_hold_members m ON m.hold_id = h.id
              LEFT JOIN table_inventory t ON t.id = m.table_id
             WHERE h.restaurant_id = :r AND h.expires_at > now() AND h.start_at < :hi AND h.end_at > :lo
             GROUP BY h.id
             ORDER BY h.start_at, h.id"""


def restaurant_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo((name or "").strip() or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def booking_window(row: Mapping[str, Any] | RowMapping, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The stored instants, else the local date and times (an end at or before the start is next day)."""
    day: date = row["booking_date"]
    start = row["start_at"] or datetime.combine(day, row["start_time"], zone)
    end = row["end_at"]
    if end is None:
        end_time: time = row["end_time"]
        end = datetime.combine(day, end_time, zone)
        if end <= start:
            end += timedelta(days=1)
    return start, end


async def load_day(session: AsyncSession, restaurant_id: uuid.UUID, service_date: date) -> Day | None:
    """The restaurant-day, or None when the restaurant is not visible. Call at the start of a transaction."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    await set_tenant_context(session, restaurant_id)
    p: dict[str, Any] = {"r": restaurant_id, "d": service_date}
    restaurant = (await session.execute(text(_RESTAURANT), p)).mappings().first()
    if restaurant is None:
        return None
    zone = restaurant_zone(restaurant["timezone"])
    zones = tuple(
        Zone(str(z["id"]), z["name"], z["sort_order"], z["area_type"])
        for z in (await session.execute(text(_ZONES), p)).mappings()
    )
    tables = tuple(
        Table(str(t["id"]), t["table_number"], t["capacity"], str(t["zone_id"]), t["status"], t["active"])
        for t in (await session.execute(text(_TABLES), p)).mappings()
    )
    periods = tuple(
        ServicePeriod(r["name"], r["start_time"], r["end_time"], r["day_of_week"], r["booking_option"])
        for r in (await session.execute(text(_PERIODS), p)).mappings()
    )
    bookings = []
    for b in (await session.execute(text(_BOOKINGS), p)).mappings():
        start, end = booking_window(b, zone)
        bookings.append(Booking(
            id=str(b["id"]), reference=b["reference"], party_size=b["party_size"], status=b["status"],
            start_at=start, end_at=end, table_ids=tuple(str(t) for t in b["table_ids"]),
            table_numbers=tuple(b["table_numbers"]),
            merge_group_id=str(b["merge_group_id"]) if b["merge_group_id"] else None,
        ))
    lo = datetime.combine(service_date, time.min, zone) - timedelta(days=1)
    hi = datetime.combine(service_date + timedelta(days=1), time.min, zone) + timedelta(days=1)
    holds = tuple(
        Hold(str(h["id"]), str(h["booking_id"]) if h["booking_id"] else None,
             tuple(str(t) for t in h["table_ids"]), tuple(h["table_numbers"]),
             h["start_at"], h["end_at"], h["expires_at"])
        for h in (await session.execute(text(_HOLDS), {**p, "lo": lo, "hi": hi})).mappings()
    )
    return Day(
        restaurant_id=str(restaurant_id), restaurant_name=restaurant["name"], service_date=service_date,
        timezone=zone.key, zones=zones, tables=tables, periods=periods, bookings=tuple(bookings), holds=holds,
    )

"""The floor of docs/schema.md §7: restaurant R (Europe/London), zone Z, movable tables T1 (cap 2), T2 (cap 4),
T3 (cap 4) in Z, adjacency T2–T3, bookings B1 (party 2, 18:00–20:00) and B2 (party 4, 18:30–20:30).

Extras some cases need: zone Y with table T4 (cap 4), and a "Dinner" service period 17:00–23:00 (every
day) that capacity rules can scope to. The service date is far in the future, so no window covers now()
unless a test passes its own window.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import psycopg

from tests.support import pg

SERVICE_DATE = dt.date(2031, 6, 13)
TIMEZONE = "Europe/London"


@dataclass(frozen=True)
class Floor:
    restaurant: uuid.UUID
    zone: uuid.UUID
    other_zone: uuid.UUID
    t1: uuid.UUID
    t2: uuid.UUID
    t3: uuid.UUID
    t4: uuid.UUID  # in other_zone
    dinner: uuid.UUID  # service period 17:00–23:00
    b1: uuid.UUID
    b2: uuid.UUID
    date: dt.date = SERVICE_DATE


def seed_floor(url: str) -> Floor:
    ids = {k: uuid.uuid4() for k in ("restaurant", "zone", "other_zone", "t1", "t2", "t3", "t4", "dinner", "b1", "b2")}
    suffix = ids["restaurant"].hex[:8]
    params = {**ids, "slug": f"r-{suffix}", "tz": TIMEZONE}
    statements = [
        "INSERT INTO restaurants (id, name, slug, timezone) VALUES (%(restaurant)s, 'R', %(slug)s, %(tz)s)",
        "INSERT INTO zones (id, restaurant_id, name) VALUES (%(zone)s, %(restaurant)s, 'Z'),"
        " (%(other_zone)s, %(restaurant)s, 'Y')",
        """INSERT INTO table_inventory (id, restaurant_id, zone_id, table_number, capacity, category, mobility) VALUES
            (%(t1)s, %(restaurant)s, %(zone)s, 'T1', 2, 'dining', 'movable'),
            (%(t2)s, %(restaurant)s, %(zone)s, 'T2', 4, 'dining', 'movable'),
            (%(t3)s, %(restaurant)s, %(zone)s, 'T3', 4, 'dining', 'movable'),
            (%(t4)s, %(restaurant)s, %(other_zone)s, 'T4', 4, 'dining', 'movable')""",
        "INSERT INTO table_adjacencies (table_a, table_b) VALUES (%(t2)s, %(t3)s)",
        "INSERT INTO restaurant_service_periods (id, restaurant_id, name, start_time, end_time, booking_option)"
        " VALUES (%(dinner)s, %(restaurant)s, 'Dinner', '17:00', '23:00', 'dinner')",
    ]
    with psycopg.connect(url) as conn:
        for stmt in statements:
            conn.execute(stmt, params)
    add_booking(url, ids["restaurant"], 2, "18:00", "20:00", booking_id=ids["b1"])
    add_booking(url, ids["restaurant"], 4, "18:30", "20:30", booking_id=ids["b2"])
    return Floor(**ids)


def add_booking(
    url: str,
    restaurant: uuid.UUID,
    party: int,
    start: str,
    end: str,
    *,
    booking_id: uuid.UUID | None = None,
    status: str = "confirmed",
    date: dt.date = SERVICE_DATE,
) -> uuid.UUID:
    """Insert a booking; start_at/end_at are given explicitly (same value the greenfield trigger computes)."""
    booking_id = booking_id or uuid.uuid4()
    pg.run(
        url,
        """
        INSERT INTO bookings (id, restaurant_id, booking_date, start_time, end_time, start_at, end_at, party_size,
                              status, customer_name, customer_email, customer_phone, reference)
        VALUES (%(id)s, %(r)s, %(d)s, %(s)s, %(e)s,
                (%(d)s::date + %(s)s::time) AT TIME ZONE %(tz)s, (%(d)s::date + %(e)s::time) AT TIME ZONE %(tz)s,
                %(p)s, %(status)s::booking_status, 'Guest', 'guest@example.test', '+440000000', %(ref)s)
        """,
        {"id": booking_id, "r": restaurant, "d": date, "s": start, "e": end, "tz": TIMEZONE, "p": party,
         "status": status, "ref": f"REF-{booking_id.hex[:8]}"},
    )
    return booking_id


def commit(
    url: str,
    booking: uuid.UUID,
    tables: list[uuid.UUID],
    *,
    adjacency: bool = False,
    key: str | None = None,
    window: tuple[dt.datetime, dt.datetime] | None = None,
    settings: dict[str, str] | None = None,
    notices: list[str] | None = None,
    rollback: bool = False,
) -> list[tuple]:
    """Call the commit in its own transaction (``settings`` applied with SET LOCAL semantics first).

    Returns (table_id, start_at, end_at, merge_group_id) rows ordered by table id; raises psycopg errors.
    ``notices`` collects server messages (set client_min_messages = log to see LOG lines).
    """
    start, end = window or (None, None)
    with psycopg.connect(url) as conn:
        if notices is not None:
            conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        with conn.cursor() as cur:
            for name, value in (settings or {}).items():
                cur.execute("SELECT set_config(%s, %s, true)", (name, value))
            cur.execute(
                "SELECT table_id, start_at, end_at, merge_group_id"
                " FROM assign_tables_atomic_v2(%s, %s, %s, %s, NULL, %s, %s) ORDER BY table_id",
                (booking, list(tables), key, adjacency, start, end),
            )
            rows = cur.fetchall()
        if rollback:
            conn.rollback()
    return rows


def count(url: str, sql: str, params: tuple | dict | None = None) -> int:
    return pg.run(url, sql, params)[0][0]

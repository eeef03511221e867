"""A small demo restaurant for the embedded mode: a floor with adjacent table groups and a day of bookings.

Loaded once, into a new database only. Fixed ids so the README's curl examples work.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import psycopg

DEMO_RESTAURANT_ID = uuid.UUID("00000000-0000-4000-8000-0000000000d1")
DEMO_OWNER_USER_ID = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
DEMO_TIMEZONE = "Europe/London"

_NS = uuid.UUID("6f1c0f5e-4d0b-4c53-9a2e-6c1f3b1d2a10")


def _id(kind: str, n: int | str) -> uuid.UUID:
    return uuid.uuid5(_NS, f"{kind}:{n}")


# (table number, capacity, min party, max party, zone key, mobility)
_TABLES = [
    ("M1", 2, 1, 2, "main", "movable"),
    ("M2", 2, 1, 2, "main", "movable"),
    ("M3", 4, 1, 4, "main", "movable"),
    ("M4", 4, 1, 4, "main", "movable"),
    ("M5", 4, 2, 4, "main", "movable"),
    ("M6", 6, 3, 6, "main", "movable"),
    ("B1", 6, 4, 8, "main", "fixed"),
    ("T1", 2, 1, 2, "terrace", "movable"),
    ("T2", 2, 1, 2, "terrace", "movable"),
    ("T3", 4, 1, 4, "terrace", "movable"),
    ("T4", 4, 1, 4, "terrace", "movable"),
]
# Rows of adjacent tables: M1–M2–M3–M4 along the window, M5–M6; terrace T1–T2–T3–T4.
_ADJACENT = [("M1", "M2"), ("M2", "M3"), ("M3", "M4"), ("M5", "M6"), ("T1", "T2"), ("T2", "T3"), ("T3", "T4")]
# (start, end, party size)
_BOOKINGS = [
    ("12:00", "13:30", 2), ("12:00", "13:30", 4), ("12:15", "13:45", 3), ("12:30", "14:00", 6),
    ("12:30", "14:00", 2), ("13:00", "14:30", 8), ("13:15", "14:45", 4), ("15:00", "16:00", 2),
    ("18:00", "20:00", 2), ("18:00", "20:00", 4), ("18:15", "20:15", 5), ("18:30", "20:30", 2),
    ("18:30", "20:30", 10), ("19:00", "21:00", 4), ("19:00", "21:00", 3), ("19:30", "21:30", 2),
    ("20:00", "22:00", 6), ("20:30", "22:30", 2), ("20:30", "22:30", 4), ("21:00", "22:30", 2),
]


def load_demo(admin_url: str, today: dt.date | None = None) -> uuid.UUID:
    """Insert the demo restaurant (as the owner/superuser connection). Returns its id."""
    day = today or dt.datetime.now(ZoneInfo(DEMO_TIMEZONE)).date()
    rid = DEMO_RESTAURANT_ID
    with psycopg.connect(admin_url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO restaurants (id, name, slug, timezone) VALUES (%s, 'Demo Bistro', 'demo-bistro', %s)",
            (rid, DEMO_TIMEZONE),
        )
        cur.execute(
            "INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, 'owner')",
            (DEMO_OWNER_USER_ID, rid),
        )
        zones = {"main": _id("zone", "main"), "terrace": _id("zone", "terrace")}
        for order, (key, zid) in enumerate(zones.items()):
            area = "indoor" if key == "main" else "outdoor"
            cur.execute(
                "INSERT INTO zones (id, restaurant_id, name, sort_order, area_type) VALUES (%s, %s, %s, %s, %s)",
                (zid, rid, key.title(), order, area),
            )
        for number, cap, mn, mx, zone, mobility in _TABLES:
            cur.execute(
                """INSERT INTO table_inventory (id, restaurant_id, zone_id, table_number, capacity,
                       min_party_size, max_party_size, category, mobility)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, 'dining', %s)""",
                (_id("table", number), rid, zones[zone], number, cap, mn, mx, mobility),
            )
        for a, b in _ADJACENT:
            cur.execute(
                "INSERT INTO table_adjacencies (table_a, table_b) VALUES (%s, %s)", (_id("table", a), _id("table", b))
            )
        for name, start, end in (("Lunch", "12:00", "15:00"), ("Afternoon", "15:00", "17:00"), ("Dinner", "17:30", "23:00")):
            cur.execute(
                """INSERT INTO restaurant_service_periods (id, restaurant_id, name, start_time, end_time)
                   VALUES (%s, %s, %s, %s, %s)""",
                (_id("period", name), rid, name, start, end),
            )
        for n, (start, end, party) in enumerate(_BOOKINGS, start=1):
            cur.execute(
                """INSERT INTO bookings (id, restaurant_id, booking_date, start_time, end_time, party_size, status,
                       customer_name, customer_email, customer_phone, reference)
                   VALUES (%s, %s, %s, %s, %s, %s, 'confirmed', %s, %s, %s, %s)""",
                (
                    _id("booking", n), rid, day, start, end, party,
                    f"Guest {n}", f"guest{n}@example.test", f"+44 20 7946 {n:04d}", f"DEMO{n:04d}",
                ),
            )
        conn.commit()
    return rid

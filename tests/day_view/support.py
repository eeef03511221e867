"""The demo restaurant (service/demo.py) on a fresh database, with the extras the day view draws: a table out
of service and an active hold (plus an expired one that must not show)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from service.auth import mint_token
from service.demo import DEMO_OWNER_USER_ID, DEMO_RESTAURANT_ID, DEMO_TIMEZONE, load_demo
from service.settings import Settings
from tests.support import pg

ASSIGN_PATH = "/api/ops/dashboard/assign-tables"
BAR = re.compile(r'<g class="booking-bar" data-booking-id="([0-9a-f-]+)" data-kind="([a-z-]+)"')


@dataclass
class DemoDay:
    db_url: str  # superuser
    settings: Settings
    date: dt.date
    rid: uuid.UUID = DEMO_RESTAURANT_ID
    outsider: uuid.UUID = uuid.UUID("00000000-0000-4000-8000-0000000000b2")

    @property
    def day_path(self) -> str:
        return f"/api/ops/dashboard/days/{self.rid}/{self.date.isoformat()}"

    @property
    def svg_path(self) -> str:
        return self.day_path + "/timeline.svg"

    def token(self, user: uuid.UUID = DEMO_OWNER_USER_ID) -> str:
        return mint_token(self.settings, sub=str(user))

    def auth(self, user: uuid.UUID = DEMO_OWNER_USER_ID) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def sql(self, statement: str, params: tuple | dict | None = None) -> list[tuple]:
        return pg.run(self.db_url, statement, params)

    def table_id(self, number: str) -> str:
        return str(self.sql("SELECT id FROM table_inventory WHERE restaurant_id = %s AND table_number = %s",
                            (self.rid, number))[0][0])

    def assign_body(self, **extra) -> dict:
        return {"restaurantId": str(self.rid), "date": self.date.isoformat(), **extra}


def seed_demo_day(db_url: str, settings: Settings, day: dt.date | None = None) -> DemoDay:
    service_date = day or dt.datetime.now(ZoneInfo(DEMO_TIMEZONE)).date()
    load_demo(db_url, service_date)
    demo = DemoDay(db_url=db_url, settings=settings, date=service_date)
    # someone who is a member elsewhere only
    other = uuid.uuid4()
    demo.sql("INSERT INTO restaurants (id, name, slug) VALUES (%s, 'Elsewhere', %s)", (other, f"else-{other.hex[:8]}"))
    demo.sql("INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, 'owner')",
             (demo.outsider, other))
    demo.sql("UPDATE table_inventory SET status = 'out_of_service' WHERE restaurant_id = %s AND table_number = 'T4'",
             (demo.rid,))
    # the terrace's two-tops may be pushed together for four (the demo caps them at two, so nothing merges)
    demo.sql("UPDATE table_inventory SET max_party_size = 4 WHERE restaurant_id = %s AND table_number IN ('T1', 'T2')",
             (demo.rid,))
    zone = ZoneInfo(DEMO_TIMEZONE)
    main = demo.sql("SELECT zone_id FROM table_inventory WHERE restaurant_id = %s AND table_number = 'M5'",
                       (demo.rid,))[0][0]
    for hold_id, start, end, expires in (
        (uuid.UUID("00000000-0000-4000-8000-00000000f001"), "16:00", "17:00", dt.timedelta(days=2)),
        (uuid.UUID("00000000-0000-4000-8000-00000000f002"), "15:00", "16:00", -dt.timedelta(minutes=5)),
    ):
        lo = dt.datetime.combine(service_date, dt.time.fromisoformat(start), zone)
        hi = dt.datetime.combine(service_date, dt.time.fromisoformat(end), zone)
        demo.sql("""INSERT INTO table_holds (id, restaurant_id, zone_id, start_at, end_at, expires_at)
                    VALUES (%s, %s, %s, %s, %s, now() + %s)""", (hold_id, demo.rid, main, lo, hi, expires))
        for number in ("M5",):
            demo.sql("INSERT INTO table_hold_members (hold_id, table_id) VALUES (%s, %s)",
                     (hold_id, demo.table_id(number)))
    return demo


def add_booking(demo: DemoDay, start: str, end: str, party: int, reference: str) -> str:
    booking_id = uuid.uuid5(demo.rid, reference)
    demo.sql("""INSERT INTO bookings (id, restaurant_id, booking_date, start_time, end_time, party_size, status,
                    customer_name, customer_email, customer_phone, reference)
                VALUES (%s, %s, %s, %s, %s, %s, 'confirmed', 'Guest', 'guest@example.test', '+44 20 7946 0000', %s)""",
             (booking_id, demo.rid, demo.date, start, end, party, reference))
    return str(booking_id)


# A group of six parties of four in the afternoon: the free tables for four (M3, M4, T3, B1, M6; M5 is held)
# take five, the sixth needs two tables for two merged (T1+T2).
AFTERNOON_FOURS = [("15:15", "16:45", 4, f"GROUP{n}") for n in range(1, 7)]
# Booked after the run: what the dry run plans (one of them needs a merge too, or is skipped).
AFTER_THE_RUN = [("21:00", "22:30", 4, "WALKIN1"), ("21:15", "22:45", 2, "WALKIN2"), ("17:30", "19:00", 4, "WALKIN3")]


def bars(svg: str) -> dict[str, str]:
    """booking id → bar kind, as drawn."""
    found = BAR.findall(svg)
    assert len(found) == len({b for b, _ in found}), "a booking drawn twice"
    return dict(found)

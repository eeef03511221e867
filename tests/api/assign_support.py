"""Shared set-up for the assign-tables API tests: the tests/support/floor.py floor (tests/support/floor.py) with
people who are members of its restaurant, an outsider of another restaurant, and request helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx

from service.auth import mint_token
from service.settings import Settings
from tests.support import pg
from tests.support.floor import Floor, add_booking, seed_floor

PATH = "/api/ops/dashboard/assign-tables"
ROLES = ("owner", "manager", "host", "server")


@dataclass
class AssignWorld:
    db_url: str  # superuser URL
    settings: Settings
    floor: Floor
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    other_restaurant: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def rid(self) -> uuid.UUID:
        return self.floor.restaurant

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings, sub=str(self.users[name]))}"}

    def sql(self, statement: str, params: tuple | dict | None = None) -> list[tuple]:
        return pg.run(self.db_url, statement, params)

    def body(self, **extra) -> dict:
        return {"restaurantId": str(self.rid), "date": self.floor.date.isoformat(), **extra}

    async def assign(self, client: httpx.AsyncClient, who: str = "owner", **extra) -> httpx.Response:
        return await client.post(PATH, json=self.body(**extra), headers=self.auth(who))

    def booking(self, party: int, start: str, end: str, **kw) -> uuid.UUID:
        return add_booking(self.db_url, self.rid, party, start, end, **kw)

    def assignments(self) -> dict[str, set[str]]:
        """booking id → table ids, as stored."""
        out: dict[str, set[str]] = {}
        for b, t in self.sql(
            """SELECT a.booking_id::text, a.table_id::text FROM booking_table_assignments a
                 JOIN bookings b ON b.id = a.booking_id WHERE b.restaurant_id = %s""",
            (self.rid,),
        ):
            out.setdefault(b, set()).add(t)
        return out

    def table(self, name: str) -> str:
        return str(getattr(self.floor, name))


def seed_assign_world(db_url: str, settings: Settings) -> AssignWorld:
    world = AssignWorld(db_url=db_url, settings=settings, floor=seed_floor(db_url))
    world.sql("INSERT INTO restaurants (id, name, slug) VALUES (%s, 'Other', %s)",
              (world.other_restaurant, f"other-{world.other_restaurant.hex[:8]}"))
    for role in ROLES:
        world.users[role] = uuid.uuid4()
        world.sql("INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, %s)",
                  (world.users[role], world.rid, role))
    world.users["outsider"] = uuid.uuid4()
    world.sql("INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, 'owner')",
              (world.users["outsider"], world.other_restaurant))
    return world

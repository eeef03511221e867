"""API test harness: the real app (lifespan included) over httpx's ASGI transport, connected as the
runtime role ``capacity_app`` to a fresh database at head; seeding happens as the superuser."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from service.app import create_app
from service.auth import mint_token
from service.settings import Settings
from tests.support import pg

JWT_SECRET = "test-secret-for-api-tests-0123456789abcdef"
API_KEY = "test-internal-api-key"
RUNTIME_ROLE = "capacity_app"


def runtime_url(admin_db_url: str) -> str:
    """Same database, logged in as the non-owner runtime role (trust auth on the test servers)."""
    url = make_url(admin_db_url).set(username=RUNTIME_ROLE, password=None)
    return url.render_as_string(hide_password=False)


def make_settings(admin_db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": SecretStr(runtime_url(admin_db_url)),
        "capacity_jwt_secret": SecretStr(JWT_SECRET),
        "internal_api_keys": SecretStr(API_KEY),
        "readiness_cache_s": 0,
        "db_pool_size": 5,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://capacity.test") as client:
            yield app, client


@dataclass
class World:
    """Acceptance fixtures of docs/strategic-config.md §7: restaurants A and B and their people."""

    db_url: str  # superuser URL of the test database
    settings: Settings
    a: uuid.UUID = field(default_factory=uuid.uuid4)
    b: uuid.UUID = field(default_factory=uuid.uuid4)
    users: dict[str, uuid.UUID] = field(default_factory=dict)

    def token(self, name: str) -> str:
        return mint_token(self.settings, sub=str(self.users[name]))

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"}

    def service_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings, sub=None, role='service_role')}"}

    def sql(self, statement: str, params: tuple | dict | None = None) -> list[tuple]:
        return pg.run(self.db_url, statement, params)

    def set_row(
        self,
        restaurant: uuid.UUID | None,
        scarcity: float,
        multiplier: float | None = None,
        penalty: float | None = None,
    ) -> None:
        """Write a strategic_configs row as the owner (bypasses the API, like an operator would)."""
        self.sql(
            """INSERT INTO strategic_configs (restaurant_id, scarcity_weight, demand_multiplier_override,
                                              future_conflict_penalty)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (restaurant_id) DO UPDATE SET scarcity_weight = EXCLUDED.scarcity_weight,
                 demand_multiplier_override = EXCLUDED.demand_multiplier_override,
                 future_conflict_penalty = EXCLUDED.future_conflict_penalty""",
            (restaurant, scarcity, multiplier, penalty),
        )


def seed_world(db_url: str, settings: Settings) -> World:
    world = World(db_url=db_url, settings=settings)
    for key, rid in (("a", world.a), ("b", world.b)):
        world.sql(
            "INSERT INTO restaurants (id, name, slug) VALUES (%s, %s, %s)",
            (rid, f"Restaurant {key.upper()}", f"restaurant-{key}-{rid.hex[:8]}"),
        )
    people = {
        "olivia": (world.a, "owner"),
        "mike": (world.a, "manager"),
        "hana": (world.a, "host"),
        "sam": (world.a, "server"),
        "una": (world.b, "owner"),
    }
    for name, (restaurant, role) in people.items():
        user = uuid.uuid4()
        world.users[name] = user
        world.sql(
            "INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, %s)",
            (user, restaurant, role),
        )
    return world


@pytest.fixture
def world(head_db: str) -> World:
    return seed_world(head_db, make_settings(head_db))


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(world.settings) as (_, http):
        yield http


@pytest.fixture
def app_factory(world: World) -> Callable[..., contextlib.AbstractAsyncContextManager]:
    """Start further app instances (replicas) on the same database, optionally with other settings."""

    def factory(**overrides: Any) -> contextlib.AbstractAsyncContextManager:
        return running_app(make_settings(world.db_url, **overrides))

    return factory


# --- auto-assign world (tests/api/assign_support.py): the floor of tests/support/floor.py, users of every role ---------


@pytest.fixture
def aw(head_db: str):
    from tests.api.assign_support import seed_assign_world

    return seed_assign_world(head_db, make_settings(head_db))


@pytest.fixture
async def app_client(aw) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(aw.settings) as pair:
        yield pair

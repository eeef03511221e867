"""Cache and cross-replica invalidation (issue 4 item 4; docs/strategic-config.md §3.6, case 16)."""

from __future__ import annotations

import asyncio
import time

from service.strategic_config.listener import LISTENER_APPLICATION_NAME
from tests.api.conftest import World

P = "/api/ops/settings/strategic-config"


def internal(rid) -> str:
    return f"/internal/v1/restaurants/{rid}/strategic-config"


async def _scarcity(http, world: World, rid) -> float:
    r = await http.get(internal(rid), headers=world.service_auth())
    assert r.status_code == 200, r.text
    return r.json()["weights"]["scarcity"]


async def _seen_within(http, world: World, rid, expected: float, budget_s: float) -> bool:
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        if await _scarcity(http, world, rid) == expected:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_write_on_one_replica_is_seen_by_the_other_within_a_second(world: World, app_factory) -> None:
    # a one-hour TTL: only the NOTIFY can explain replica 2 seeing the change
    async with (
        app_factory(strategic_config_cache_ttl_s=3600) as (app1, one),
        app_factory(strategic_config_cache_ttl_s=3600) as (app2, two),
    ):
        await asyncio.wait_for(app1.state.strategic_config_listener.connected.wait(), 10)
        await asyncio.wait_for(app2.state.strategic_config_listener.connected.wait(), 10)
        assert await _scarcity(two, world, world.a) == 22  # cached on replica 2
        assert await _scarcity(two, world, world.a) == 22
        r = await one.post(P, json={"restaurantId": str(world.a), "weights": {"scarcity": 30}}, headers=world.auth("mike"))
        assert r.status_code == 200
        assert await _seen_within(two, world, world.a, 30, budget_s=1.0)


async def test_cache_serves_repeated_reads_without_the_database(world: World, app_factory) -> None:
    async with app_factory(strategic_config_cache_ttl_s=3600, strategic_config_listen=False) as (app, http):
        await _scarcity(http, world, world.a)
        loads = app.state.metrics.registry.get_sample_value("strategic_config_cache_loads_total")
        for _ in range(5):
            await _scarcity(http, world, world.a)
        assert app.state.metrics.registry.get_sample_value("strategic_config_cache_loads_total") == loads
        # a hand edit is not seen while cached and nothing notifies: the TTL is the upper bound
        world.set_row(world.a, 44)
        assert await _scarcity(http, world, world.a) == 22


async def test_hand_written_notify_invalidates(world: World, app_factory) -> None:
    async with app_factory(strategic_config_cache_ttl_s=3600) as (app, http):
        await asyncio.wait_for(app.state.strategic_config_listener.connected.wait(), 10)
        assert await _scarcity(http, world, world.a) == 22
        world.set_row(None, 40)  # an operator edits the global row …
        world.sql("SELECT pg_notify('strategic_config_changed', '')")  # … and announces it
        assert await _seen_within(http, world, world.a, 40, budget_s=5.0)


async def test_listener_reconnects_and_drops_the_cache(world: World, app_factory) -> None:
    async with (
        app_factory(strategic_config_cache_ttl_s=3600) as (app1, one),
        app_factory(strategic_config_cache_ttl_s=3600) as (app2, two),
    ):
        listener = app2.state.strategic_config_listener
        await asyncio.wait_for(listener.connected.wait(), 10)
        assert await _scarcity(two, world, world.a) == 22
        connects = listener.connects
        world.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
            (LISTENER_APPLICATION_NAME,),
        )
        # wait until the replica noticed the loss and is listening again
        for _ in range(1000):
            if listener.connects > connects:
                break
            await asyncio.sleep(0.02)
        assert listener.connects > connects and listener.connected.is_set()
        r = await one.post(P, json={"restaurantId": str(world.a), "weights": {"scarcity": 31}}, headers=world.auth("mike"))
        assert r.status_code == 200
        assert await _seen_within(two, world, world.a, 31, budget_s=5.0)


async def test_ttl_is_the_upper_bound_without_notify_and_old_entries_are_pruned(world: World) -> None:
    from service.repository.database import build_engine, build_sessionmaker
    from service.strategic_config.metrics import StrategicConfigMetrics
    from service.strategic_config.service import StrategicConfigService

    now = [1000.0]
    engine = build_engine(world.settings.database_url.get_secret_value(), world.settings)
    try:
        service = StrategicConfigService(
            build_sessionmaker(engine), world.settings, StrategicConfigMetrics(), clock=lambda: now[0]
        )
        await service.probe()
        assert (await service.resolve(world.a)).weights.scarcity == 22
        world.set_row(world.a, 44)  # no notification reaches this resolver
        now[0] += 29
        assert (await service.resolve(world.a)).weights.scarcity == 22
        now[0] += 2  # past the 30-s TTL
        assert (await service.resolve(world.a)).weights.scarcity == 44
        now[0] += 601  # older than the last-known-good window
        service.prune()
        assert service._entries == {}
    finally:
        await engine.dispose()

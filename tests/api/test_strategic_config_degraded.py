"""docs/strategic-config.md §3.5 / §7.3: degraded schema states are visible, never silent; docs/strategic-config.md §7.4 case 26."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from service.schema import doctor
from tests.api.conftest import World, running_app
from tests.support import fixtures, pg

P = "/api/ops/settings/strategic-config"
R1 = uuid.UUID(fixtures.SC_RESTAURANTS["R1"])


def _internal(rid: uuid.UUID) -> str:
    return f"/internal/v1/restaurants/{rid}/strategic-config"


def _join_r1(world: World) -> None:
    for name, role in (("hana", "host"), ("mike", "manager")):
        world.sql(
            "INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, %s)",
            (world.users[name], R1, role),
        )


def _legacy_json_only(world: World) -> None:
    """Seed 000: the legacy shape, weights = {"scarcity_weight": 30} for the restaurant."""
    world.sql(
        fixtures.strategic_configs_legacy_sql(
            [("00000000-0000-4000-9000-000000000001", "R1", {"scarcity_weight": 30})], forget_history=False
        )
    )
    _join_r1(world)


def _table_missing(world: World) -> None:
    world.sql(fixtures.strategic_configs_absent_sql().split("\n")[0])  # keep the version history
    world.sql(fixtures.strategic_configs_restaurants_sql(["R1"]))
    _join_r1(world)


def _column_missing(world: World) -> None:
    world.sql(fixtures.strategic_configs_restaurants_sql(["R1"]))
    world.set_row(R1, 30, None, 50)
    world.sql("ALTER TABLE strategic_configs DROP COLUMN future_conflict_penalty")
    _join_r1(world)


STATES = {
    "legacy_json_only": _legacy_json_only,
    "table_missing": _table_missing,
    "columns_missing": _column_missing,
}


@pytest.mark.parametrize("reason", list(STATES))
async def test_cases17_18_19_degraded_read_and_refused_write(
    world: World, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    STATES[reason](world)
    before = world.sql("SELECT * FROM strategic_configs") if reason != "table_missing" else None
    caplog.set_level(logging.ERROR, logger="capacity.strategic_config")
    async with running_app(world.settings) as (app, http):
        for _ in range(3):
            r = await http.get(P, params={"restaurantId": str(R1)}, headers=world.auth("hana"))
            assert r.status_code == 200, r.text
        body = r.json()
        assert body["source"] == "env" and body["scope"] == "default"
        assert body["weights"] == {"scarcity": 22, "demandMultiplier": None, "futureConflictPenalty": None}
        assert body["degraded"] is True and body["degradedReason"] == reason
        assert r.headers["x-strategic-config-degraded"] == reason
        # the allocator path resolves the same way
        resolved = await app.state.strategic_config.resolve(R1)
        assert resolved.degraded_reason == reason and resolved.effective.scarcity == 22

        internal = await http.get(_internal(R1), headers=world.service_auth())
        assert internal.status_code == 200
        assert internal.json()["degradedReason"] == reason
        assert internal.headers["x-strategic-config-degraded"] == reason

        w = await http.post(P, json={"restaurantId": str(R1), "weights": {"scarcity": 45}}, headers=world.auth("mike"))
        assert w.status_code == 503
        assert w.json()["code"] == "STRATEGIC_CONFIG_SCHEMA_UNAVAILABLE"
        assert reason in w.json()["message"]
        assert w.headers["retry-after"] == "30"

        metrics = (await http.get("/metrics")).text
        assert f'strategic_config_degraded{{reason="{reason}"}} 1.0' in metrics
        fallbacks = [
            line for line in metrics.splitlines()
            if line.startswith(f'strategic_config_fallback_resolutions_total{{reason="{reason}"}}')
        ]
        assert fallbacks and float(fallbacks[0].split()[-1]) >= 5
    # logged at ERROR once for the cause, not once per request
    errors = [rec for rec in caplog.records if reason in rec.getMessage() and rec.levelno == logging.ERROR]
    assert len(errors) == 1
    if before is not None:
        assert world.sql("SELECT * FROM strategic_configs") == before  # never written into the legacy JSON


async def test_probe_agrees_with_the_doctor(world: World) -> None:
    from service.domain.config_resolution import schema_state_from_columns

    shapes = [
        None,
        {"id", "restaurant_id", "weights", "updated_at"},
        {"id", "scarcity_weight", "updated_at", "weights"},
        {"id", "scarcity_weight", "demand_multiplier_override", "updated_at"},
        {"scarcity_weight", "demand_multiplier_override", "future_conflict_penalty", "updated_at"},
        {"scarcity_weight", "demand_multiplier_override", "future_conflict_penalty", "updated_at", "weights"},
    ]
    for cols in shapes:
        assert schema_state_from_columns(cols is not None, set(cols or ())) == doctor.strategic_config_state(cols)


async def test_readiness_reports_degraded(world: World) -> None:
    _legacy_json_only(world)
    async with running_app(world.settings) as (_, http):
        r = await http.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "degraded"
    assert "legacy_json_only" in r.json()["degradedReasons"]


async def test_legacy_json_present_reads_normally(world: World, client: httpx.AsyncClient) -> None:
    # half-migrated: numeric columns authoritative, the leftover JSON is only reported
    world.sql("ALTER TABLE strategic_configs ADD COLUMN weights jsonb")
    world.set_row(world.a, 33)
    async with running_app(world.settings) as (app, http):
        r = await http.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))
        assert app.state.strategic_config.schema_state == "legacy_json_present"
    assert r.json()["degraded"] is False and r.json()["weights"]["scarcity"] == 33


async def test_migration_repairs_without_restart(world: World) -> None:
    """After the fix lands, a write re-probes instead of refusing until the next probe tick."""
    _column_missing(world)
    async with running_app(world.settings) as (app, http):
        assert app.state.strategic_config.schema_state == "columns_missing"
        world.sql("ALTER TABLE strategic_configs ADD COLUMN future_conflict_penalty numeric(10,2)")
        w = await http.post(P, json={"restaurantId": str(R1), "weights": {"scarcity": 45}}, headers=world.auth("mike"))
        assert w.status_code == 200, w.text
        r = await http.get(P, params={"restaurantId": str(R1)}, headers=world.auth("hana"))
        assert r.json()["degraded"] is False and r.json()["weights"]["scarcity"] == 45


def _block_connections(world: World, blocked: bool) -> None:
    """A real outage of this database: refuse new connections and cut the open ones."""
    from sqlalchemy.engine import make_url

    name = make_url(world.db_url).database
    admin = pg.with_database(world.db_url, "postgres")
    pg.run(admin, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {'false' if blocked else 'true'}")
    if blocked:
        pg.run(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


async def test_case26_store_unavailable_last_known_good_then_503(world: World, app_factory) -> None:
    world.set_row(world.a, 30, 1.5, None)
    # TTL 0: every resolution goes to the database, so the outage is what the test sees
    async with app_factory(strategic_config_cache_ttl_s=0, strategic_config_listen=False) as (app, http):
        first = await http.get(_internal(world.a), headers=world.service_auth())
        assert first.json()["weights"]["scarcity"] == 30
        _block_connections(world, True)
        try:
            r = await http.get(_internal(world.a), headers=world.service_auth())
            assert r.status_code == 200, r.text
            assert r.json()["degraded"] is True and r.json()["degradedReason"] == "store_unavailable"
            assert r.json()["weights"]["scarcity"] == 30 and r.json()["source"] == "db"
            assert r.headers["x-strategic-config-degraded"] == "store_unavailable"
            # never silently env defaults: B was never loaded → 503, the allocator run must abort
            b = await http.get(_internal(world.b), headers=world.service_auth())
            assert b.status_code == 503
            assert b.json()["code"] == "STRATEGIC_CONFIG_STORE_UNAVAILABLE"
            assert b.headers["retry-after"] == "30"
            from service.errors import StrategicConfigStoreUnavailable

            with pytest.raises(StrategicConfigStoreUnavailable):
                await app.state.strategic_config.resolve(world.b)
            metrics = (await http.get("/metrics")).text
            assert 'strategic_config_degraded{reason="store_unavailable"} 1.0' in metrics
        finally:
            _block_connections(world, False)
        recovered = await http.get(_internal(world.a), headers=world.service_auth())
        assert recovered.status_code == 200 and recovered.json()["degraded"] is False


async def test_case26_last_known_good_too_old_is_503(world: World, app_factory) -> None:
    world.set_row(world.a, 30)
    async with app_factory(
        strategic_config_cache_ttl_s=0, strategic_config_last_known_good_s=0, strategic_config_listen=False
    ) as (_, http):
        assert (await http.get(_internal(world.a), headers=world.service_auth())).status_code == 200
        _block_connections(world, True)
        try:
            r = await http.get(_internal(world.a), headers=world.service_auth())
        finally:
            _block_connections(world, False)
    assert r.status_code == 503 and r.json()["code"] == "STRATEGIC_CONFIG_STORE_UNAVAILABLE"

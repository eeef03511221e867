"""Pure resolution rules (docs/strategic-config.md §3.6, §5.4) plus the database guarantees they rely on
(cases 23, 27, 29) and the allocator's adapter."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from service.domain.config_resolution import (
    EnvDefaults,
    ResolvedWeightsProvider,
    StoredConfig,
    etag_matches,
    resolve,
    to_strategic_weights,
    validate_weights,
)
from tests.api.conftest import World, runtime_url

RID = uuid.UUID("6f1c7a52-0c55-4f31-9a0e-55d8e2f1b4a0")
T1 = datetime(2025, 10, 31, 9, 12, 44, tzinfo=UTC)


def row(scarcity, multiplier=None, penalty=None, scope="restaurant", version=1) -> StoredConfig:
    dec = lambda v: None if v is None else Decimal(str(v))  # noqa: E731
    return StoredConfig(scope, dec(scarcity), dec(multiplier), dec(penalty), version, T1)


def test_no_row_uses_env_then_hard_default() -> None:
    assert resolve(RID, None, EnvDefaults()).weights.scarcity == 22
    assert resolve(RID, None, EnvDefaults(scarcity=35)).weights.scarcity == 35
    r = resolve(RID, None, EnvDefaults(scarcity=35, lookahead_penalty=700))
    assert (r.source, r.scope, r.version, r.updated_at) == ("env", "default", None, None)
    assert r.effective.future_conflict_penalty == 700 and r.effective.future_conflict_penalty_source == "env"


def test_case23_out_of_range_row_is_shown_as_stored_but_clamped_when_applied() -> None:
    r = resolve(RID, row(5000), EnvDefaults())
    assert r.weights.scarcity == 5000 and r.effective.scarcity == 1000
    assert resolve(RID, row(-3), EnvDefaults()).effective.scarcity == 0


def test_null_scarcity_falls_back_to_env_then_22() -> None:
    assert resolve(RID, row(None), EnvDefaults(scarcity=35)).effective.scarcity == 35
    assert resolve(RID, row(None), EnvDefaults()).effective.scarcity == 22


def test_non_finite_env_value_becomes_the_default_not_the_minimum() -> None:
    assert resolve(RID, None, EnvDefaults(scarcity=math.nan)).weights.scarcity == 22


def test_case25_overrides_take_effect() -> None:
    r = resolve(RID, row(30, 2.0, 0), EnvDefaults())
    assert (r.effective.demand_multiplier, r.effective.future_conflict_penalty) == (2.0, 0)
    assert r.effective.demand_multiplier_source == "strategic_override"
    assert r.effective.future_conflict_penalty_source == "strategic_override"
    r = resolve(RID, row(30, 0, None), EnvDefaults())
    assert (r.effective.demand_multiplier, r.effective.future_conflict_penalty) == (1.0, 500)
    assert resolve(RID, row(30, 50, 10**7), EnvDefaults()).effective.future_conflict_penalty == 100_000


def test_degraded_schema_serves_defaults_even_with_a_row() -> None:
    r = resolve(RID, row(30), EnvDefaults(), "legacy_json_only")
    assert (r.source, r.scope, r.degraded, r.degraded_reason) == ("env", "default", True, "legacy_json_only")
    assert r.weights.scarcity == 22
    assert resolve(RID, row(30), EnvDefaults(), "legacy_json_present").degraded is False


def test_etags() -> None:
    a = resolve(RID, row(30, version=1), EnvDefaults())
    b = resolve(RID, row(31, version=2), EnvDefaults())
    g = resolve(RID, row(30, version=1, scope="global"), EnvDefaults())
    d = resolve(RID, None, EnvDefaults())
    d35 = resolve(RID, None, EnvDefaults(scarcity=35))
    degraded = resolve(RID, None, EnvDefaults(), "table_missing")
    tags = {a.etag, b.etag, g.etag, d.etag, d35.etag, degraded.etag}
    assert len(tags) == 6
    assert d.etag.startswith('"default-') and a.etag.startswith('"restaurant-1-')
    assert a.as_degraded("store_unavailable").etag != a.etag
    assert etag_matches(f'"x", {a.etag}', a.etag) and etag_matches("*", a.etag)
    assert etag_matches(f"W/{a.etag}", a.etag) and not etag_matches('"other"', a.etag)


def test_validation_kinds_and_rounding() -> None:
    ok, problems = validate_weights({"scarcity": 12.345, "demandMultiplier": 1.23456, "futureConflictPenalty": 99.999})
    assert not problems and ok is not None
    assert (ok.scarcity, ok.demand_multiplier, ok.future_conflict_penalty) == (
        Decimal("12.35"), Decimal("1.235"), Decimal("100.00")
    )
    _, problems = validate_weights({"scarcity": "22", "demandMultiplier": 11})
    assert [(p.field, p.kind) for p in problems] == [
        ("weights.scarcity", "type"), ("weights.demandMultiplier", "range")
    ]


def test_allocator_adapter() -> None:
    w = to_strategic_weights(resolve(RID, row(5000, 0, None, version=4), EnvDefaults()))
    assert (w.scarcity, w.demand_multiplier_override, w.future_conflict_penalty) == (1000, 0, None)
    assert w.effective_demand_override == 1.0
    assert (w.source, w.scope, w.version, w.degraded) == ("db", "restaurant", "4", False)
    d = to_strategic_weights(resolve(RID, None, EnvDefaults(scarcity=35), "columns_missing"))
    assert (d.scarcity, d.degraded, d.degraded_reason) == (35, True, "columns_missing")


async def test_allocator_provider_resolves_once_per_run(world: World) -> None:
    from tests.api.conftest import running_app

    world.set_row(world.a, 30)
    async with running_app(world.settings) as (app, _):
        provider = await ResolvedWeightsProvider.load(app.state.strategic_config, [world.a, world.b])
        world.set_row(world.a, 99)  # a change mid-run does not mix weights into the run
        assert provider.resolve(str(world.a)).scarcity == 30
        assert provider.resolve(str(world.b)).scarcity == 22
        with pytest.raises(LookupError):
            provider.resolve(str(uuid.uuid4()))


def test_db_rejects_out_of_range_and_second_global_row(world: World) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        world.set_row(world.a, 5000)
    world.sql("INSERT INTO strategic_configs (restaurant_id, scarcity_weight) VALUES (NULL, 40)")
    with pytest.raises(psycopg.errors.UniqueViolation):  # case 27
        world.sql("INSERT INTO strategic_configs (restaurant_id, scarcity_weight) VALUES (NULL, 41)")


def test_case29_runtime_role_is_tenant_scoped(world: World) -> None:
    world.set_row(world.a, 30)
    world.set_row(None, 40)
    with psycopg.connect(runtime_url(world.db_url)) as conn:
        conn.execute("SELECT set_config('app.restaurant_id', %s, true)", (str(world.b),))
        seen = conn.execute("SELECT restaurant_id FROM strategic_configs").fetchall()
        assert seen == [(None,)]  # the global row only, never A's
        assert conn.execute("UPDATE strategic_configs SET scarcity_weight = 1 WHERE restaurant_id = %s",
                            (world.a,)).rowcount == 0
        # readable but not writable: the manage policy's USING hides the global row from UPDATE/DELETE
        assert conn.execute("UPDATE strategic_configs SET scarcity_weight = 1 WHERE restaurant_id IS NULL").rowcount == 0
        assert conn.execute("DELETE FROM strategic_configs").rowcount == 0
    with psycopg.connect(runtime_url(world.db_url)) as conn:
        conn.execute("SELECT set_config('app.restaurant_id', %s, true)", (str(world.b),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO strategic_configs (restaurant_id, scarcity_weight) VALUES (%s, 1)", (world.a,))
    with psycopg.connect(runtime_url(world.db_url)) as conn:
        conn.execute("SELECT set_config('app.restaurant_id', %s, true)", (str(world.b),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO strategic_configs (restaurant_id, scarcity_weight) VALUES (NULL, 1)")
    assert world.sql("SELECT scarcity_weight FROM strategic_configs ORDER BY restaurant_id NULLS LAST") == [
        (Decimal("30.00"),), (Decimal("40.00"),)
    ]

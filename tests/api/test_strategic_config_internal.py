"""docs/strategic-config.md §6 and §7.5: the internal read API for other services."""

from __future__ import annotations

import uuid

import httpx

from tests.api.conftest import API_KEY, World

P = "/api/ops/settings/strategic-config"


def internal(rid: uuid.UUID | str) -> str:
    return f"/internal/v1/restaurants/{rid}/strategic-config"


async def test_case28_credentials(world: World, client: httpx.AsyncClient) -> None:
    assert (await client.get(internal(world.a))).status_code == 401
    bad = await client.get(internal(world.a), headers={"Authorization": "Bearer not-a-key"})
    assert bad.status_code == 401 and bad.json()["code"] == "UNAUTHENTICATED"
    user = await client.get(internal(world.a), headers=world.auth("olivia"))
    assert user.status_code == 403 and user.json()["code"] == "FORBIDDEN"
    for headers in (world.service_auth(), {"Authorization": f"Bearer {API_KEY}"}):
        r = await client.get(internal(world.a), headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "private, max-age=30, stale-if-error=600"
        assert r.headers["etag"]


async def test_case28_body_etag_304_and_change(world: World, client: httpx.AsyncClient) -> None:
    world.set_row(world.a, 30, 2.0, 0)
    r = await client.get(internal(world.a), headers=world.service_auth())
    body = r.json()
    assert body["restaurantId"] == str(world.a)
    assert body["source"] == "db" and body["scope"] == "restaurant"
    assert body["weights"] == {"scarcity": 30, "demandMultiplier": 2, "futureConflictPenalty": 0}
    # case 25: both overrides take effect (Option B)
    assert body["effective"] == {"scarcity": 30, "demandMultiplier": 2, "futureConflictPenalty": 0}
    assert body["degraded"] is False and body["degradedReason"] is None
    assert body["version"] == 1 and body["resolvedAt"]
    etag = r.headers["etag"]

    again = await client.get(internal(world.a), headers={**world.service_auth(), "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"].startswith("private, max-age=30")
    assert again.content == b""

    post = await client.post(
        P, json={"restaurantId": str(world.a), "weights": {"scarcity": 31}}, headers=world.auth("mike")
    )
    assert post.status_code == 200
    changed = await client.get(internal(world.a), headers={**world.service_auth(), "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["weights"]["scarcity"] == 31


async def test_case28_unknown_restaurant_404_and_bad_id_400(world: World, client: httpx.AsyncClient) -> None:
    r = await client.get(internal(uuid.uuid4()), headers=world.service_auth())
    assert r.status_code == 404 and r.json()["code"] == "RESTAURANT_NOT_FOUND"
    r = await client.get(internal("abc"), headers=world.service_auth())
    assert r.status_code == 400 and r.json()["code"] == "INVALID_QUERY"


async def test_case25_zero_multiplier_is_one_and_null_penalty_is_env(world: World, client: httpx.AsyncClient) -> None:
    world.set_row(world.a, 30, 0, None)
    body = (await client.get(internal(world.a), headers=world.service_auth())).json()
    assert body["effective"] == {"scarcity": 30, "demandMultiplier": 1, "futureConflictPenalty": 500}


async def test_case30_cascade_delete_then_404(world: World, client: httpx.AsyncClient, app_factory) -> None:
    world.set_row(world.a, 30)
    assert (await client.get(internal(world.a), headers=world.service_auth())).status_code == 200
    world.sql("DELETE FROM restaurants WHERE id = %s", (world.a,))
    assert world.sql("SELECT count(*) FROM strategic_configs WHERE restaurant_id = %s", (world.a,)) == [(0,)]
    # a replica without a cached entry answers 404 at once (a warm cache may serve it for ≤ TTL)
    async with app_factory() as (_, other):
        r = await other.get(internal(world.a), headers=world.service_auth())
    assert r.status_code == 404


async def test_metrics_endpoint(world: World, client: httpx.AsyncClient) -> None:
    await client.get(internal(world.a), headers=world.service_auth())
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert 'strategic_config_degraded{reason="legacy_json_only"} 0.0' in r.text
    assert "strategic_config_cache_loads_total" in r.text


async def test_unknown_restaurant_is_not_cached(world: World, client: httpx.AsyncClient) -> None:
    rid = uuid.uuid4()
    assert (await client.get(internal(rid), headers=world.service_auth())).status_code == 404
    world.sql("INSERT INTO restaurants (id, name, slug) VALUES (%s, 'New', %s)", (rid, f"new-{rid.hex[:8]}"))
    assert (await client.get(internal(rid), headers=world.service_auth())).status_code == 200


async def test_batch_form(world: World, client: httpx.AsyncClient) -> None:
    world.set_row(world.a, 30)
    unknown = uuid.uuid4()
    r = await client.get(
        "/internal/v1/strategic-configs",
        params=[("restaurantId", str(world.a)), ("restaurantId", str(world.b)), ("restaurantId", str(unknown))],
        headers=world.service_auth(),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(i["restaurantId"], i["weights"]["scarcity"], i["scope"]) for i in body["items"]] == [
        (str(world.a), 30, "restaurant"), (str(world.b), 22, "default")
    ]
    assert body["notFound"] == [str(unknown)]
    assert "etag" not in r.headers
    assert (await client.get("/internal/v1/strategic-configs", headers=world.service_auth())).status_code == 400
    bad = await client.get("/internal/v1/strategic-configs", params={"restaurantId": "abc"}, headers=world.service_auth())
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_QUERY"
    user = await client.get("/internal/v1/strategic-configs", params={"restaurantId": str(world.a)}, headers=world.auth("olivia"))
    assert user.status_code == 403

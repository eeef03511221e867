"""docs/strategic-config.md §7.1 (reads) against the real app and database."""

from __future__ import annotations

import uuid

import httpx

from tests.api.conftest import World, running_app

P = "/api/ops/settings/strategic-config"


async def test_case1_no_row_anywhere_env_defaults(world: World, client: httpx.AsyncClient) -> None:
    r = await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["restaurantId"] == str(world.a)
    assert body["source"] == "env"
    assert body["weights"] == {"scarcity": 22, "demandMultiplier": None, "futureConflictPenalty": None}
    assert body["updatedAt"] is None
    assert body["scope"] == "default"
    assert body["degraded"] is False and body["degradedReason"] is None
    assert body["effective"] == {"scarcity": 22, "demandMultiplier": None, "futureConflictPenalty": 500}
    assert body["version"] is None
    assert r.headers["cache-control"] == "private, no-cache"
    assert r.headers["etag"].startswith('"default-')
    assert "x-strategic-config-degraded" not in r.headers


async def test_case2_env_default_scarcity(world: World, app_factory) -> None:
    async with app_factory(selector_scarcity_weight=35, selector_lookahead_penalty_weight=700) as (_, http):
        r = await http.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == "env"
    assert body["weights"]["scarcity"] == 35
    assert body["effective"]["futureConflictPenalty"] == 700


async def test_case3_restaurant_row_any_member_reads(world: World, client: httpx.AsyncClient) -> None:
    world.set_row(world.a, 30, 1.25, None)
    (updated_at,) = world.sql("SELECT updated_at FROM strategic_configs WHERE restaurant_id = %s", (world.a,))[0]
    for reader in ("olivia", "mike", "hana", "sam"):
        r = await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth(reader))
        assert r.status_code == 200, (reader, r.text)
        body = r.json()
        assert body["source"] == "db"
        assert body["scope"] == "restaurant"
        assert body["weights"] == {"scarcity": 30, "demandMultiplier": 1.25, "futureConflictPenalty": None}
        assert body["updatedAt"] == updated_at.isoformat()
        assert body["version"] == 1


async def test_case4_global_row_only(world: World, client: httpx.AsyncClient) -> None:
    world.set_row(None, 40, None, 800)
    r = await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))
    body = r.json()
    assert body["restaurantId"] == str(world.a)
    assert body["source"] == "db" and body["scope"] == "global"
    assert body["weights"] == {"scarcity": 40, "demandMultiplier": None, "futureConflictPenalty": 800}
    assert body["effective"]["futureConflictPenalty"] == 800


async def test_case5_no_per_field_merge(world: World, client: httpx.AsyncClient) -> None:
    world.set_row(world.a, 30, None, None)
    world.set_row(None, 40, 1.5, 800)
    r = await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))
    body = r.json()
    assert body["scope"] == "restaurant"
    assert body["weights"] == {"scarcity": 30, "demandMultiplier": None, "futureConflictPenalty": None}
    assert body["effective"] == {"scarcity": 30, "demandMultiplier": None, "futureConflictPenalty": 500}


async def test_case6_bad_query(world: World, client: httpx.AsyncClient) -> None:
    for params in ({}, {"restaurantId": "abc"}, {"restaurantId": ""}):
        r = await client.get(P, params=params, headers=world.auth("hana"))
        assert r.status_code == 400, params
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["error"] == "Invalid query"
        assert r.json()["code"] == "INVALID_QUERY"
    # REC: authentication first — an anonymous caller with a bad id gets 401
    r = await client.get(P, params={"restaurantId": "abc"})
    assert r.status_code == 401


async def test_repeated_query_parameter_last_wins(world: World, client: httpx.AsyncClient) -> None:
    r = await client.get(f"{P}?restaurantId=abc&restaurantId={world.a}", headers=world.auth("hana"))
    assert r.status_code == 200
    assert r.json()["restaurantId"] == str(world.a)


async def test_case7_no_session_or_expired_token(world: World, client: httpx.AsyncClient) -> None:
    r = await client.get(P, params={"restaurantId": str(world.a)})
    assert r.status_code == 401
    assert r.json()["error"] == "Authentication required"
    assert r.json()["code"] == "UNAUTHENTICATED"
    from service.auth import mint_token

    expired = mint_token(world.settings, sub=str(world.users["hana"]), ttl_s=-3600)
    r = await client.get(P, params={"restaurantId": str(world.a)}, headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401


async def test_case8_non_member_forbidden(world: World, client: httpx.AsyncClient) -> None:
    r = await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("una"))
    assert r.status_code == 403
    assert r.json()["error"] == "Forbidden" and r.json()["code"] == "FORBIDDEN"


async def test_case9_unknown_restaurant_is_403_for_users(world: World, client: httpx.AsyncClient) -> None:
    unknown = str(uuid.uuid4())
    r = await client.get(P, params={"restaurantId": unknown}, headers=world.auth("olivia"))
    assert r.status_code == 403
    r = await client.post(P, json={"restaurantId": unknown, "weights": {"scarcity": 30}}, headers=world.auth("olivia"))
    assert r.status_code == 403


async def test_service_credential_on_ops_route_is_403(world: World, client: httpx.AsyncClient) -> None:
    r = await client.get(P, params={"restaurantId": str(world.a)}, headers=world.service_auth())
    assert r.status_code == 403


async def test_case10_per_restaurant_isolation(world: World, client: httpx.AsyncClient) -> None:
    world.set_row(world.a, 32)
    a = (await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))).json()
    b = (await client.get(P, params={"restaurantId": str(world.b)}, headers=world.auth("una"))).json()
    assert a["weights"]["scarcity"] == 32 and a["source"] == "db"
    assert b["weights"]["scarcity"] == 22 and b["source"] == "env" and b["scope"] == "default"


async def test_if_none_match_gives_304_with_same_headers(world: World, client: httpx.AsyncClient) -> None:
    world.set_row(world.a, 30)
    first = await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))
    etag = first.headers["etag"]
    again = await client.get(
        P, params={"restaurantId": str(world.a)}, headers={**world.auth("hana"), "If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "private, no-cache"


async def test_membership_lookup_outage_is_503_not_403(world: World) -> None:
    """The database goes away under a running app → 503 DATABASE_UNAVAILABLE with Retry-After."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from service.repository.database import build_sessionmaker
    from tests.api.conftest import make_settings

    settings = make_settings(world.db_url, strategic_config_listen=False)
    async with running_app(settings) as (app, _):
        dead = create_async_engine("postgresql+asyncpg://capacity_app@127.0.0.1:1/none", connect_args={"timeout": 1})
        app.state.sessionmaker = build_sessionmaker(dead)
        # the catch-all handler answers, then Starlette re-raises for the server log: do not re-raise here
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://capacity.test") as http:
            r = await http.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))
        await dead.dispose()
    assert r.status_code == 503
    assert r.json()["code"] == "DATABASE_UNAVAILABLE"
    assert "retry-after" in r.headers

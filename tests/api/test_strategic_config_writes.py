"""docs/strategic-config.md §7.2 (writes), If-Match, concurrency."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import httpx
import pytest

from tests.api.conftest import World

P = "/api/ops/settings/strategic-config"


def _row(world: World) -> tuple | None:
    rows = world.sql(
        """SELECT scarcity_weight, demand_multiplier_override, future_conflict_penalty, updated_by, version,
                  updated_at
             FROM strategic_configs WHERE restaurant_id = %s""",
        (world.a,),
    )
    return rows[0] if rows else None


async def test_case11_create_then_case12_replace_not_patch(world: World, client: httpx.AsyncClient) -> None:
    r = await client.post(
        P,
        json={"restaurantId": str(world.a), "weights": {"scarcity": 30, "demandMultiplier": 1.25}},
        headers=world.auth("mike"),
    )
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["source"] == "db" and created["scope"] == "restaurant"
    assert created["weights"] == {"scarcity": 30, "demandMultiplier": 1.25, "futureConflictPenalty": None}
    assert created["updatedAt"] is not None
    assert created["version"] == 1
    row = _row(world)
    assert row is not None and row[3] == world.users["mike"]
    assert r.headers["etag"]

    got = await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("sam"))
    assert got.json()["weights"] == created["weights"]
    assert got.headers["etag"] == r.headers["etag"]

    r2 = await client.post(
        P, json={"restaurantId": str(world.a), "weights": {"scarcity": 45}}, headers=world.auth("olivia")
    )
    assert r2.status_code == 200, r2.text
    replaced = r2.json()
    assert replaced["weights"] == {"scarcity": 45, "demandMultiplier": None, "futureConflictPenalty": None}
    # REC: updatedAt strictly later and version bumped (touch trigger)
    assert datetime.fromisoformat(replaced["updatedAt"]) > datetime.fromisoformat(created["updatedAt"])
    assert replaced["version"] == 2
    assert r2.headers["etag"] != r.headers["etag"]
    assert _row(world)[3] == world.users["olivia"]


async def test_put_is_an_alias_of_post(world: World, client: httpx.AsyncClient) -> None:
    r = await client.put(
        P, json={"restaurantId": str(world.a), "weights": {"scarcity": 12}}, headers=world.auth("olivia")
    )
    assert r.status_code == 200
    assert r.json()["weights"]["scarcity"] == 12


@pytest.mark.parametrize("writer", ["hana", "sam", "una"])
async def test_case13_role_denial(world: World, client: httpx.AsyncClient, writer: str) -> None:
    r = await client.post(P, json={"restaurantId": str(world.a), "weights": {"scarcity": 30}}, headers=world.auth(writer))
    assert r.status_code == 403
    assert r.json()["code"] == "FORBIDDEN"
    assert _row(world) is None


async def test_case13_no_session_is_401(world: World, client: httpx.AsyncClient) -> None:
    r = await client.post(P, json={"restaurantId": str(world.a), "weights": {"scarcity": 30}})
    assert r.status_code == 401
    # authentication first: even a malformed body is 401 for an anonymous caller
    r = await client.post(P, content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 401


OK = 200


@pytest.mark.parametrize(
    ("case", "weights", "status", "code", "field"),
    [
        ("a", {"scarcity": -1}, 400, "OUT_OF_RANGE", "weights.scarcity"),
        ("b", {"scarcity": 1000.01}, 400, "OUT_OF_RANGE", "weights.scarcity"),
        ("c", {"scarcity": 1000}, OK, None, None),
        ("d", {"scarcity": 0}, OK, None, None),
        ("e", {"scarcity": "22"}, 400, "INVALID_BODY", "weights.scarcity"),
        ("f", {"demandMultiplier": 1}, 400, "INVALID_BODY", "weights.scarcity"),
        ("g", {"scarcity": 22, "demandMultiplier": 10.5}, 400, "OUT_OF_RANGE", "weights.demandMultiplier"),
        ("h", {"scarcity": 22, "demandMultiplier": 0}, OK, None, None),
        ("i", {"scarcity": 22, "futureConflictPenalty": 100001}, 400, "OUT_OF_RANGE", "weights.futureConflictPenalty"),
        ("j", {"scarcity": 22, "futureConflictPenalty": 100000}, OK, None, None),
        # issue 11: an unknown key is refused (it was ignored, and the replacing write cleared the rest)
        ("l", {"scarcity": 22, "colour": "blue"}, 400, "INVALID_BODY", "weights.colour"),
        ("m", {"scarcity": 22, "demandMultiplier": None}, OK, None, None),
        ("bool", {"scarcity": True}, 400, "INVALID_BODY", "weights.scarcity"),
    ],
)
async def test_case14_validation(
    world: World, client: httpx.AsyncClient, case: str, weights: dict, status: int, code: str | None, field: str | None
) -> None:
    r = await client.post(
        P, json={"restaurantId": str(world.a), "weights": weights}, headers=world.auth("mike")
    )
    assert r.status_code == status, (case, r.text)
    if status != OK:
        body = r.json()
        assert body["code"] == code
        assert body["error"] == "Invalid request body"
        assert body["details"][0]["field"] == field
        assert _row(world) is None  # nothing half-written
    else:
        row = _row(world)
        assert row is not None
        if case == "h":
            assert row[1] == 0 and r.json()["weights"]["demandMultiplier"] == 0
            assert r.json()["effective"]["demandMultiplier"] == 1  # non-positive → 1 (docs/strategic-config.md §5.4)
        if case == "m":
            assert row[1] is None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not json", None),
        (b"", None),
        (b"[]", None),
        (b'{"weights": {"scarcity": 22}}', "restaurantId"),
        (b'{"restaurantId": "abc", "weights": {"scarcity": 22}}', "restaurantId"),
        (b'{"restaurantId": 5, "weights": {"scarcity": 22}}', "restaurantId"),
        (b'{"restaurantId": "%s"}', "weights"),
        (b'{"restaurantId": "%s", "weights": 7}', "weights"),
        (b'{"restaurantId": "%s", "weights": {"scarcity": NaN}}', None),
        (b'{"restaurantId": "%s", "weights": {"scarcity": Infinity}}', None),
    ],
)
async def test_case14k_malformed_bodies(world: World, client: httpx.AsyncClient, raw: bytes, field: str | None) -> None:
    body = raw.replace(b"%s", str(world.a).encode())
    r = await client.post(P, content=body, headers={**world.auth("mike"), "content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "INVALID_BODY"
    if field:
        assert r.json()["details"][0]["field"] == field
    assert _row(world) is None


async def test_case15_rounding_to_column_scale(world: World, client: httpx.AsyncClient) -> None:
    r = await client.post(
        P,
        json={
            "restaurantId": str(world.a),
            "weights": {"scarcity": 12.345, "demandMultiplier": 1.23456, "futureConflictPenalty": 99.999},
        },
        headers=world.auth("mike"),
    )
    assert r.status_code == 200
    assert r.json()["weights"] == {"scarcity": 12.35, "demandMultiplier": 1.235, "futureConflictPenalty": 100}
    row = _row(world)
    assert (str(row[0]), str(row[1]), str(row[2])) == ("12.35", "1.235", "100.00")


async def test_case16_same_process_sees_write_at_once(world: World, client: httpx.AsyncClient) -> None:
    # warm the cache with env defaults, then write: the next read in this process shows the new value
    await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))
    await client.post(P, json={"restaurantId": str(world.a), "weights": {"scarcity": 30}}, headers=world.auth("mike"))
    r = await client.get(P, params={"restaurantId": str(world.a)}, headers=world.auth("hana"))
    assert r.json()["weights"]["scarcity"] == 30


async def test_if_match_mismatch_is_412_and_changes_nothing(world: World, client: httpx.AsyncClient) -> None:
    first = await client.post(
        P, json={"restaurantId": str(world.a), "weights": {"scarcity": 30}}, headers=world.auth("mike")
    )
    etag = first.headers["etag"]
    ok = await client.post(
        P,
        json={"restaurantId": str(world.a), "weights": {"scarcity": 31}},
        headers={**world.auth("olivia"), "If-Match": etag},
    )
    assert ok.status_code == 200
    stale = await client.post(
        P,
        json={"restaurantId": str(world.a), "weights": {"scarcity": 99}},
        headers={**world.auth("mike"), "If-Match": etag},
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "PRECONDITION_FAILED"
    assert stale.headers["etag"] == ok.headers["etag"]
    assert float(_row(world)[0]) == 31


async def test_concurrent_writes_leave_one_consistent_row(world: World, client: httpx.AsyncClient) -> None:
    bodies = [
        {"restaurantId": str(world.a), "weights": {"scarcity": s, "demandMultiplier": s / 100, "futureConflictPenalty": s * 10}}
        for s in range(1, 21)
    ]
    writers = ["mike", "olivia"]
    responses = await asyncio.gather(
        *(client.post(P, json=b, headers=world.auth(writers[i % 2])) for i, b in enumerate(bodies))
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    rows = world.sql(
        """SELECT scarcity_weight, demand_multiplier_override, future_conflict_penalty, version
             FROM strategic_configs WHERE restaurant_id = %s""",
        (world.a,),
    )
    assert len(rows) == 1
    scarcity, multiplier, penalty, version = rows[0]
    # all three values come from the same write
    assert float(multiplier) == pytest.approx(float(scarcity) / 100)
    assert float(penalty) == pytest.approx(float(scarcity) * 10)
    assert version == len(bodies)
    assert sorted(r.json()["version"] for r in responses) == list(range(1, len(bodies) + 1))


async def test_write_response_is_json_numbers(world: World, client: httpx.AsyncClient) -> None:
    r = await client.post(P, json={"restaurantId": str(world.a), "weights": {"scarcity": 30}}, headers=world.auth("mike"))
    raw = json.loads(r.content)
    assert isinstance(raw["weights"]["scarcity"], int | float)

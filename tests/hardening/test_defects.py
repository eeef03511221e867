"""Issue 11 defects that lived in code the refactor (issue 10) rewrote. Each test states the expected
behaviour; each failed before its fix (they were marked ``xfail(strict=True)`` until then). Fix
descriptions: README "Reliability".
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid

import httpx
import psycopg
import pytest

from service.app import create_app
from service.assign.models import SERVICE_DATE_MAX, SERVICE_DATE_MIN
from service.assign.service import RunDeadline
from service.auth import mint_token
from service.domain.config_resolution import validate_weights
from service.settings import Settings
from tests.api.assign_support import PATH as ASSIGN
from tests.api.assign_support import AssignWorld
from tests.api.conftest import World, make_settings, running_app

OPS = "/api/ops/settings/strategic-config"


# --- item 1: dates at the calendar's edges -------------------------------------------------------------


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-30", "9999-12-31"])
@pytest.mark.parametrize("dry_run", [True, False])
async def test_assign_date_at_calendar_edges_is_a_clear_answer(aw: AssignWorld, client, day: str, dry_run: bool) -> None:
    r = await client.post(ASSIGN, json={"restaurantId": str(aw.rid), "date": day, "dryRun": dry_run},
                          headers=aw.auth("owner"))
    # a date the service cannot plan is a 400 naming the field (docs/assign-tables.md §2.1), nothing written
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "INVALID_BODY" and r.json()["details"][0]["field"] == "date"
    assert "2000-01-01" in r.json()["details"][0]["reason"]


@pytest.mark.parametrize("day", [SERVICE_DATE_MIN.isoformat(), SERVICE_DATE_MAX.isoformat()])
async def test_assign_date_range_ends_are_planned(aw: AssignWorld, client, day: str) -> None:
    """The first and last service dates of the documented range are planned like any other day."""
    r = await client.post(ASSIGN, json={"restaurantId": str(aw.rid), "date": day, "dryRun": False},
                          headers=aw.auth("owner"))
    assert r.status_code == 200, r.text
    assert r.json()["date"] == day


# --- item 1: a weight no double holds, handed to the domain directly --------------------------------------


@pytest.mark.parametrize("value", [10**400, -(10**309)], ids=["10**400", "-10**309"])
def test_validate_weights_refuses_integers_no_double_holds(value: int) -> None:
    """Over HTTP the decoder now refuses these (tests/hardening/test_http_strictness.py); the domain rule
    itself must still answer with a problem, not raise, for any caller."""
    weights, problems = validate_weights({"scarcity": value})
    assert weights is None and [p.field for p in problems] == ["weights.scarcity"]


# --- item 4: unknown keys are a 400 naming them, nothing written ------------------------------------------


async def test_a_typo_in_weights_is_400_and_keeps_the_stored_row(world: World, client: httpx.AsyncClient) -> None:
    world.set_row(world.a, 30, multiplier=1.5)
    r = await client.post(OPS, json={"restaurantId": str(world.a), "weights": {"scarcity": 31, "demand_multiplier": 1.5}},
                          headers=world.auth("mike"))
    assert r.status_code == 400, r.text
    assert "demand_multiplier" in r.text
    rows = world.sql("SELECT scarcity_weight, demand_multiplier_override FROM strategic_configs WHERE restaurant_id = %s",
                     (world.a,))
    assert [(float(s), float(m)) for s, m in rows] == [(30.0, 1.5)]


async def test_unknown_top_level_key_of_a_write_is_400(world: World, client: httpx.AsyncClient) -> None:
    r = await client.post(OPS, json={"restaurantId": str(world.a), "weights": {"scarcity": 31}, "wieghts": {}},
                          headers=world.auth("mike"))
    assert r.status_code == 400 and "wieghts" in r.text, r.text


async def test_a_typo_in_the_assign_body_is_400_and_runs_nothing(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    aw.booking(2, "18:00", "19:30", status="pending_allocation")
    r = await client.post(ASSIGN, json={**aw.body(), "dryrun": True}, headers=aw.auth("owner"))
    assert r.status_code == 400 and "dryrun" in r.text, r.text
    assert aw.assignments() == {}


# --- item 5: loose types --------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [("dryRun", "false"), ("dryRun", 0), ("dryRun", "true"),
                                              ("captureDecisions", "no"), ("captureDecisions", 1)])
async def test_booleans_are_json_booleans(aw: AssignWorld, client: httpx.AsyncClient, field: str, value) -> None:
    aw.booking(2, "18:00", "19:30", status="pending_allocation")
    r = await client.post(ASSIGN, json={**aw.body(), "dryRun": True, field: value}, headers=aw.auth("owner"))
    assert r.status_code == 400, r.text
    assert r.json()["details"][0]["field"] == field
    assert aw.assignments() == {}  # "dryRun": "false" ran a real, writing assignment


def _spellings(rid: uuid.UUID) -> list[str]:
    arabic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    return [f"{{{rid}}}", f"urn:uuid:{rid}", rid.hex, str(rid).translate(arabic), f" {rid} "]


async def test_only_canonical_uuids_are_accepted(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    service = {"Authorization": f"Bearer {mint_token(aw.settings, sub=None, role='service_role')}"}
    accepted = []
    for spelling in _spellings(aw.rid):
        answers = {
            "assign": await client.post(ASSIGN, json={"restaurantId": spelling, "dryRun": True}, headers=aw.auth("owner")),
            "ops read": await client.get(OPS, params={"restaurantId": spelling}, headers=aw.auth("owner")),
            "ops write": await client.post(OPS, json={"restaurantId": spelling, "weights": {"scarcity": 20}},
                                           headers=aw.auth("owner")),
            "internal": await client.get(f"/internal/v1/restaurants/{spelling}/strategic-config", headers=service),
            "batch": await client.get("/internal/v1/strategic-configs", params={"restaurantId": spelling},
                                      headers=service),
        }
        accepted += [(name, spelling, r.status_code) for name, r in answers.items() if r.status_code != 400]
    assert accepted == []


# --- item 8: a run has an overall deadline ---------------------------------------------------------------


async def test_a_blocked_run_answers_by_its_deadline(aw: AssignWorld) -> None:
    """Every table of the floor is locked by another transaction. With a 1 s run deadline the run answers
    200 while the lock is still held, the blocked bookings skipped with a reason code, and the run lock
    released. (Today it waits a statement timeout per batch, then per booking.)"""
    for start, end in (("18:00", "19:30"), ("19:00", "20:30"), ("20:00", "21:30")):
        aw.booking(2, start, end, status="pending_allocation")
    settings = make_settings(aw.db_url, strategic_config_listen=False, db_statement_timeout_ms=6000,
                             assign_run_deadline_s=1)
    async with running_app(settings) as (_, client):
        with psycopg.connect(aw.db_url) as locker:
            locker.execute("SELECT 1 FROM table_inventory WHERE restaurant_id = %s FOR UPDATE", (aw.rid,))
            run = asyncio.create_task(aw.assign(client))
            try:
                response = await asyncio.wait_for(asyncio.shield(run), timeout=4)
            finally:
                locker.rollback()
                with contextlib.suppress(Exception):
                    await run
        assert response.status_code == 200, response.text
        codes = {s["reasonCode"] for s in response.json()["skipped"]}
        assert codes == {"RUN_DEADLINE_EXCEEDED"}, response.json()
        again = await aw.assign(client)
        assert again.status_code == 200  # the run lock was released
    assert "assign_run_deadline_s" in Settings.model_fields  # the setting the fix adds (one source)


def test_run_deadline_bounds_each_statement_and_an_unbounded_one_never_expires() -> None:
    """The bench and other callers of commit_plan pass no deadline: it must never expire nor bound a
    statement (an infinite deadline once overflowed converting to milliseconds)."""
    unbounded = RunDeadline(math.inf, statement_timeout_ms=15_000)
    assert not unbounded.expired() and unbounded.timeout_ms() is None
    soon = RunDeadline.after(2.0, statement_timeout_ms=15_000)
    timeout = soon.timeout_ms()
    assert timeout is not None and 1_000 < timeout <= 2_000 and not soon.expired()
    assert RunDeadline.after(60.0, statement_timeout_ms=15_000).timeout_ms() == 15_000  # never above the setting
    past = RunDeadline.after(-1.0)
    assert past.expired() and past.timeout_ms() == 1  # never 0: that would switch the server's limit off


# --- item 9: the OpenAPI document says what the server enforces --------------------------------------------


def _openapi() -> dict:
    from pydantic import SecretStr

    return create_app(Settings(database_url=SecretStr("postgresql://openapi@localhost/openapi"))).openapi()


def _param(doc: dict, path: str, method: str, name: str) -> dict:
    params = doc["paths"][path][method].get("parameters", [])
    return next(p for p in params if p["name"] == name)


def test_openapi_restaurant_id_parameters_are_required_uuids() -> None:
    doc = _openapi()
    for path, method in ((OPS, "get"), ("/internal/v1/restaurants/{restaurantId}/strategic-config", "get")):
        param = _param(doc, path, method, "restaurantId")
        assert param["required"] is True
        assert param["schema"].get("format") == "uuid", param


def test_openapi_batch_limits_are_documented() -> None:
    param = _param(_openapi(), "/internal/v1/strategic-configs", "get", "restaurantId")
    schema = param["schema"]
    assert param["required"] is True
    assert schema.get("minItems") == 1 and schema.get("maxItems") == 100, schema
    assert schema["items"].get("format") == "uuid"


def test_openapi_assign_date_is_a_calendar_date() -> None:
    body = _openapi()["paths"][ASSIGN]["post"]["requestBody"]["content"]["application/json"]["schema"]
    date = body["properties"]["date"]
    variants = date.get("anyOf", [date])
    assert any(v.get("format") == "date" for v in variants), date
    assert body.get("additionalProperties") is False  # unknown keys are refused (item 4)

"""HTTP surface that needs no schema: liveness, the problem+json shape, a database outage, the OpenAPI file."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
from pydantic import SecretStr

from service.app import create_app
from service.openapi import openapi_document
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_liveness_and_problem_json_for_unknown_route():
    app = create_app(Settings(database_url=SecretStr("postgresql://nobody@127.0.0.1:1/none")))
    async with await _client(app) as client:
        alive = await client.get("/healthz")
        missing = await client.get("/no/such/route")
    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    body = missing.json()
    assert body["code"] == "NOT_FOUND" and body["status"] == 404 and body["error"] and body["message"]


async def test_unreachable_database_makes_readiness_503_not_a_traceback():
    port = _closed_port()
    app = create_app(
        Settings(database_url=SecretStr(f"postgresql://nobody:s3cret@127.0.0.1:{port}/none"), db_connect_timeout_s=1)
    )
    async with app.router.lifespan_context(app), await _client(app) as client:
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert alive.status_code == 200  # liveness never depends on the database
    assert ready.status_code == 503
    assert ready.headers["content-type"].startswith("application/problem+json")
    assert "retry-after" in ready.headers
    body = ready.json()
    assert body["code"] == "NOT_READY"
    assert [f["code"] for f in body["findings"]] == ["database_unreachable"]
    assert "s3cret" not in ready.text


def test_committed_openapi_document_is_current():
    committed = json.loads((REPO / "openapi" / "openapi.json").read_text())
    assert committed == json.loads(json.dumps(openapi_document())), (
        "openapi/openapi.json is stale: run `capacity-service openapi --out openapi/openapi.json`"
    )
